// Helpers for the escalation engine tests: a small registry, event makers, and
// a harness that drives the pure engine the way the broker's writer does
// (timers fire at their due time, derived events follow their cause).
#pragma once

#include "broker/engine/engine.hpp"
#include "broker/engine/rules.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

namespace pingan::test {

inline const std::string& default_pack_text() {
    static const std::string t = read_file(source_path("config/rules/yichang-default.yaml"));
    return t;
}

inline std::shared_ptr<const rules::ruleset> default_pack() {
    static const auto rs = [] {
        auto r = rules::parse(default_pack_text());
        REQUIRE(r.errors.empty());
        return r.rules;
    }();
    return rs;
}

// Four schools: a junior school (4 floors, target 120 s), a primary school with
// a school bus, a kindergarten, and a junior school in another district.
inline std::shared_ptr<const registry> small_registry() {
    static const auto r = std::make_shared<const registry>(registry::from_csv(
        "school_id,name,district_code,type,students,boarding,school_bus,canteen,max_floors,lat,"
        "lon\n"
        "420502J001,西陵第1初级中学,420502,junior,1090,0,0,1,4,30.69,111.32\n"
        "420502P001,西陵第1实验小学,420502,primary,1783,0,1,1,3,30.66,111.29\n"
        "420502K001,西陵区第1幼儿园,420502,kindergarten,225,0,0,1,2,30.66,111.29\n"
        "420503J001,伍家岗第1初级中学,420503,junior,900,0,0,1,4,30.65,111.36\n"));
    return r;
}

// Monday 2 November 2026, 09:00 in Yichang.
inline timestamp t0() {
    return at("2026-11-02T01:00:00Z");
}

inline event_id test_id(timestamp t) {
    static std::uint64_t n = 0;
    ++n;
    // Bytes 3..9 of `r` reach the id whole (v7 keeps only some bits of 0..2).
    std::array<std::uint8_t, 10> r{};
    for (int i = 0; i < 7; ++i)
        r[static_cast<std::size_t>(3 + i)] = static_cast<std::uint8_t>(n >> (8 * i));
    return event_id::v7(t, r);
}

inline event make_event(body b, std::string school = "420502J001",
                        pingan::status st = pingan::status::actual,
                        pingan::severity sev = pingan::severity::moderate) {
    event e;
    e.id = test_id(t0());
    e.school = std::move(school);
    e.district = e.school.substr(0, 6);
    e.source = "test";
    e.actor = "school:" + e.school;
    e.status = st;
    e.severity = sev;
    e.body = std::move(b);
    return e;
}

inline hazard_reported hazard(std::string id, hazard_grade g = hazard_grade::general,
                              hazard_area a = hazard_area::building) {
    hazard_reported h;
    h.hazard_id = std::move(id);
    h.grade = g;
    h.area = a;
    h.description = "护栏松动";
    h.location = "教学楼二楼";
    h.found_by = "safety_officer";
    if (g == hazard_grade::major) h.interim_control = "区域已封闭";
    return h;
}

inline food_alert illness(std::uint32_t cases, std::string meal = "2026-11-02-lunch") {
    food_alert f;
    f.canteen_id = "canteen-1";
    f.kind = food_alert_kind::illness;
    f.meal_id = std::move(meal);
    f.cases = cases;
    f.samples_sealed = true;
    f.service_stopped = true;
    return f;
}

inline incident_acknowledged ack(std::string id) {
    incident_acknowledged a;
    a.incident_id = std::move(id);
    return a;
}

// Drives an engine like the broker: put() fires every timer due before the
// event at its due time, then applies the event; both get offsets in order.
struct harness {
    engine eng;
    engine_state st;
    std::vector<event> log; // inputs, timer events and derived events, in offset order
    std::uint64_t offset = 0;
    bool fire_timers = true; // false: as if the broker had not fired them (catch-up)

    explicit harness(std::shared_ptr<const rules::ruleset> rs = default_pack(),
                     std::shared_ptr<const registry> reg = small_registry())
        : eng(std::move(rs), std::move(reg)) {}

    // Returns: the events derived from this input (and from timers due before it).
    std::vector<event> put(event e, timestamp t) {
        auto before = log.size();
        advance(t);
        e.occurred_at = e.occurred_at == timestamp{} ? t : e.occurred_at;
        store(std::move(e), t);
        return derived_since(before);
    }

    // Fires timers up to `t`, each at its due time.
    std::vector<event> advance(timestamp t) {
        auto before = log.size();
        while (fire_timers) {
            auto due = eng.next_due(st);
            if (!due || *due > t) break;
            std::vector<event> fired;
            eng.fire(st, *due, fired);
            REQUIRE_FALSE(fired.empty());
            for (auto& f : fired)
                store(std::move(f), *due);
        }
        return derived_since(before);
    }

    // Fires timers at `now` in one go, as a broker does after being down.
    std::vector<event> fire_at(timestamp now) {
        auto before = log.size();
        std::vector<event> fired;
        eng.fire(st, now, fired);
        for (auto& f : fired)
            store(std::move(f), now);
        return derived_since(before);
    }

    void store(event e, timestamp t) {
        e.offset = ++offset;
        e.received_at = t;
        log.push_back(e);
        std::vector<event> out;
        eng.apply(st, log.back(), out);
        for (auto& d : out) {
            d.offset = ++offset;
            d.received_at = t;
            log.push_back(std::move(d));
        }
    }

    std::vector<event> derived_since(std::size_t from) const {
        std::vector<event> v;
        for (std::size_t i = from; i < log.size(); ++i)
            if (log[i].source == "pingan-broker/engine" && log[i].type() != timer_fired::type)
                v.push_back(log[i]);
        return v;
    }

    std::vector<event> derived() const { return derived_since(0); }
};

template <class T> std::vector<T> bodies(const std::vector<event>& v) {
    std::vector<T> out;
    for (const auto& e : v)
        if (auto* b = std::get_if<T>(&e.body)) out.push_back(*b);
    return out;
}

inline std::vector<event> of_type(const std::vector<event>& v, std::string_view type) {
    std::vector<event> out;
    for (const auto& e : v)
        if (e.type() == type) out.push_back(e);
    return out;
}

} // namespace pingan::test
