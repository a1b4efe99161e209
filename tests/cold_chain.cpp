// Tests of services/canteen/cold_chain.hpp: hysteresis and minimum duration.
#include "services/canteen/cold_chain.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::svc::canteen;
using namespace std::chrono_literals;

namespace {

struct run_result {
    int alerts = 0, escalations = 0, cleared = 0;
};

// Feeds readings one minute apart from 08:00 and counts the actions.
run_result feed(food_zone zone, const std::vector<double>& readings, cold_chain_options o = {}) {
    sensor_state s;
    run_result r;
    auto t = test::at("2026-11-29T00:00:00Z");
    for (double c : readings) {
        auto step = observe(s, zone, c, t, o);
        r.alerts += step.action == cold_chain_action::alert;
        r.escalations += step.action == cold_chain_action::escalate;
        r.cleared += step.action == cold_chain_action::cleared;
        t += 1min;
    }
    return r;
}

} // namespace

TEST_CASE("a sensor flapping across the threshold raises one alert", "[cold_chain]") {
    std::vector<double> flap;
    for (int i = 0; i < 100; ++i)
        flap.push_back(i % 2 ? 8.3 : 7.6); // 100 min around 8 °C
    auto r = feed(food_zone::cold_storage, flap);
    CHECK(r.alerts == 1);
    CHECK(r.escalations == 0);
    CHECK(r.cleared == 0);
}

TEST_CASE("without hysteresis the same flapping would never last long enough", "[cold_chain]") {
    // With no margin every in-range reading ends the excursion: the sensor
    // never stays out for 30 minutes, which is why the margin exists.
    std::vector<double> flap;
    for (int i = 0; i < 100; ++i)
        flap.push_back(i % 2 ? 8.3 : 7.6);
    auto r = feed(food_zone::cold_storage, flap, {.margin = 0});
    CHECK(r.alerts == 0);
}

TEST_CASE("a short spike raises no alert", "[cold_chain]") {
    std::vector<double> v(10, 4.0);
    for (int i = 0; i < 20; ++i)
        v.push_back(11.0); // 20 min of door open
    for (int i = 0; i < 30; ++i)
        v.push_back(4.0);
    auto r = feed(food_zone::cold_storage, v);
    CHECK(r.alerts == 0);
    CHECK(r.cleared == 0);
}

TEST_CASE("a long excursion alerts at 30 minutes, escalates at 2 hours, then clears",
          "[cold_chain]") {
    std::vector<double> v(5, 3.0);
    for (int i = 0; i < 150; ++i)
        v.push_back(10.0 + (i % 3));
    v.push_back(6.5); // back inside by the margin
    sensor_state s;
    auto t = test::at("2026-11-29T00:00:00Z");
    std::vector<std::pair<cold_chain_action, micros>> actions;
    double worst = 0;
    for (double c : v) {
        auto step = observe(s, food_zone::cold_storage, c, t, {});
        if (step.action != cold_chain_action::none)
            actions.emplace_back(step.action, step.duration);
        worst = step.worst;
        t += 1min;
    }
    REQUIRE(actions.size() == 3);
    CHECK(actions[0].first == cold_chain_action::alert);
    CHECK(actions[0].second == 30min);
    CHECK(actions[1].first == cold_chain_action::escalate);
    CHECK(actions[1].second == 120min);
    CHECK(actions[2].first == cold_chain_action::cleared);
    CHECK(worst == 12.0);
    CHECK_FALSE(s.out);
}

TEST_CASE("freezer and hot holding have one-sided ranges", "[cold_chain]") {
    CHECK(feed(food_zone::freezer, std::vector<double>(40, -18.0)).alerts == 0);
    CHECK(feed(food_zone::freezer, std::vector<double>(40, -8.0)).alerts == 1);
    CHECK(feed(food_zone::hot_holding, std::vector<double>(40, 72.0)).alerts == 0);
    CHECK(feed(food_zone::hot_holding, std::vector<double>(40, 52.0)).alerts == 1);
}

TEST_CASE("a reading older than the last one changes nothing", "[cold_chain]") {
    sensor_state s;
    auto t = test::at("2026-11-29T00:00:00Z");
    observe(s, food_zone::cold_storage, 12, t, {});
    auto step = observe(s, food_zone::cold_storage, 12, t + 40min, {});
    CHECK(step.action == cold_chain_action::alert);
    // The same excursion resent from earlier must not re-alert or reset it.
    step = observe(s, food_zone::cold_storage, 4, t + 10min, {});
    CHECK(step.action == cold_chain_action::none);
    CHECK(s.out);
    CHECK(s.raised == 1);
}
