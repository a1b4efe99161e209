// How `pingan tail` and `pingan replay` show events, and their shared filter options.
#pragma once

#include "common/event.hpp"
#include "common/registry.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace pingan::cli {

struct filter_options {
    std::string type, school, district;
    bool json = false;
    std::string registry; // schools.csv, to show school names
};
void add_filter_options(CLI::App& cmd, filter_options& f);

// One line for people: offset, China time, type, school, severity, and
// EXERCISE or TEST in capitals so that a drill is never read as a real alert.
std::string render_line(const event& e, const registry* reg);

// Loads the registry named in `f` (or the default data/schools.csv when it
// exists); nothing if there is none, and names are then left out.
std::optional<registry> load_registry(const filter_options& f);

} // namespace pingan::cli
