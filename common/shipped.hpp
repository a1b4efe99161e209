// Where a program finds the files Pingan ships with it (the school registry,
// the default rule pack): beside the program, never at a path compiled in.
//
//   installed tree:  <prefix>/bin/PROGRAM   ->  <prefix>/share/pingan/REL
//   source tree:     <source>/build/bin/PROGRAM  ->  <source>/REL
//
// REL is the path in the source tree, e.g. "data/schools.csv" or
// "config/rules/yichang-default.yaml".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pingan {

// The places REL is looked for, in order.
std::vector<std::string> shipped_candidates(std::string_view rel);

// The first of shipped_candidates(rel) that exists. Returns: empty if none does.
std::string find_shipped(std::string_view rel);

} // namespace pingan
