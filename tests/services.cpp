// Tests of the canteen, drill and wellbeing decisions (services/*/handle_request.hpp).
#include "common/validate.hpp"
#include "services/canteen/handle_request.hpp"
#include "services/drill/handle_request.hpp"
#include "services/wellbeing/handle_request.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::svc;
using namespace std::chrono_literals;

namespace {

manual_clock& the_clock() {
    static manual_clock c(test::at("2026-11-29T02:00:00Z"));
    return c;
}
intake_context ctx(const char* source) {
    return {test::yichang(), the_clock(), source};
}

} // namespace

TEST_CASE("a sensor line parses into a reading with its school", "[services]") {
    canteen::reading r;
    REQUIRE_FALSE(canteen::parse_line(
        "420502K001-main cold-room-1 cold_storage 4.5 2026-11-29T07:31:50Z", r));
    CHECK(r.school == "420502K001");
    CHECK(r.canteen_id == "420502K001-main");
    CHECK(r.sensor_id == "cold-room-1");
    CHECK(r.zone == food_zone::cold_storage);
    CHECK(r.celsius == 4.5);
    CHECK(r.at == test::at("2026-11-29T07:31:50Z"));
    CHECK(canteen::parse_line("420502K001-main s1 cellar 4.5", r).code == errc::unknown_enum);
    CHECK(canteen::parse_line("420502K001-main s1 freezer warm", r).code == errc::bad_value);
    CHECK(canteen::parse_line("nodash s1 freezer -18", r).code == errc::bad_value);
    CHECK(canteen::parse_line("420502K001-main s1 freezer", r).code == errc::malformed_json);
    CHECK(canteen::skip_line("  # a comment"));
    CHECK(canteen::skip_line(" \t"));
}

TEST_CASE("readings become temp readings and a long excursion one cold-chain alert", "[services]") {
    canteen::sensors sensors;
    auto c = ctx("pingan-canteen/test");
    auto t = test::at("2026-11-29T00:00:00Z");
    int readings = 0, alerts = 0;
    for (int i = 0; i < 60; ++i) {
        canteen::reading r{"420502K001",      "420502K001-main",
                           "fridge-1",        food_zone::cold_storage,
                           i % 2 ? 8.4 : 7.7, t + std::chrono::minutes(i)};
        auto d = sensors.on_reading(r, c);
        REQUIRE(d.errors.empty());
        for (const auto& e : d.events) {
            CHECK_FALSE(validate(e));
            if (e.type() == "food.temp_reading") ++readings;
            if (e.type() == "food.alert") {
                ++alerts;
                const auto& a = std::get<food_alert>(e.body);
                CHECK(a.kind == food_alert_kind::cold_chain);
                CHECK(a.duration_seconds == 30 * 60);
                CHECK(e.references.size() == 2);
            }
        }
    }
    CHECK(readings == 60);
    CHECK(alerts == 1);
    CHECK(sensors.count() == 1);
    CHECK(sensors.in_excursion() == 1);
}

TEST_CASE("an illness report becomes food.alert illness, serious from five cases", "[services]") {
    auto req = json::parse(R"({"school":"420502K001","meal_id":"2026-11-29-lunch","cases":6,
        "supplier":"SUP-7","lot":"L-42","service_stopped":true,"samples_sealed":true,
        "description":"午餐后6名学生腹痛"})");
    auto d = canteen::illness(req, ctx("pingan-canteen/test"));
    REQUIRE(d.ok());
    const auto& a = std::get<food_alert>(d.events[0].body);
    CHECK(a.kind == food_alert_kind::illness);
    CHECK(a.canteen_id == "420502K001-main");
    CHECK(a.supplier == "SUP-7");
    CHECK(d.events[0].severity == severity::extreme);

    req = json::parse(R"({"school":"420502K001","cases":0})");
    d = canteen::illness(req, ctx("pingan-canteen/test"));
    CHECK(d.events.empty());
    CHECK(d.errors.size() == 2); // cases and meal_id
}

TEST_CASE("a sample under 125 g is recorded and flagged", "[services]") {
    auto req =
        json::parse(R"({"school":"420502K001","meal_id":"m1","dish":"番茄炒蛋","grams":100})");
    auto d = canteen::sample(req, ctx("pingan-canteen/test"));
    REQUIRE(d.ok());
    CHECK(d.answer["meets_minimum"] == false);
    CHECK(d.events[0].severity == severity::moderate);
}

TEST_CASE("a slow drill with problems yields its record, hazards and an exercise alarm",
          "[services]") {
    // 420502K001 is a kindergarten of 2 floors: target 180 s.
    auto req = json::parse(R"({"school":"420502K001","drill_type":"fire","mode":"live",
        "announced":false,"started_at":"2026-11-29T02:00:00Z","all_clear_at":"2026-11-29T02:03:20Z",
        "participants":220,"headcount_expected":220,"headcount_reported":220,
        "problems":["东侧楼梯堵塞",{"description":"应急灯不亮","area":"fire"}],
        "simulated_alarm":true})");
    auto d = drill::record(req, ctx("pingan-drill/test"));
    REQUIRE(d.ok());
    REQUIRE(d.events.size() == 4);
    CHECK(d.events[0].type() == "incident.reported");
    CHECK(d.events[0].status == status::exercise);
    CHECK(d.events[1].type() == "drill.recorded");
    CHECK(d.events[1].status == status::actual);
    const auto& r = std::get<drill_recorded>(d.events[1].body);
    CHECK(r.evacuation_seconds == 200);
    CHECK(r.target_seconds == 180);
    CHECK_FALSE(r.corrective_actions.empty());
    CHECK(d.answer["within_target"] == false);
    for (int i : {2, 3}) {
        CHECK(d.events[i].type() == "hazard.reported");
        CHECK(d.events[i].references.at(0) == d.events[1].id);
    }
    CHECK(std::get<hazard_reported>(d.events[3].body).area == hazard_area::fire);
    for (const auto& e : d.events)
        CHECK_FALSE(validate(e));
}

TEST_CASE("a drill whose all-clear is before its start is refused", "[services]") {
    auto req = json::parse(R"({"school":"420502K001","drill_type":"fire","mode":"live",
        "started_at":"2026-11-29T02:00:00Z","all_clear_at":"2026-11-29T01:00:00Z"})");
    auto d = drill::record(req, ctx("pingan-drill/test"));
    CHECK(d.events.empty());
    REQUIRE_FALSE(d.errors.empty());
    CHECK(d.errors[0].field == "all_clear_at");
}

TEST_CASE("a drill with a simulated alarm that started before 1970 is refused", "[services]") {
    // Found by the http_intake fuzz target: the alarm event took the start time
    // unchecked, and the broker would have refused it.
    auto req = json::parse(R"({"school":"420502K001","drill_type":"fire","mode":"live",
        "started_at":"1013-11-29T01:00:00Z","all_clear_at":"2026-11-29T01:05:00Z",
        "participants":500,"headcount_expected":500,"headcount_reported":500,
        "simulated_alarm":true})");
    auto d = drill::record(req, ctx("pingan-drill/test"));
    CHECK(d.events.empty());
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0].field == "started_at");
    CHECK(d.errors[0].message == "body.started_at is before 1970");
}

TEST_CASE("a psych alert carries a keyed pseudonym, never the student's id", "[services]") {
    auto keys = wellbeing::school_keys::parse(
        "# test keys\n420502K001 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
        "420502K002 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100\n");
    auto req = json::parse(R"({"school":"420502K001","student_id":"2019-0347","risk_level":"red",
        "source":"teacher","indicator_codes":["SH-1","SLEEP-2"],"reported_by_role":"head_teacher"})");
    auto d = wellbeing::psych_alert(req, ctx("pingan-wellbeing/test"), keys);
    REQUIRE(d.ok());
    const auto& e = d.events[0];
    CHECK(e.scope == scope::private_);
    CHECK(e.severity == severity::extreme);
    const auto& a = std::get<psych_alert>(e.body);
    CHECK(a.student_ref.rfind("S-", 0) == 0);
    CHECK(a.student_ref.size() == 34);
    CHECK(to_json_line(e).find("2019-0347") == std::string::npos);
    CHECK(encode(e).find("2019-0347") == std::string::npos);
    CHECK_FALSE(validate(e));

    // Same student, same school: same reference. Another school's key: another.
    auto again =
        json::parse(R"({"school":"420502K001","student_id":"2019-0347","risk_level":"yellow",
        "source":"screening","indicator_codes":["S1"],"reported_by_role":"psych_teacher"})");
    CHECK(std::get<psych_alert>(wellbeing::psych_alert(again, ctx("w"), keys).events[0].body)
              .student_ref == a.student_ref);
    CHECK(wellbeing::student_ref(*keys.find("420502K002"), "420502K002", "2019-0347") !=
          a.student_ref);
}

TEST_CASE("the wellbeing intake's answer does not tell the pseudonym it made", "[services]") {
    auto keys = wellbeing::school_keys::parse(
        "420502K001 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    // A guessed id posted as a Test alert: the answer must not be an oracle for its reference.
    auto req = json::parse(R"({"school":"420502K001","student_id":"2019-0347","risk_level":"yellow",
        "status":"Test","source":"peer","indicator_codes":["S1"],"reported_by_role":"peer"})");
    auto d = wellbeing::psych_alert(req, ctx("pingan-wellbeing/test"), keys);
    REQUIRE(d.ok());
    const auto& ref = std::get<psych_alert>(d.events[0].body).student_ref;
    REQUIRE(ref.size() == 34);
    CHECK_FALSE(d.answer.contains("student_ref"));
    CHECK(d.answer.dump().find(ref) == std::string::npos);
    CHECK(d.answer.contains("alert_id"));
}

TEST_CASE("names, free text and unknown schools are refused by the wellbeing intake",
          "[services]") {
    auto keys = wellbeing::school_keys::parse(
        "420502K001 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    auto req = json::parse(R"({"school":"420502K001","student_id":"S9","student_name":"张三",
        "note":"家庭矛盾","risk_level":"orange","source":"teacher",
        "indicator_codes":["has spaces"],"reported_by_role":"head_teacher"})");
    auto d = wellbeing::psych_alert(req, ctx("w"), keys);
    CHECK(d.events.empty());
    std::vector<std::string> f;
    for (const auto& p : d.errors)
        f.push_back(p.field);
    CHECK_THAT(f, Catch::Matchers::UnorderedEquals(
                      std::vector<std::string>{"student_name", "note", "indicator_codes"}));
    for (const auto& p : d.errors)
        CHECK(p.message.find("张三") == std::string::npos);

    req = json::parse(R"({"school":"420502K002","student_id":"S9","risk_level":"orange",
        "source":"teacher","indicator_codes":["A1"],"reported_by_role":"head_teacher"})");
    d = wellbeing::psych_alert(req, ctx("w"), keys);
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0].field == "school");
    CHECK_THROWS_AS(wellbeing::school_keys::parse("420502K001 nothex\n"), pingan::error);
}
