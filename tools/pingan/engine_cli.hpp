// Helpers shared by `pingan rules` and `pingan incidents`: reading a file and
// the school registry, with failures turned into the tool's user text.
// Header-only: the tool's CMake list compiles main.cpp, render.cpp and cmd_*.cpp.
#pragma once

#include "common/registry.hpp"
#include "tools/pingan/commands.hpp"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#ifndef PINGAN_DATA_DIR
#define PINGAN_DATA_DIR "data"
#endif

namespace pingan::cli {

inline std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fatal("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The registry named by `path`, or the bundled data/schools.csv. Rules need
// school types, so a registry that does not load is an error, not a warning.
inline std::shared_ptr<const registry> load_school_registry(const std::string& path) {
    auto dir = std::string(PINGAN_DATA_DIR);
    auto schools = path.empty() ? dir + "/schools.csv" : path;
    std::string districts;
    if (path.empty()) {
        std::ifstream d(dir + "/districts.csv", std::ios::binary);
        std::ostringstream s;
        s << d.rdbuf();
        districts = s.str();
    }
    try {
        return std::make_shared<const registry>(
            registry::from_csv(read_text_file(schools), districts));
    } catch (const error& e) {
        fatal(schools + ": " + e.detail());
    }
}

} // namespace pingan::cli
