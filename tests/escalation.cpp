// Black-box tests of the escalation engine inside real pingan-broker processes:
// a scripted school day on a manual clock, the incidents commands, a restart
// with a deadline pending, replay of the live log, and rule reloads on SIGHUP.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

using namespace pingan;
using namespace pingan::test;

namespace {

using std::chrono::milliseconds;

constexpr const char* day_start = "2026-09-01T08:00:00+08:00";
constexpr const char* primary = "420502P001"; // 西陵第1实验小学: primary, canteen, 3 floors
constexpr const char* bus_school = "420504K001"; // 榛花街道中心幼儿园: school bus

std::string default_rules() {
    return source_path("config/rules/yichang-default.yaml");
}

// A broker with the escalation engine, and clients of its sockets.
struct live_broker {
    zmq::context_t ctx{1};
    broker_process b;
    ingest_client pub;
    query_client q;

    // The broker's log (warnings and errors) goes to `log_file` if one is given.
    live_broker(const std::string& data, std::vector<std::string> flags,
                const std::string& log_file = {})
        : b(data, std::move(flags), log_file), pub(ctx, b.ingest), q(ctx, b.query) {}

    // A broker on `data` with `rules` and a manual clock starting at `start`.
    static std::vector<std::string> flags(const std::string& start,
                                          const std::string& rules = default_rules()) {
        return {"--rules", rules, "--clock", "manual:" + start};
    }

    timestamp now() { return *parse_utc(q.clock(json::object())["now"].get<std::string>()); }

    // An event of `type` at `where`, happening now by the broker's clock.
    event make(const std::string& type, const std::string& where, json body,
               const std::string& status = "Actual") {
        auto t = now();
        json j = {{"type", type},
                  {"school", where},
                  {"status", status},
                  {"severity", "Severe"},
                  {"occurred_at", format_utc(t)},
                  {"source", "pingan-test/escalation"},
                  {"body", std::move(body)}};
        if (type == "psych.alert" || type == "bullying.reported") j["scope"] = "Private";
        event e;
        auto p = from_json(j, e);
        INFO(p.text());
        REQUIRE_FALSE(p);
        e.id = new_event_id(t);
        return e;
    }

    // Publishes one event. Returns: its offset.
    std::uint64_t publish(const event& e) {
        std::vector<event> batch{e};
        auto r = pub.publish(batch);
        REQUIRE(r.results.size() == 1);
        INFO(r.results[0].message);
        REQUIRE(r.results[0].what == wire::outcome::stored);
        return r.results[0].offset;
    }
    std::uint64_t publish(const std::string& type, const std::string& where, json body,
                          const std::string& status = "Actual") {
        return publish(make(type, where, std::move(body), status));
    }

    // A move by nothing: answers once everything due so far, and all it
    // derives, is stored (docs/protocol.md, CLOCK).
    void fence() { q.clock({{"advance", "0s"}}); }

    std::uint64_t count(const std::string& type) {
        auto by = q.stats()["by_type"];
        return by.contains(type) ? by[type].get<std::uint64_t>() : 0;
    }

    // Moves the manual clock and waits until the timer events it makes are
    // stored (the timers fire on the writer thread after CLOCK answers).
    void advance(const std::string& d, std::uint64_t fired_total) {
        q.clock({{"advance", d}});
        settle(fired_total);
    }
    void set(const std::string& t, std::uint64_t fired_total) {
        q.clock({{"set", t}});
        settle(fired_total);
    }
    void settle(std::uint64_t fired_total) {
        REQUIRE(eventually([&] { return count("timer.fired") >= fired_total; }));
        // Nothing more: the head stays where it is.
        auto head = q.stats()["head"].get<std::uint64_t>();
        fence();
        CHECK(q.stats()["head"].get<std::uint64_t>() == head);
        CHECK(count("timer.fired") == fired_total);
    }

    // The whole log as JSON.
    std::vector<json> log() {
        std::vector<json> v;
        replay_request r;
        r.json = true;
        q.replay(r, [&](std::uint64_t, std::string_view line) {
            v.push_back(json::parse(line));
            return true;
        });
        return v;
    }
};

constexpr const char* engine_source = "pingan-broker/engine";

bool is_derived(const json& e) {
    static const std::set<std::string> types{
        "incident.opened",        "incident.overdue",  "incident.closed", "incident.reopened",
        "notification.requested", "escalation.raised", "timer.fired",     "ruleset.loaded"};
    // And the reports of typed incidents, which the engine makes too.
    return types.count(e["type"].get<std::string>()) > 0 || e.value("source", "") == engine_source;
}

std::string roles_of(const json& b) {
    std::string s;
    for (const auto& r : b["roles"])
        s += (s.empty() ? "" : ",") + r.get<std::string>();
    return s;
}

// What the engine derived, one line per event, naming each incident by
// kind/subject (from its incident.opened) so that expectations need no hashes.
// Also checks that every derived event names an incident that was opened.
std::vector<std::string> summary(const std::vector<json>& log) {
    std::map<std::string, std::string> incidents; // id → kind/subject
    for (const auto& e : log)
        if (e["type"] == "incident.opened") {
            const auto& b = e["body"];
            auto name = b["kind"].get<std::string>() + "/" + b["subject"].get<std::string>();
            CHECK(incidents.emplace(b["incident_id"].get<std::string>(), name).second);
        }
    auto name_of = [&](const std::string& id) {
        auto it = incidents.find(id);
        INFO("incident " << id);
        CHECK(it != incidents.end());
        return it == incidents.end() ? "?" + id : it->second;
    };
    std::vector<std::string> out;
    for (const auto& e : log) {
        if (!is_derived(e)) continue;
        auto type = e["type"].get<std::string>();
        const auto& b = e["body"];
        auto status = " " + e["status"].get<std::string>();
        std::string s;
        if (type == "ruleset.loaded") {
            s = "ruleset " + b["name"].get<std::string>();
        } else if (type == "timer.fired") {
            // timer id: incident/rule/step/repeat/generation
            auto id = b["timer_id"].get<std::string>();
            auto slash = id.find('/');
            auto rule = id.substr(slash + 1, id.find('/', slash + 1) - slash - 1);
            s = "timer " + rule + " " + name_of(id.substr(0, slash)) +
                (b["late"].get<bool>() ? " late" : "");
        } else if (type == "incident.reported") {
            s = "report " + b["category"].get<std::string>() + " " +
                name_of(b["incident_id"].get<std::string>()) + status;
        } else if (type == "incident.opened") {
            s = "opened " + b["rule_id"].get<std::string>() + " " +
                name_of(b["incident_id"].get<std::string>()) + status;
        } else if (type == "notification.requested") {
            s = "page " + b["rule_id"].get<std::string>() + " " +
                name_of(b["incident_id"].get<std::string>()) + " " + b["tier"].get<std::string>() +
                " " + roles_of(b) + status + (b["exercise"].get<bool>() ? " exercise" : "");
        } else if (type == "incident.overdue") {
            s = "overdue " + b["rule_id"].get<std::string>() + " " +
                name_of(b["incident_id"].get<std::string>()) + " " + b["tier"].get<std::string>() +
                " step" + std::to_string(b["step"].get<int>()) + " " +
                b["waited_for"].get<std::string>() + status +
                (b["late"].get<bool>() ? " late" : "");
        } else if (type == "escalation.raised") {
            s = "escalation " + b["rule_id"].get<std::string>() + " " +
                name_of(b["incident_id"].get<std::string>()) + " " + b["tier"].get<std::string>() +
                " " + roles_of(b) + status + (b["late"].get<bool>() ? " late" : "");
        } else {
            s = type.substr(9) + " " + b["rule_id"].get<std::string>() + " " +
                name_of(b["incident_id"].get<std::string>()) + status;
        }
        out.push_back(s);
    }
    return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// The events of `type` in the log whose body has `key` == `value`.
std::vector<json> having(const std::vector<json>& log, const std::string& type,
                         const std::string& key = {}, const json& value = {}) {
    std::vector<json> v;
    for (const auto& e : log)
        if (e["type"] == type && (key.empty() || e["body"][key] == value)) v.push_back(e);
    return v;
}

json hazard(const std::string& id, const std::string& grade, const std::string& area) {
    return {{"hazard_id", id},           {"area", area},         {"grade", grade},
            {"description", "护栏松动"}, {"location", "教学楼"}, {"found_by", "safety_officer"}};
}

json psych(const std::string& alert) {
    return {{"alert_id", alert},
            {"student_ref", "STU-" + alert},
            {"risk_level", "red"},
            {"source", "teacher"},
            {"reported_by_role", "head_teacher"}};
}

json ack(const std::string& ref) {
    return {{"incident_id", ref}, {"note", "已到场处置"}};
}

json illness(int cases) {
    return {{"canteen_id", "C1"},
            {"kind", "illness"},
            {"meal_id", "M1"},
            {"cases", cases},
            {"samples_sealed", true},
            {"service_stopped", true},
            {"description", "午餐后腹痛"}};
}

// The hash `pingan rules check` reports for a rule file.
std::string hash_of(const std::string& file) {
    auto r = run_stdout({"rules", "check", file});
    REQUIRE(r.code == 0);
    REQUIRE(r.lines.size() == 1);
    std::smatch m;
    REQUIRE(std::regex_search(r.lines[0], m, std::regex("hash ([0-9a-f]{32})")));
    return m[1];
}

// The scripted school day of the first test; used again by the replay test.
void school_day(live_broker& lb) {
    // 08:00 a general hazard due at 17:00, major hazards with and without interim control.
    auto general = hazard("H-G1", "general", "building");
    general["deadline"] = "2026-09-01T17:00:00+08:00";
    lb.publish("hazard.reported", primary, general);
    auto controlled = hazard("H-M1", "major", "fire");
    controlled["interim_control"] = "已封闭疏散通道并设专人值守";
    lb.publish("hazard.reported", primary, controlled);
    lb.publish("hazard.reported", primary, hazard("H-M2", "major", "fire"));

    // 08:30 two red psych alerts; A1 is acknowledged after 5 minutes, A2 never.
    lb.advance("30m", 0);
    lb.publish("psych.alert", primary, psych("A1"));
    lb.publish("psych.alert", primary, psych("A2"));
    lb.advance("5m", 0);
    lb.publish("incident.acknowledged", primary, ack("A1"));
    lb.advance("5m", 1);                    // 08:40: A2 unacknowledged for 10 min
    lb.advance("5m", 2);                    // 08:45: A2 unacknowledged for 15 min
    lb.set("2026-09-01T12:00:00+08:00", 3); // H-M2 without interim control for 4 h

    // 12:00 two ill after lunch; 12:30 five. Nobody acknowledges by 14:00.
    lb.publish("food.alert", primary, illness(2));
    lb.advance("30m", 3);
    lb.publish("food.alert", primary, illness(5));
    // The public-health incident's 30 min and 60 min deadlines, and both 2 h
    // deadlines of the meal (met: the county and regulators were told at 12:30).
    // The clock stops at each deadline so that each fires on time.
    lb.set("2026-09-01T13:00:00+08:00", 4);
    lb.set("2026-09-01T13:30:00+08:00", 5);
    lb.set("2026-09-01T14:00:00+08:00", 7);

    // 14:30 the county has not relayed to the city. 15:00 a slow drill (240 s,
    // target 180 s); 15:30 a bus with one child missing.
    lb.set("2026-09-01T14:30:00+08:00", 8);
    lb.set("2026-09-01T15:00:00+08:00", 8);
    lb.publish("drill.recorded", primary,
               {{"drill_id", "D1"},
                {"drill_type", "fire"},
                {"mode", "live"},
                {"started_at", "2026-09-01T14:50:00+08:00"},
                {"all_clear_at", "2026-09-01T14:54:00+08:00"},
                {"evacuation_seconds", 240},
                {"participants", 1783},
                {"headcount_expected", 1783},
                {"headcount_reported", 1783}});
    lb.advance("30m", 8);
    lb.publish("bus.trip", bus_school,
               {{"bus_id", "BUS-1"}, {"trip_id", "T1"}, {"boarded", 30}, {"alighted", 29}});

    // 16:00 an exercise red alert; a real acknowledgement must not silence it.
    lb.advance("30m", 8);
    lb.publish("psych.alert", primary, psych("X1"), "Exercise");
    lb.publish("incident.acknowledged", primary, ack("X1"));
    lb.advance("10m", 9);
    lb.advance("5m", 10);
    lb.set("2026-09-01T17:00:00+08:00", 11); // H-G1 not rectified by its deadline
    lb.advance("1h", 11);
}

const std::vector<std::string> school_day_expected{
    "ruleset yichang-campus-safety-default",
    // 08:00
    "opened hazard.general hazard/H-G1 System",
    "page hazard.general hazard/H-G1 school safety_officer System",
    "opened hazard.major hazard/H-M1 System",
    "page hazard.major hazard/H-M1 school principal,safety_vp System",
    "page hazard.major hazard/H-M1 district county_bureau System",
    "page hazard.major hazard/H-M1 regulator safety_regulator System",
    "opened hazard.major hazard/H-M2 System",
    "page hazard.major hazard/H-M2 school principal,safety_vp System",
    "page hazard.major hazard/H-M2 district county_bureau System",
    "page hazard.major hazard/H-M2 regulator safety_regulator System",
    "opened hazard.major.no_interim hazard_interim/H-M2 System",
    "page hazard.major.no_interim hazard_interim/H-M2 school principal System",
    // 08:30
    "opened psych.red psych/A1 System",
    "page psych.red psych/A1 school psych_teacher,head_teacher,principal,safety_vp System",
    "page psych.red psych/A1 school guardian System",
    "opened psych.red psych/A2 System",
    "page psych.red psych/A2 school psych_teacher,head_teacher,principal,safety_vp System",
    "page psych.red psych/A2 school guardian System",
    // 08:40 and 08:45: only A2
    "timer psych.red psych/A2",
    "overdue psych.red psych/A2 school step2 acknowledged System",
    "page psych.red psych/A2 school principal System",
    "timer psych.red psych/A2",
    "overdue psych.red psych/A2 district step3 acknowledged System",
    "escalation psych.red psych/A2 district county_centre System",
    "page psych.red psych/A2 district county_centre System",
    // 12:00
    "timer hazard.major.no_interim hazard_interim/H-M2",
    "overdue hazard.major.no_interim hazard_interim/H-M2 district step1 closed System",
    "escalation hazard.major.no_interim hazard_interim/H-M2 district county_bureau System",
    "page hazard.major.no_interim hazard_interim/H-M2 district county_bureau System",
    "opened food.illness food_illness/C1/M1 System",
    "page food.illness food_illness/C1/M1 school canteen_manager,principal,school_doctor System",
    // 12:30: the fifth case joins the incident and goes to the city at once
    "page food.illness.major food_illness/C1/M1 district county_bureau System",
    "page food.illness.major food_illness/C1/M1 city city_bureau System",
    "page food.illness.major food_illness/C1/M1 regulator market_reg,cdc System",
    // ... and opens a public-health incident, which the emergency rules run on
    "report public_health food_illness/C1/M1 System",
    "opened incident.initial emergency/INC-4fc8fa6050acc414 System",
    "page incident.initial emergency/INC-4fc8fa6050acc414 school principal,safety_officer System",
    "page incident.initial emergency/INC-4fc8fa6050acc414 district county_bureau System",
    // 13:00 the county has not acknowledged; 13:30 no written report to the county
    "timer incident.initial emergency/INC-4fc8fa6050acc414",
    "overdue incident.initial emergency/INC-4fc8fa6050acc414 city step2 acknowledged System",
    "escalation incident.initial emergency/INC-4fc8fa6050acc414 city city_bureau System",
    "page incident.initial emergency/INC-4fc8fa6050acc414 city city_bureau System",
    "timer incident.initial emergency/INC-4fc8fa6050acc414",
    "overdue incident.initial emergency/INC-4fc8fa6050acc414 school step3 reported:district System",
    "page incident.initial emergency/INC-4fc8fa6050acc414 school principal System",
    // 14:00: the meal's 2 h deadlines are met (told at 12:30)
    "timer food.illness food_illness/C1/M1",
    "timer food.illness food_illness/C1/M1",
    // 14:30: no relay to the city; the city knows already, so a reminder
    "timer incident.initial emergency/INC-4fc8fa6050acc414",
    "overdue incident.initial emergency/INC-4fc8fa6050acc414 city step4 reported:city System",
    "page incident.initial emergency/INC-4fc8fa6050acc414 city city_bureau System",
    // 15:00, 15:30
    "opened drill.too_slow drill_slow/D1 System",
    "page drill.too_slow drill_slow/D1 school safety_officer,principal System",
    "opened bus.headcount bus_headcount/T1 System",
    "page bus.headcount bus_headcount/T1 school bus_attendant,principal,guardian System",
    // 16:00 the exercise, 16:10 and 16:15 its deadlines
    "opened psych.red psych/X1 Exercise",
    "page psych.red psych/X1 school psych_teacher,head_teacher,principal,safety_vp Exercise "
    "exercise",
    "page psych.red psych/X1 school guardian Exercise exercise",
    "timer psych.red psych/X1",
    "overdue psych.red psych/X1 school step2 acknowledged Exercise",
    "page psych.red psych/X1 school principal Exercise exercise",
    "timer psych.red psych/X1",
    "overdue psych.red psych/X1 district step3 acknowledged Exercise",
    "escalation psych.red psych/X1 district county_centre Exercise",
    "page psych.red psych/X1 district county_centre Exercise exercise",
    // 17:00
    "timer hazard.general hazard/H-G1",
    "overdue hazard.general hazard/H-G1 school step1 rectified System",
    "page hazard.general hazard/H-G1 school safety_officer System",
};

} // namespace

TEST_CASE("a scripted school day on a live broker raises exactly the escalations the rules "
          "promise",
          "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags(day_start));
    school_day(lb);
    auto log = lb.log();
    CHECK(sorted(summary(log)) == sorted(school_day_expected));

    // Every derived event names the rule set that was loaded, by its file's hash.
    auto loaded = having(log, "ruleset.loaded");
    REQUIRE(loaded.size() == 1);
    auto hash = loaded[0]["body"]["hash"].get<std::string>();
    CHECK(hash == hash_of(default_rules()));
    CHECK(loaded[0]["body"]["rule_count"] == 47);
    for (const auto& e : log)
        if (is_derived(e) && e["body"].contains("ruleset_hash"))
            CHECK(e["body"]["ruleset_hash"] == hash);

    // Deadlines fired at their time, by the clock, not late.
    for (const auto& e : having(log, "escalation.raised")) {
        CHECK(e["received_at"] == e["body"]["deadline"]);
        CHECK(e["body"]["late"] == false);
    }
    auto a2 = having(log, "escalation.raised", "tier", "district");
    REQUIRE_FALSE(a2.empty());
    CHECK(a2[0]["received_at"] == "2026-09-01T00:45:00.000000Z");

    // The exercise: every effect is Exercise and every page says so.
    std::string x1;
    for (const auto& e : having(log, "incident.opened", "subject", "X1"))
        x1 = e["body"]["incident_id"];
    REQUIRE_FALSE(x1.empty());
    int exercise_effects = 0;
    for (const auto& e : log)
        if (is_derived(e) && e["body"].value("incident_id", "") == x1) {
            CHECK(e["status"] == "Exercise");
            ++exercise_effects;
            if (e["type"] == "notification.requested") {
                CHECK(e["body"]["text"].get<std::string>().rfind("【演练 EXERCISE】", 0) == 0);
                CHECK(e["body"]["exercise"] == true);
            }
        }
    CHECK(exercise_effects == 8); // the 10 min reminder to the principal is no escalation

    // Minors' data stays at school level: the county centre's page names no student.
    for (const auto& e : having(log, "notification.requested", "tier", "district")) {
        auto text = e["body"]["text"].get<std::string>();
        CHECK(text.find("STU-") == std::string::npos);
        if (text.find("心理") != std::string::npos) CHECK(e["scope"] == "Private");
    }

    // Every derived event follows its cause and references it.
    std::map<std::string, std::uint64_t> offset_of;
    for (const auto& e : log)
        offset_of[e["id"].get<std::string>()] = e["offset"];
    for (const auto& e : log)
        if (is_derived(e) && e["type"] != "timer.fired") {
            REQUIRE(e["references"].size() == 1);
            auto cause = e["references"][0].get<std::string>();
            REQUIRE(offset_of.count(cause));
            CHECK(offset_of[cause] < e["offset"].get<std::uint64_t>());
        }
}

TEST_CASE("an acknowledgement one second before a deadline stops it, one second after does not",
          "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags(day_start));
    lb.publish("psych.alert", primary, psych("EARLY"));
    lb.publish("psych.alert", primary, psych("LATE"));
    lb.advance("9m59s", 0);
    lb.publish("incident.acknowledged", primary, ack("EARLY"));
    lb.advance("1s", 1); // 10 min: LATE's first deadline
    lb.advance("1s", 1);
    lb.publish("incident.acknowledged", primary, ack("LATE"));
    lb.advance("1h", 1); // the 15 min deadline of either never comes
    auto s = summary(lb.log());
    CHECK(std::count_if(s.begin(), s.end(), [](const std::string& l) {
              return l.find("EARLY") != std::string::npos &&
                     (l.starts_with("overdue") || l.starts_with("escalation"));
          }) == 0);
    // The school was told at once, so its 10 min step is a reminder to the
    // principal, not an escalation.
    CHECK(std::count(s.begin(), s.end(),
                     "overdue psych.red psych/LATE school step2 acknowledged System") == 1);
    CHECK(std::count(s.begin(), s.end(), "page psych.red psych/LATE school principal System") == 1);
    CHECK(std::count_if(s.begin(), s.end(),
                        [](const std::string& l) { return l.starts_with("escalation"); }) == 0);
    CHECK(std::count_if(s.begin(), s.end(), [](const std::string& l) {
              return l.starts_with("escalation") && l.find(" district ") != std::string::npos;
          }) == 0);
}

TEST_CASE("pingan incidents lists, shows, acknowledges, resolves and verifies on a live broker",
          "[escalation]") {
    temp_dir d;
    // The system clock: the CLI stamps acknowledgements with the time of day.
    broker_process b(d / "store", {"--rules", default_rules()});
    auto data = d / "store";
    auto publish = [&](const json& j) {
        auto r = run_stdout({"publish", "--ingest", b.ingest, j.dump()});
        REQUIRE(r.code == 0);
    };
    auto incident = [&](const std::string& ref) {
        auto r =
            run_stdout({"incidents", "show", ref, "--school", primary, "--json", "--data", data});
        REQUIRE(r.code == 0);
        REQUIRE(r.lines.size() == 1);
        return json::parse(r.lines[0]);
    };
    auto act = [&](std::vector<std::string> args) {
        args.insert(args.end(), {"--ingest", b.ingest, "--query", b.query});
        auto r = run_stdout(args);
        REQUIRE(r.code == 0);
        REQUIRE(r.lines.size() == 1);
        auto j = json::parse(r.lines[0]);
        CHECK(j["duplicate"] == false);
        CHECK(j["offset"].get<std::uint64_t>() > 0);
        return j;
    };
    json h = {{"type", "hazard.reported"},
              {"school", primary},
              {"status", "Actual"},
              {"body", hazard("H-CLI", "general", "building")}};
    publish(h);
    json trip = {
        {"type", "bus.trip"},
        {"school", primary},
        {"status", "Actual"},
        {"body", {{"bus_id", "BUS-9"}, {"trip_id", "T9"}, {"boarded", 12}, {"alighted", 11}}}};
    publish(trip);

    auto list = run_stdout({"incidents", "list", "--json", "--data", data});
    REQUIRE(list.code == 0);
    REQUIRE(list.lines.size() == 2);
    auto first = json::parse(list.lines[0]), second = json::parse(list.lines[1]);
    CHECK(first["kind"] == "hazard");
    CHECK(first["subject"] == "H-CLI");
    CHECK(first["state"] == "open");
    CHECK(second["kind"] == "bus_headcount");
    CHECK(second["school"] == primary);
    auto open =
        run_stdout({"incidents", "list", "--open", "--kind", "bus_headcount", "--data", data});
    REQUIRE(open.lines.size() == 1);
    CHECK(open.lines[0].find(second["id"].get<std::string>()) != std::string::npos);
    CHECK(open.lines[0].find("西陵第1实验小学") != std::string::npos);

    // The bus incident: acknowledged, then resolved and closed.
    auto trip_id = second["id"].get<std::string>();
    act({"incidents", "ack", trip_id, "--note", "已清点车厢"});
    auto acked = incident(trip_id);
    CHECK(acked["state"] == "acknowledged");
    CHECK(acked["acknowledged_by"] == json::array({"anonymous"}));
    act({"incidents", "resolve", trip_id, "--resolution", "学生已由家长接走"});
    CHECK(incident(trip_id)["state"] == "closed");
    auto missing = run_stdout({"incidents", "show", "INC-0000000000000000", "--data", data});
    CHECK(missing.code == 1);

    // The hazard: resolve does not close it (the CLI says so and publishes
    // nothing); the fixer's own check does not count.
    CHECK(run_stdout({"incidents", "resolve", "H-CLI", "--school", primary, "--resolution",
                      "已处理", "--ingest", b.ingest, "--query", b.query})
              .code == 1);
    CHECK(incident("H-CLI")["state"] == "open");
    publish(
        {{"type", "hazard.rectified"},
         {"school", primary},
         {"status", "Actual"},
         {"body", {{"hazard_id", "H-CLI"}, {"rectified_by", "wang"}, {"description", "已加固"}}}});
    CHECK(incident("H-CLI")["state"] == "rectified");
    CHECK(incident("H-CLI")["rectified_by"] == "wang");
    // The CLI refuses the fixer's own check; published anyway, the engine does not count it.
    CHECK(run_stdout({"incidents", "verify", "H-CLI", "--school", primary, "--verifier", "wang",
                      "--ingest", b.ingest, "--query", b.query})
              .code == 1);
    publish({{"type", "hazard.verified"},
             {"school", primary},
             {"status", "Actual"},
             {"body",
              {{"hazard_id", "H-CLI"},
               {"verifier", "wang"},
               {"result", "pass"},
               {"evidence", "自查"}}}});
    CHECK(incident("H-CLI")["state"] == "rectified");
    act({"incidents", "verify", "H-CLI", "--school", primary, "--verifier", "li", "--evidence",
         "复查合格"});
    auto closed = incident("H-CLI");
    CHECK(closed["state"] == "closed");
    CHECK(closed["milestones"] == json::array({"closed", "rectified", "verified"}));
    CHECK(run_stdout({"incidents", "list", "--open", "--json", "--data", data}).lines.empty());

    // The log says the same: one refusal page to the school, then two closings.
    zmq::context_t ctx(1);
    query_client q(ctx, b.query);
    std::vector<json> log;
    replay_request r;
    r.json = true;
    q.replay(r, [&](std::uint64_t, std::string_view l) {
        log.push_back(json::parse(l));
        return true;
    });
    auto hazard_id = first["id"].get<std::string>();
    auto refusals = having(log, "notification.requested", "incident_id", hazard_id);
    REQUIRE(refusals.size() == 2); // the report's page, and the refused verification
    CHECK(refusals[1]["body"]["text"].get<std::string>().find("wang") != std::string::npos);
    CHECK(refusals[1]["body"]["roles"] == json::array({"safety_officer"}));
    auto closings = having(log, "incident.closed");
    REQUIRE(closings.size() == 2);
    CHECK(closings[0]["body"]["incident_id"] == trip_id);
    CHECK(closings[0]["body"]["rule_id"] == "bus.headcount");
    CHECK(closings[1]["body"]["incident_id"] == hazard_id);
    CHECK(closings[1]["body"]["reason"] == "verified by li");
}

TEST_CASE("a deadline pending when the broker is killed fires exactly once, and late if it "
          "passed while the broker was down",
          "[escalation]") {
    temp_dir d;
    auto store = d / "store";
    {
        live_broker lb(store, live_broker::flags(day_start));
        lb.publish("psych.alert", primary, psych("R1"));
        lb.b.proc->signal(SIGKILL);
        CHECK(lb.b.proc->wait() == 128 + SIGKILL);
    }
    {
        // The same start time: the 10 min deadline fires when the clock reaches it.
        live_broker lb(store, live_broker::flags(day_start));
        lb.advance("9m", 0);
        lb.advance("1m", 1);
        lb.advance("2m", 1);
        lb.b.proc->signal(SIGKILL); // with the 15 min deadline still pending
        CHECK(lb.b.proc->wait() == 128 + SIGKILL);
    }
    live_broker lb(store, live_broker::flags("2026-09-01T09:00:00+08:00"));
    // The 15 min deadline passed while the broker was down: it fires at once.
    REQUIRE(eventually([&] { return lb.count("timer.fired") >= 2; }));
    lb.settle(2);
    lb.advance("1h", 2);
    auto log = lb.log();
    CHECK(
        sorted(summary(log)) ==
        sorted({"ruleset yichang-campus-safety-default", "opened psych.red psych/R1 System",
                "page psych.red psych/R1 school psych_teacher,head_teacher,principal,safety_vp "
                "System",
                "page psych.red psych/R1 school guardian System", "timer psych.red psych/R1",
                "overdue psych.red psych/R1 school step2 acknowledged System",
                "page psych.red psych/R1 school principal System", "timer psych.red psych/R1 late",
                "overdue psych.red psych/R1 district step3 acknowledged System late",
                "escalation psych.red psych/R1 district county_centre System late",
                "page psych.red psych/R1 district county_centre System"}));
    auto late = having(log, "escalation.raised", "late", true);
    REQUIRE(late.size() == 1);
    CHECK(late[0]["body"]["deadline"] == "2026-09-01T00:15:00.000000Z");
    CHECK(late[0]["received_at"] == "2026-09-01T01:00:00.000000Z");
    // The page itself says it is late, not only the escalation.
    auto late_pages = having(log, "notification.requested", "late", true);
    REQUIRE(late_pages.size() == 1);
    CHECK(late_pages[0]["body"]["roles"] == json::array({"county_centre"}));
    CHECK(having(log, "notification.requested").size() == 4);
}

TEST_CASE("replaying the live log of the school day with the same rules reproduces it exactly",
          "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags(day_start));
    school_day(lb);
    auto log = lb.log();

    auto diff = run_stdout(
        {"rules", "replay", "--rules", default_rules(), "--diff", "--query", lb.b.query});
    CHECK(diff.code == 0);
    CHECK(diff.lines ==
          std::vector<std::string>{"pages added by these rules: 0",
                                   "pages in the log these rules would not make: 0",
                                   "pages at another time or lateness (log -> these rules): 0",
                                   "first page per school (log -> these rules):"});

    // With the log's own timer events, the derived events come out byte for byte
    // (the sandbox leaves out its own ruleset.loaded).
    auto replayed = run_stdout({"rules", "replay", "--rules", default_rules(), "--logged-timers",
                                "--json", "--query", lb.b.query});
    CHECK(replayed.code == 0);
    std::vector<std::string> logged;
    for (auto e : log)
        if (is_derived(e) && e["type"] != "timer.fired" && e["type"] != "ruleset.loaded") {
            event back;
            REQUIRE_FALSE(from_json(e, back));
            back.offset = 0;
            back.actor.clear();
            logged.push_back(to_json_line(back));
        }
    CHECK(logged.size() ==
          static_cast<std::size_t>(std::count_if(
              school_day_expected.begin(), school_day_expected.end(), [](const std::string& l) {
                  return !l.starts_with("timer ") && !l.starts_with("ruleset ");
              })));
    CHECK(replayed.lines == logged);
}

TEST_CASE("SIGHUP keeps the rules in force when the file is broken and loads a valid change",
          "[escalation]") {
    temp_dir d;
    auto rules = d / "rules.yaml";
    auto text = read_file(default_rules());
    { std::ofstream(rules, std::ios::binary) << text; }
    auto old_hash = hash_of(rules);
    live_broker lb(d / "store", live_broker::flags(day_start, rules), d / "broker.log");
    auto trip = [&](const std::string& id) {
        lb.publish("bus.trip", bus_school,
                   {{"bus_id", "BUS-1"}, {"trip_id", id}, {"boarded", 30}, {"alighted", 29}});
    };
    auto pages_for = [&](const std::vector<json>& log, const std::string& trip_id) {
        std::string inc;
        for (const auto& e : having(log, "incident.opened", "subject", trip_id))
            inc = e["body"]["incident_id"];
        return having(log, "notification.requested", "incident_id", inc);
    };
    trip("T1");

    // A broken file: refused, the broker runs on with the old rules.
    {
        auto broken = text;
        broken.replace(broken.find("roles: [bus_attendant, principal, guardian]"), 43,
                       "roles: [bus_attendant, principal, guardian, nobody]");
        std::ofstream(rules, std::ios::binary) << broken;
    }
    lb.b.proc->signal(SIGHUP);
    // Handshake: the broker says it refused the file.
    REQUIRE(eventually([&] {
        return read_file(d / "broker.log").find("not reloaded; the rules in force stay") !=
               std::string::npos;
    }));
    int st = 0;
    REQUIRE(::waitpid(lb.b.proc->pid(), &st, WNOHANG) == 0); // still running
    trip("T2");
    auto log = lb.log();
    CHECK(having(log, "ruleset.loaded").size() == 1);
    auto t2 = pages_for(log, "T2");
    REQUIRE(t2.size() == 1);
    CHECK(t2[0]["body"]["roles"] == json::array({"bus_attendant", "principal", "guardian"}));
    CHECK(t2[0]["body"]["ruleset_hash"] == old_hash);

    // A valid change: loaded, logged with its hash before the next event's effects.
    {
        auto changed = text;
        changed.replace(changed.find("roles: [bus_attendant, principal, guardian]"), 43,
                        "roles: [bus_attendant, principal, transport_manager]");
        std::ofstream(rules, std::ios::binary) << changed;
    }
    auto new_hash = hash_of(rules);
    REQUIRE(new_hash != old_hash);
    lb.b.proc->signal(SIGHUP);
    // The broker takes new rules with the next event it applies.
    REQUIRE(eventually([&] {
        lb.publish("food.temp_reading", primary,
                   {{"canteen_id", "C1"},
                    {"sensor_id", "P1"},
                    {"zone", "cold_storage"},
                    {"celsius", 4.0}});
        return lb.count("ruleset.loaded") == 2;
    }));
    trip("T3");
    log = lb.log();
    auto loaded = having(log, "ruleset.loaded");
    REQUIRE(loaded.size() == 2);
    CHECK(loaded[0]["body"]["hash"] == old_hash);
    CHECK(loaded[1]["body"]["hash"] == new_hash);
    CHECK(loaded[1]["body"]["previous_hash"] == old_hash);
    auto t3 = pages_for(log, "T3");
    REQUIRE(t3.size() == 1);
    CHECK(t3[0]["body"]["roles"] ==
          json::array({"bus_attendant", "principal", "transport_manager"}));
    CHECK(t3[0]["body"]["ruleset_hash"] == new_hash);
}

TEST_CASE("pingan incidents ack and pingan clock drive a broker whose manual clock is in the past",
          "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags(day_start));
    lb.publish("psych.alert", primary, psych("P1"));
    auto clock = run_stdout({"clock", "--advance", "5m", "--query", lb.b.query});
    CHECK(clock.code == 0);
    CHECK(clock.lines == std::vector<std::string>{"2026-09-01T00:05:00.000000Z"});
    // Stamped with the broker's time, not this host's, so it is not refused as
    // too far ahead of the broker's clock.
    auto ack = run_stdout({"incidents", "ack", "P1", "--school", primary, "--note", "已联系监护人",
                           "--ingest", lb.b.ingest, "--query", lb.b.query});
    CHECK(ack.code == 0);
    REQUIRE(ack.lines.size() == 1);
    CHECK_FALSE(json::parse(ack.lines[0]).contains("error"));
    lb.advance("1h", 0); // both deadlines passed: nothing fires
    auto log = lb.log();
    auto acks = having(log, "incident.acknowledged");
    REQUIRE(acks.size() == 1);
    CHECK(acks[0]["occurred_at"] == "2026-09-01T00:05:00.000000Z");
    CHECK(having(log, "escalation.raised").empty());
    auto shown = run_stdout(
        {"incidents", "show", "P1", "--school", primary, "--json", "--data", d / "store"});
    REQUIRE(shown.lines.size() == 1);
    CHECK(json::parse(shown.lines[0])["state"] == "acknowledged");
}

TEST_CASE("a broker that starts silent checks drill cadence, and CLOCK answers after the effects "
          "are stored",
          "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags("2026-11-20T09:00:00+08:00"));
    // No event at all: the checkpoint of day 25 is scheduled at start (a
    // move by nothing answers once the writer has done that).
    lb.q.clock({{"advance", "0s"}});
    lb.q.clock({{"set", "2026-11-25T00:00:01+08:00"}});
    // Everything the move made due is stored when CLOCK answers: no polling.
    auto head = lb.q.stats()["head"].get<std::uint64_t>();
    auto opened = lb.count("incident.opened");
    CHECK(lb.count("timer.fired") >= 1);
    CHECK(opened > 500); // every school (not kindergarten) without a drill in November
    CHECK(lb.count("notification.requested") == opened);
    lb.fence(); // whatever was still to come is stored when it answers
    CHECK(lb.q.stats()["head"].get<std::uint64_t>() == head);
    // A drill closes its school's absence; the next check is the month's end.
    lb.q.clock({{"set", "2026-12-01T00:00:01+08:00"}});
    CHECK(lb.count("escalation.raised") >= 2 * opened);
    auto after = lb.q.stats()["head"].get<std::uint64_t>();
    lb.fence();
    CHECK(lb.q.stats()["head"].get<std::uint64_t>() == after);
}

TEST_CASE("pingan publish stamps a missing occurred_at with the broker's time", "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags(day_start));
    json h = {{"type", "hazard.reported"},
              {"school", primary},
              {"status", "Actual"},
              {"body", hazard("H-PUB", "general", "building")}};
    auto r = run_stdout({"publish", "--ingest", lb.b.ingest, "--query", lb.b.query, h.dump()});
    CHECK(r.code == 0);
    REQUIRE(r.lines.size() == 1);
    CHECK_FALSE(json::parse(r.lines[0]).contains("error"));
    auto stored = having(lb.log(), "hazard.reported");
    REQUIRE(stored.size() == 1);
    CHECK(stored[0]["occurred_at"] == "2026-09-01T00:00:00.000000Z");
}

TEST_CASE("a supplier cluster is visible to every district whose school is in it, and acted on "
          "from its member schools",
          "[escalation]") {
    temp_dir d;
    auto server = curve_generate(), west = curve_generate(), wujia = curve_generate(),
         other = curve_generate(), city = curve_generate();
    write_key(d / "server.key", server);
    {
        std::ofstream f(d / "clients.yaml");
        f << "clients:\n";
        for (auto [id, k, scope] : {std::tuple{"bureau:420502", &west, "{district: \"420502\"}"},
                                    std::tuple{"bureau:420503", &wujia, "{district: \"420503\"}"},
                                    std::tuple{"bureau:420504", &other, "{district: \"420504\"}"},
                                    std::tuple{"bureau:city", &city, "city"}})
            f << "  - identity: " << id << "\n    key: \"" << k->public_key
              << "\"\n    scope: " << scope << "\n    may: [publish, query, act]\n";
    }
    broker_process b(d / "store",
                     {"--rules", default_rules(), "--clock", "manual:" + std::string(day_start),
                      "--server-key", d / "server.key", "--clients", d / "clients.yaml"});
    zmq::context_t ctx(1);
    auto as = [&](const curve_keypair& k) { return curve_client{k, server.public_key}; };
    // Publishes an event of `type` for `school` with key `k`; it must be stored.
    auto publish_as = [&](const curve_keypair& k, const std::string& type,
                          const std::string& school, json body) {
        auto c = as(k);
        ingest_client pub(ctx, b.ingest, &c);
        json j = {{"type", type},
                  {"school", school},
                  {"status", "Actual"},
                  {"occurred_at", "2026-09-01T00:00:00Z"},
                  {"body", std::move(body)}};
        event e;
        REQUIRE_FALSE(from_json(j, e));
        e.id = new_event_id(at("2026-09-01T00:00:00Z"));
        std::vector<event> batch{e};
        auto r = pub.publish(batch);
        REQUIRE(r.results.size() == 1);
        REQUIRE(r.results[0].what == wire::outcome::stored);
    };
    auto publish = [&](const curve_keypair& k, const std::string& school) {
        auto body = illness(2);
        body["supplier"] = "SUP-9";
        publish_as(k, "food.alert", school, body);
    };
    publish(west, "420502K001");
    publish(wujia, "420503K001");
    auto clusters = [&](const curve_keypair& k) {
        auto c = as(k);
        query_client q(ctx, b.query, &c);
        auto j = q.request("INCIDENTS", {{"kind", "supplier_cluster"}}, std::chrono::seconds(5));
        return j["incidents"];
    };
    auto seen = clusters(west);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0]["schools"] == json::array({"420502K001", "420503K001"}));
    CHECK(seen[0]["districts"] == json::array({"420502", "420503"}));
    CHECK(seen[0]["reports"].size() == 2);
    CHECK(clusters(wujia).size() == 1);
    CHECK(clusters(city).size() == 1);
    CHECK(clusters(other).empty());

    // pingan incidents acts for one of the cluster's schools: a member
    // district's key for its own member school.
    auto id = seen[0]["id"].get<std::string>();
    std::ofstream(d / "server.pub") << format_keypair({server.public_key, {}});
    auto as_cli = [&](const curve_keypair& k, const char* name, std::vector<std::string> args) {
        write_key(d / name, k);
        for (const std::string& a :
             std::vector<std::string>{"--ingest", b.ingest, "--query", b.query, "--key", d / name,
                                      "--server-key", d / "server.pub"})
            args.push_back(a);
        return run(args); // standard error too: the refusals
    };
    auto other_ack = as_cli(other, "other.key", {"incidents", "ack", id});
    CHECK(other_ack.code == 1);
    REQUIRE_FALSE(other_ack.lines.empty());
    CHECK(other_ack.lines.back().find("within bureau:420504's scope") != std::string::npos);
    auto not_member = as_cli(city, "city.key", {"incidents", "ack", id, "--school", "420504K001"});
    CHECK(not_member.code == 1);
    REQUIRE_FALSE(not_member.lines.empty());
    CHECK(not_member.lines.back().find("420502K001, 420503K001; 420504K001 is not one") !=
          std::string::npos);
    // A non-member school's acknowledgement, published anyway, silences nothing.
    publish_as(other, "incident.acknowledged", "420504K001",
               {{"incident_id", id}, {"note", "not ours"}});
    CHECK(clusters(city)[0]["state"] == "open");
    auto ack = as_cli(wujia, "wujia.key", {"incidents", "ack", id, "--school", "420503K001"});
    INFO((ack.lines.empty() ? "" : ack.lines.back()));
    CHECK(ack.code == 0);
    REQUIRE(eventually([&] { return clusters(city)[0]["state"] == "acknowledged"; }));
    auto note = as_cli(west, "west.key", {"incidents", "note", id, "supplier visited"});
    CHECK(note.code == 0); // for its first member school, 420502K001
    auto res = as_cli(city, "city.key", {"incidents", "resolve", id, "--resolution", "recalled"});
    CHECK(res.code == 0);
    REQUIRE(eventually([&] { return clusters(city)[0]["state"] == "closed"; }));
}

TEST_CASE("a scripted school week through pingan publish derives exactly the expected events",
          "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags("2026-11-02T08:00:00+08:00"));
    // Each event through the pingan tool, happening at the broker's time.
    auto publish = [&](const std::string& type, const std::string& school, json body) {
        json j = {{"type", type}, {"school", school}, {"status", "Actual"}, {"body", body}};
        if (type == "psych.alert") j["scope"] = "Private";
        auto r = run_stdout({"publish", "--ingest", lb.b.ingest, "--query", lb.b.query, j.dump()});
        INFO(type << " " << (r.lines.empty() ? "" : r.lines[0]));
        REQUIRE(r.code == 0);
    };
    auto at = [&](const std::string& t) { lb.q.clock({{"set", t}}); };
    auto drill = [&](const std::string& id, int seconds) {
        return json{{"drill_id", id},
                    {"drill_type", "fire"},
                    {"mode", "live"},
                    {"started_at", "2026-11-03T10:00:00+08:00"},
                    {"all_clear_at", "2026-11-03T10:04:00+08:00"},
                    {"evacuation_seconds", seconds},
                    {"participants", 1783},
                    {"headcount_expected", 1783},
                    {"headcount_reported", 1783}};
    };

    // Monday: a hazard; six ill after lunch, acknowledged at 12:20 and reported
    // to the county at 12:50; the county never relays to the city.
    publish("hazard.reported", primary, hazard("H-W1", "general", "building"));
    at("2026-11-02T12:00:00+08:00");
    auto six = illness(6);
    publish("food.alert", primary, six);
    at("2026-11-02T12:20:00+08:00");
    publish("incident.acknowledged", primary, ack("C1/M1"));
    at("2026-11-02T12:50:00+08:00");
    publish("report.submitted", primary,
            {{"incident_id", "C1/M1"},
             {"to", "district"},
             {"recipient", "county_bureau"},
             {"submitted_by", "principal"},
             {"kind", "initial"},
             {"summary", "6人午餐后腹痛，已送医"}});
    at("2026-11-02T14:00:00+08:00"); // the relay to the city was due
    // Tuesday and Wednesday: two slow drills in a row (target 180 s).
    at("2026-11-03T10:05:00+08:00");
    publish("drill.recorded", primary, drill("D1", 240));
    at("2026-11-04T10:05:00+08:00");
    publish("drill.recorded", primary, drill("D2", 200));
    // Thursday: a red alert acknowledged in 5 minutes. Friday: a child missing from a bus.
    at("2026-11-05T09:00:00+08:00");
    publish("psych.alert", primary, psych("W1"));
    at("2026-11-05T09:05:00+08:00");
    publish("incident.acknowledged", primary, ack("W1"));
    at("2026-11-06T16:00:00+08:00");
    publish("bus.trip", bus_school,
            {{"bus_id", "BUS-1"}, {"trip_id", "T-W1"}, {"boarded", 30}, {"alighted", 29}});
    at("2026-11-08T23:59:00+08:00");

    std::map<std::string, std::uint64_t> expected{
        {"ruleset.loaded", 1},
        // H-W1, the meal, its public-health incident, D1, D2, the run of two, W1, the bus.
        {"incident.opened", 8},
        {"incident.reported", 1}, // the public-health report the engine made
        // hazard 1; meal: school 1, county, city, regulators 3; emergency: school and
        // county 2; relay late 1; D1, D2 2; the run 1; W1: staff and guardian 2; bus 1
        {"notification.requested", 14},
        {"timer.fired", 1}, // only the county's relay to the city was not done in time
        {"incident.overdue", 1},
        {"escalation.raised", 1}};
    auto by = lb.q.stats()["by_type"];
    for (const auto& [type, n] : expected) {
        INFO(type);
        CHECK((by.contains(type) ? by[type].get<std::uint64_t>() : 0) == n);
    }
    for (auto type : {"incident.closed", "incident.reopened"})
        CHECK_FALSE(by.contains(type));
    auto log = lb.log();
    auto raised = having(log, "escalation.raised");
    REQUIRE(raised.size() == 1);
    CHECK(raised[0]["body"]["tier"] == "city");
    CHECK(raised[0]["received_at"] == "2026-11-02T06:00:00.000000Z"); // 14:00, 2 h after
    // The replay of the week reproduces every page, at its time.
    auto diff = run_stdout(
        {"rules", "replay", "--rules", default_rules(), "--diff", "--query", lb.b.query});
    CHECK(diff.code == 0);
    CHECK(std::count(diff.lines.begin(), diff.lines.end(),
                     "pages at another time or lateness (log -> these rules): 0") == 1);
}

TEST_CASE("a remediation plan and an appeal through a live broker escalate on their own "
          "deadlines and replay with no difference",
          "[escalation]") {
    temp_dir d;
    live_broker lb(d / "store", live_broker::flags("2026-11-02T08:00:00+08:00"));
    auto publish = [&](const std::string& type, json body) {
        json j = {{"type", type}, {"school", primary}, {"status", "Actual"}, {"body", body}};
        auto r = run_stdout({"publish", "--ingest", lb.b.ingest, "--query", lb.b.query, j.dump()});
        INFO(type << " " << (r.lines.empty() ? "" : r.lines[0]));
        REQUIRE(r.code == 0);
    };
    auto at = [&](const std::string& t) { lb.q.clock({{"set", t}}); };

    // Monday: a major hazard (interim control in place) and a general one.
    auto major = hazard("H-M1", "major", "building");
    major["interim_control"] = "区域已封闭";
    publish("hazard.reported", major);
    publish("hazard.reported", hazard("H-G1", "general", "fire"));
    // The general hazard is fixed, fails its verification, and the school appeals.
    at("2026-11-03T08:00:00+08:00");
    publish("hazard.rectified",
            {{"hazard_id", "H-G1"}, {"rectified_by", "worker-1"}, {"description", "已更换"}});
    at("2026-11-04T08:00:00+08:00");
    publish("hazard.verified", {{"hazard_id", "H-G1"},
                                {"verifier", "inspector-2"},
                                {"result", "fail"},
                                {"evidence", "护栏仍松动"}});
    at("2026-11-05T08:00:00+08:00");
    publish("hazard.remediation_planned", {{"hazard_id", "H-M1"},
                                           {"plan_id", "P-1"},
                                           {"due", "2026-11-20T08:00:00+08:00"},
                                           {"responsible", "facilities_manager"},
                                           {"measures", {"更换护栏"}},
                                           {"planned_by", "principal"}});
    publish("hazard.appealed", {{"hazard_id", "H-G1"},
                                {"appeal_id", "AP-1"},
                                {"appellant", "school"},
                                {"disputed", "fail"},
                                {"grounds", "已整改到位"},
                                {"filed_by", "principal"}});
    // The county upholds the failure after five days: the deadlines run five days later.
    at("2026-11-10T08:00:00+08:00");
    publish("hazard.appeal_decided", {{"hazard_id", "H-G1"},
                                      {"appeal_id", "AP-1"},
                                      {"outcome", "upheld"},
                                      {"decided_by", "county_inspector"},
                                      {"reason", "现场复核仍不合格"}});
    at("2026-11-16T08:00:00+08:00"); // H-G1 due (11-11 + 5 d hold): safety officer reminded
    at("2026-11-19T08:00:00+08:00"); // +3 d: principal
    at("2026-11-20T08:00:00+08:00"); // the plan's deadline: county and city
    at("2026-11-23T08:00:00+08:00"); // H-G1 +7 d: county

    std::map<std::string, std::uint64_t> expected{
        {"ruleset.loaded", 1},
        {"incident.opened", 3}, // H-M1, H-G1, the appeal
        {"incident.reopened", 1},
        {"incident.closed", 1}, // the appeal, decided
        // H-M1 3 at once, H-G1 1, the appeal 2; then 11-16, 11-19, 11-20 (2), 11-23
        {"notification.requested", 11},
        {"timer.fired", 5},
        {"incident.overdue", 5},
        {"escalation.raised", 4}}; // the reminder to a told safety officer escalates nothing
    auto by = lb.q.stats()["by_type"];
    for (const auto& [type, n] : expected) {
        INFO(type);
        CHECK((by.contains(type) ? by[type].get<std::uint64_t>() : 0) == n);
    }
    auto log = lb.log();
    std::vector<std::string> raised;
    for (const auto& e : having(log, "escalation.raised"))
        raised.push_back(e["received_at"].get<std::string>() + " " +
                         e["body"]["rule_id"].get<std::string>() + " " +
                         e["body"]["tier"].get<std::string>());
    std::sort(raised.begin(), raised.end());
    CHECK(raised ==
          std::vector<std::string>{"2026-11-19T00:00:00.000000Z hazard.general school",
                                   "2026-11-20T00:00:00.000000Z hazard.major city",
                                   "2026-11-20T00:00:00.000000Z hazard.major.plan district",
                                   "2026-11-23T00:00:00.000000Z hazard.general district"});

    auto diff = run_stdout(
        {"rules", "replay", "--rules", default_rules(), "--diff", "--query", lb.b.query});
    CHECK(diff.code == 0);
    CHECK(diff.lines ==
          std::vector<std::string>{"pages added by these rules: 0",
                                   "pages in the log these rules would not make: 0",
                                   "pages at another time or lateness (log -> these rules): 0",
                                   "first page per school (log -> these rules):"});
    auto replayed = run_stdout({"rules", "replay", "--rules", default_rules(), "--logged-timers",
                                "--json", "--query", lb.b.query});
    CHECK(replayed.code == 0);
    std::vector<std::string> logged;
    for (auto e : log)
        if (is_derived(e) && e["type"] != "timer.fired" && e["type"] != "ruleset.loaded") {
            event back;
            REQUIRE_FALSE(from_json(e, back));
            back.offset = 0;
            back.actor.clear();
            logged.push_back(to_json_line(back));
        }
    CHECK(replayed.lines == logged);
}
