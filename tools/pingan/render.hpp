// How `pingan tail` and `pingan replay` show events, and their shared filter options.
#pragma once

#include "common/event.hpp"
#include "common/registry.hpp"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace pingan::cli {

struct filter_options {
    std::vector<std::string> types;   // type prefixes to show (any of them); empty: all
    std::vector<std::string> exclude; // type prefixes never to show
    std::string school, district;
    bool json = false;
    std::string registry; // schools.csv, to show school names and check codes

    // The one type prefix a broker filter can carry (REPLAY, the feed's
    // topic), or "" when several (or none) are asked for.
    std::string broker_type() const { return types.size() == 1 ? types[0] : std::string(); }
    // Does an event pass every filter (types, exclusions, school, district)?
    bool matches(const event& e) const;
};
void add_filter_options(CLI::App& cmd, filter_options& f);

// One line for people: offset, China time, type, school and its name,
// severity, EXERCISE or TEST in capitals so that a drill is never read as a
// real alert, and what the event says: the whole text of a page or an
// escalation, a hazard's description, an incident's title.
std::string render_line(const event& e, const registry* reg);

// Loads the registry named in `f`, or the one found beside the program
// (see engine_cli.hpp); nothing if there is none, and names are then left out.
std::optional<registry> load_registry(const filter_options& f);

// Checks the filters before anything is asked of the broker: types must be
// known types or prefixes of them (pingan schema lists them), school and
// district codes must be in the registry. Exits with a message naming what is
// wrong. Without a registry, codes are not checked (a warning says so).
void check_filters(const filter_options& f, const registry* reg);

} // namespace pingan::cli
