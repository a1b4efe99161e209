// Cold-chain excursions from temperature readings, with hysteresis and a
// minimum duration (DOMAIN §2: chilled 0–8 °C, frozen below −12 °C, hot-hold
// at least 60 °C; out of range for 30 min → canteen manager, 2 h → quarantine).
//
// A sensor that hovers at a threshold must raise one alert, not a storm. So an
// excursion starts with the first reading outside the zone's range, but ends
// only when a reading is back inside the range by the margin; and it raises an
// alert only once it has lasted `alert_after`, then once more (escalated) at
// `escalate_after`. Time is the readings' own time, so a replayed or simulated
// day decides the same way as a real one. Pure: no clock, no I/O.
#pragma once

#include "common/event.hpp"

#include <limits>

namespace pingan::svc::canteen {

// The allowed range of a zone, inclusive; an open side is infinite.
struct zone_limits {
    double low = -std::numeric_limits<double>::infinity();
    double high = std::numeric_limits<double>::infinity();
};
zone_limits limits_for(food_zone z) noexcept;

struct cold_chain_options {
    double margin = 1.0; // °C inside the range before an excursion ends
    micros alert_after = std::chrono::minutes(30);
    micros escalate_after = std::chrono::hours(2);
};

// One sensor's memory between readings.
struct sensor_state {
    bool out = false;       // in an excursion
    timestamp since{};      // first out-of-range reading of the excursion
    timestamp last{};       // latest reading seen
    double worst = 0;       // furthest from the range during the excursion
    int raised = 0;         // alerts raised in this excursion: 0, 1 or 2
    event_id first_reading; // the reading that began the excursion
};

enum class cold_chain_action { none, alert, escalate, cleared };

struct cold_chain_step {
    cold_chain_action action = cold_chain_action::none;
    micros duration{0}; // of the excursion so far
    double worst = 0;
};

// Feeds one reading to a sensor's state. A reading older than the last one
// seen is ignored (it changes nothing), so a resent batch cannot re-alert.
cold_chain_step observe(sensor_state& s, food_zone zone, double celsius, timestamp at,
                        const cold_chain_options& o, const event_id& reading_id = {});

} // namespace pingan::svc::canteen
