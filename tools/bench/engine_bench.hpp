// Escalation engine figures for pingan-bench: nanoseconds per event with 10,
// 100 and 1,000 rules, and with the default Yichang pack.
#pragma once

#include "common/codec.hpp"
#include "common/registry.hpp"

#include <cstddef>
#include <string>

namespace pingan {

// Runs the pure engine (no store, no sockets) over `events` generated canteen
// temperature readings for each rule count, twice: with every rule on other
// event types (the cost should stay flat as rules grow: rules are indexed by
// type) and with every rule on the readings' own type but not matching (the
// cost grows with the rules that must be evaluated). Also the default pack
// from `rules_yaml` (its text; may be empty to skip). Prints a table.
// Returns: the figures as one JSON object.
json bench_engine(const registry& reg, const std::string& rules_yaml, std::size_t events = 200000);

} // namespace pingan
