// Escalation engine micro-benchmark: see engine_bench.hpp.
#include "tools/bench/engine_bench.hpp"

#include "broker/engine/engine.hpp"
#include "broker/engine/rules.hpp"

#include <array>
#include <chrono>
#include <cstdio>

namespace pingan {
namespace {

// Event types with a text field a rule can test, for rules that never see a reading.
constexpr std::array<std::pair<const char*, const char*>, 13> other_types{{
    {"hazard.reported", "hazard_id"},
    {"hazard.rectified", "hazard_id"},
    {"hazard.verified", "hazard_id"},
    {"equipment.inspection", "equipment_id"},
    {"drill.recorded", "drill_id"},
    {"food.alert", "canteen_id"},
    {"food.sample", "canteen_id"},
    {"food.accompany_meal", "canteen_id"},
    {"psych.alert", "alert_id"},
    {"bullying.reported", "case_id"},
    {"health.cluster", "cluster_id"},
    {"bus.trip", "trip_id"},
    {"incident.reported", "incident_id"},
}};

std::string generated_rules(std::size_t n, bool same_type) {
    std::string y = "ruleset: bench\nversion: \"1\"\nroles: [principal]\nrules:\n";
    for (std::size_t i = 0; i < n; ++i) {
        auto [type, field] = same_type ? std::pair{"food.temp_reading", "sensor_id"}
                                       : other_types[i % other_types.size()];
        y += "  - id: bench.r" + std::to_string(i) + "\n    basis: M\n    title: r\n";
        y += "    match:\n      type: " + std::string(type) +
             "\n      where:\n        - {field: " + field + ", eq: \"never-" + std::to_string(i) +
             "\"}\n";
        y += "    incident: {kind: bench}\n    steps:\n      - {tier: school, roles: "
             "[principal], text: x}\n";
    }
    return y;
}

std::vector<event> readings(const registry& reg, std::size_t n) {
    std::vector<event> v;
    v.reserve(n);
    auto t = *parse_utc("2026-11-02T01:00:00Z");
    for (std::size_t i = 0; i < n; ++i) {
        event e;
        const auto& s = reg.schools()[i % reg.size()];
        std::array<std::uint8_t, 10> r{};
        for (int b = 0; b < 8; ++b)
            r[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(i >> (8 * b));
        e.id = event_id::v7(t, r);
        e.offset = i + 1;
        e.school = s.id;
        e.district = s.district_code;
        e.source = "bench";
        e.occurred_at = e.received_at = t + std::chrono::milliseconds(i);
        food_temp_reading b;
        b.canteen_id = s.id + "-canteen";
        b.sensor_id = "cold-" + std::to_string(i % 4);
        b.zone = food_zone::cold_storage;
        b.celsius = 3.5 + static_cast<double>(i % 10) / 10.0;
        e.body = std::move(b);
        v.push_back(std::move(e));
    }
    return v;
}

// Returns: nanoseconds per event of engine::apply over `evs`.
double run(std::shared_ptr<const rules::ruleset> rs, std::shared_ptr<const registry> reg,
           const std::vector<event>& evs, std::size_t& derived) {
    engine eng(std::move(rs), std::move(reg));
    engine_state st;
    std::vector<event> out;
    // The first event logs the rule set and schedules the calendar: not timed.
    eng.apply(st, evs.front(), out);
    auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 1; i < evs.size(); ++i) {
        out.clear();
        eng.apply(st, evs[i], out);
        derived += out.size();
    }
    auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start);
    return ns.count() / static_cast<double>(evs.size() - 1);
}

std::shared_ptr<const rules::ruleset> parse_or_throw(const std::string& text) {
    auto r = rules::parse(text);
    if (!r.errors.empty()) throw error(errc::bad_config, "bench rules: " + r.errors.front().text());
    return r.rules;
}

} // namespace

json bench_engine(const registry& reg, const std::string& rules_yaml, std::size_t events) {
    // The registry outlives the call; the engine only borrows it.
    std::shared_ptr<const registry> r(&reg, [](const registry*) {});
    auto evs = readings(reg, std::max<std::size_t>(events, 2));
    json out = json::object();
    json rows = json::array();
    std::printf("escalation engine (pure core, %zu readings)\n", evs.size());
    std::printf("  %-8s %22s %22s\n", "rules", "other types ns/event", "same type ns/event");
    double first_other = 0, last_other = 0;
    for (std::size_t n : {10u, 100u, 1000u}) {
        std::size_t derived = 0;
        double other = run(parse_or_throw(generated_rules(n, false)), r, evs, derived);
        double same = run(parse_or_throw(generated_rules(n, true)), r, evs, derived);
        if (derived != 0) throw error(errc::internal, "bench rules matched an event");
        std::printf("  %-8zu %22.0f %22.0f\n", n, other, same);
        rows.push_back(
            {{"rules", n}, {"other_types_ns_per_event", other}, {"same_type_ns_per_event", same}});
        if (n == 10) first_other = other;
        last_other = other;
    }
    out["rules"] = rows;
    out["flat_ratio_1000_vs_10"] = last_other / first_other;
    std::printf("  other-type cost, 1,000 rules / 10 rules: %.2f (flat is 1.0)\n",
                last_other / first_other);
    if (!rules_yaml.empty()) {
        std::size_t derived = 0;
        auto rs = parse_or_throw(rules_yaml);
        double ns = run(rs, r, evs, derived);
        std::printf("  default pack (%zu rules), readings in range: %.0f ns/event\n",
                    rs->rules.size(), ns);
        out["default_pack"] = {{"rules", rs->rules.size()}, {"ns_per_event", ns}};
    }
    return out;
}

} // namespace pingan
