// Restart figures for pingan-bench: how long the broker's start-up takes to
// open a store and load the escalation engine's state, at a given log length.
#pragma once

#include "common/codec.hpp"
#include "common/registry.hpp"

#include <cstddef>
#include <string>

namespace pingan {

// Fills a fresh store under `dir` with about `records` records through the
// engine (the default pack in `rules_yaml`): canteen readings, and hazards
// that are reported, rectified and verified, so that closed incidents pile up
// as they do over a term. Then opens the store and loads the engine's state
// as the broker does at start-up, several times, and prints the median.
// Returns: the figures as one JSON object.
json bench_restart(const registry& reg, const std::string& rules_yaml, const std::string& dir,
                   std::size_t records);

} // namespace pingan
