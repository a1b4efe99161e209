// The hysteresis state machine of one temperature sensor.
#include "cold_chain.hpp"

#include <cmath>

namespace pingan::svc::canteen {

zone_limits limits_for(food_zone z) noexcept {
    switch (z) {
    case food_zone::cold_storage:
    case food_zone::sample_fridge:
        return {0.0, 8.0};
    case food_zone::freezer:
        return {-std::numeric_limits<double>::infinity(), -12.0};
    case food_zone::hot_holding:
        return {60.0, std::numeric_limits<double>::infinity()};
    }
    return {};
}

namespace {

// How far outside the range a reading is (0 inside).
double excess(const zone_limits& l, double c) {
    if (c < l.low) return l.low - c;
    if (c > l.high) return c - l.high;
    return 0;
}

} // namespace

cold_chain_step observe(sensor_state& s, food_zone zone, double celsius, timestamp at,
                        const cold_chain_options& o, const event_id& reading_id) {
    cold_chain_step step;
    if (to_us(s.last) != 0 && at < s.last) return step;
    s.last = at;
    auto l = limits_for(zone);
    bool outside = celsius < l.low || celsius > l.high;
    bool well_inside = celsius >= l.low + o.margin && celsius <= l.high - o.margin;

    if (!s.out) {
        if (!outside) return step;
        s.out = true;
        s.since = at;
        s.worst = celsius;
        s.raised = 0;
        s.first_reading = reading_id;
    } else if (well_inside) {
        step.action = s.raised ? cold_chain_action::cleared : cold_chain_action::none;
        step.duration = at - s.since;
        step.worst = s.worst;
        s.out = false;
        s.raised = 0;
        return step;
    } else if (excess(l, celsius) > excess(l, s.worst)) {
        s.worst = celsius;
    }

    step.duration = at - s.since;
    step.worst = s.worst;
    if (s.raised == 0 && step.duration >= o.alert_after) {
        s.raised = 1;
        step.action = cold_chain_action::alert;
    } else if (s.raised == 1 && step.duration >= o.escalate_after) {
        s.raised = 2;
        step.action = cold_chain_action::escalate;
    }
    return step;
}

} // namespace pingan::svc::canteen
