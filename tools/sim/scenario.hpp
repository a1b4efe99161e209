// The simulated schools' day or term: what happens at which simulated time.
//
// Pure and deterministic for a seed: the actions of tick n depend only on the
// seed, the registry, the options and the ticks before it (follow-ups such as
// a rectification days after a hazard). No clock, no sockets: main.cpp sends
// the actions to the real services, or straight to the broker for load.
#pragma once

#include "common/codec.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace pingan::sim {

enum class target : std::uint8_t { hazard, drill, canteen_http, canteen_line, wellbeing, broker };
std::string_view target_name(target t) noexcept;

// One thing a school does: an HTTP request to a service, a sensor line, or an
// event published directly (school-bus trips have no service of their own).
struct action {
    timestamp at{};
    target to = target::hazard;
    std::string path; // HTTP path, e.g. "/hazard/report"
    json body;        // HTTP body, or the JSON event for target::broker
    std::string line; // canteen_line
};

struct options {
    std::uint64_t seed = 1;
    timestamp start{};                      // simulated start (a midnight in Asia/Shanghai)
    micros tick = std::chrono::minutes(10); // simulated time between sensor readings
    std::size_t schools = 0;                // 0: every school of the registry
    double hazards_per_school_day = 0.15;
    double psych_per_school_day = 0.05;
    double overdue_drill_share = 0.1; // schools that skip their drill
    int illness_day = 0;              // day of the run with the supplier cluster
};

class scenario {
  public:
    scenario(const registry& r, options o);

    // The actions of tick `n` (times in [start + n·tick, start + (n+1)·tick)),
    // in time order. Ticks must be asked for in order, from 0.
    std::vector<action> next_tick();
    std::uint64_t ticks_done() const noexcept { return tick_; }
    const std::vector<const school*>& schools() const noexcept { return schools_; }
    // The supplier that feeds a school's canteen ("SUP-07").
    std::string supplier_of(const school& s) const;

  private:
    void readings(timestamp t0, std::vector<action>& out);
    void daily(timestamp day, std::vector<action>& out);
    void hazards(timestamp t0, std::vector<action>& out);
    void psych(timestamp t0, std::vector<action>& out);
    std::mt19937_64 rng_for(std::uint64_t a, std::uint64_t b) const;

    const registry& reg_;
    options o_;
    std::vector<const school*> schools_;
    std::uint64_t tick_ = 0;
    std::uint64_t hazard_seq_ = 0, psych_seq_ = 0;
    std::multimap<timestamp, action> later_; // follow-ups made by earlier ticks
};

} // namespace pingan::sim
