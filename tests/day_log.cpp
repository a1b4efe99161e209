// The broker's day in its log (broker/server/day_log.hpp): a scripted school day
// through a real pingan-broker process, whose info log must show each incident
// opened, escalated, acknowledged and closed, each refused request (ingest and
// query) with its code and client, slow commits and the periodic summary, as text and as JSON
// lines that parse.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/log_format.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

constexpr const char* primary = "420502P001";
constexpr const char* bus_school = "420504K001";

std::vector<std::string> lines_of(const std::string& file) {
    std::ifstream in(file);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);)
        v.push_back(l);
    return v;
}

// One log line as message and fields, whatever the format.
struct entry {
    std::string level, msg;
    json fields;
};

std::vector<entry> parse_log(const std::string& file, log_format f) {
    std::vector<entry> out;
    // Text: "[time] [pingan-broker] [info] message".
    static const std::regex text_line(R"(^\[[^\]]+\] \[pingan-broker\] \[([a-z]+)\] (.*)$)");
    for (const auto& l : lines_of(file)) {
        entry e;
        if (f == log_format::json) {
            auto j = json::parse(l); // every line is one JSON object
            REQUIRE(j.is_object());
            CHECK(j["logger"] == "pingan-broker");
            CHECK(j["time"].get<std::string>().ends_with("Z"));
            e.level = j["level"];
            e.msg = j["msg"];
            e.fields = j["fields"];
            REQUIRE(e.fields.is_object());
        } else {
            std::smatch m;
            if (!std::regex_match(l, m, text_line)) continue;
            e.level = m[1];
            auto s = split_fields(m[2].str());
            e.msg = s.msg;
            e.fields = json::parse(s.fields.dump());
        }
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<entry> having(const std::vector<entry>& log, const std::string& msg) {
    std::vector<entry> v;
    for (const auto& e : log)
        if (e.msg == msg) v.push_back(e);
    return v;
}

struct day {
    zmq::context_t ctx{1};
    broker_process b;
    ingest_client pub;
    query_client q;

    day(const std::string& dir, const std::string& log_file, const std::string& format)
        : b(dir + "/store",
            {"--rules", source_path("config/rules/yichang-default.yaml"), "--clock",
             "manual:2026-09-01T08:00:00+08:00", "--log-format", format, "--log-summary", "1s",
             "--slow-commit", "0ms"},
            log_file, "info"),
          pub(ctx, b.ingest), q(ctx, b.query) {}

    event make(const std::string& type, const std::string& school, json body) {
        auto t = *parse_utc(q.clock(json::object())["now"].get<std::string>());
        json j = {{"type", type},
                  {"school", school},
                  {"status", "Actual"},
                  {"severity", "Severe"},
                  {"occurred_at", format_utc(t)},
                  {"source", "pingan-test/day-log"},
                  {"body", std::move(body)}};
        if (type == "psych.alert") j["scope"] = "Private";
        event e;
        auto p = from_json(j, e);
        INFO(p.text());
        REQUIRE_FALSE(p);
        e.id = new_event_id(t);
        return e;
    }
    wire::outcome publish(const std::string& type, const std::string& school, json body) {
        std::vector<event> one{make(type, school, std::move(body))};
        auto r = pub.publish(one);
        REQUIRE(r.results.size() == 1);
        return r.results[0].what;
    }
};

json psych(const std::string& alert) {
    return {{"alert_id", alert},
            {"student_ref", "STU-" + alert},
            {"risk_level", "red"},
            {"source", "teacher"},
            {"reported_by_role", "head_teacher"}};
}

// Runs the day; returns the broker's log, parsed.
std::vector<entry> run_day(log_format f) {
    temp_dir d;
    auto log_file = d / "broker.log";
    auto format = f == log_format::json ? "json" : "text";
    auto parsed = [&] { return parse_log(log_file, f); };
    {
        day t(d.path(), log_file, format);
        // 08:00 two red psych alerts: A1 acknowledged, A2 left to escalate.
        REQUIRE(t.publish("psych.alert", primary, psych("A1")) == wire::outcome::stored);
        REQUIRE(t.publish("psych.alert", primary, psych("A2")) == wire::outcome::stored);
        REQUIRE(t.publish("incident.acknowledged", primary,
                          {{"incident_id", "A1"}, {"note", "已到场处置"}}) ==
                wire::outcome::stored);
        // 08:15 A2 unacknowledged for 15 minutes: the district is paged.
        t.q.clock({{"advance", "15m"}});
        // A bus with a child missing, found: the incident is resolved and closed.
        REQUIRE(t.publish(
                    "bus.trip", bus_school,
                    {{"bus_id", "BUS-1"}, {"trip_id", "T1"}, {"boarded", 30}, {"alighted", 29}}) ==
                wire::outcome::stored);
        REQUIRE(t.publish("incident.resolved", bus_school,
                          {{"incident_id", "T1"}, {"resolution", "学生已由家长接走"}}) ==
                wire::outcome::stored);
        // A report for a school the registry does not know is refused.
        REQUIRE(t.publish("hazard.reported", "999999X999",
                          {{"hazard_id", "H-X"},
                           {"area", "building"},
                           {"grade", "general"},
                           {"description", "护栏松动"},
                           {"location", "教学楼"},
                           {"found_by", "safety_officer"}}) == wire::outcome::rejected);
        // A console asking for incidents in a state there is none of: the
        // query is refused, and the refusal is in the log with its client.
        try {
            t.q.request("INCIDENTS", {{"state", "lost"}}, std::chrono::seconds(5));
            FAIL("INCIDENTS state=lost was answered");
        } catch (const error& e) {
            CHECK(e.code() == errc::bad_value);
        }
        // The log is the handshake: the escalation, the closing, and summaries
        // that count this day's events and its two refusals.
        REQUIRE(eventually(
            [&] {
                auto log = parsed();
                std::uint64_t events = 0, refusals = 0;
                for (auto& s : having(log, "summary")) {
                    events += s.fields["events"].get<std::uint64_t>();
                    refusals += s.fields["refusals"].get<std::uint64_t>();
                }
                return events >= 9 && refusals >= 2 && !having(log, "incident escalated").empty() &&
                       !having(log, "incident closed").empty();
            },
            std::chrono::seconds(20)));
        t.b.proc->signal(SIGTERM);
        REQUIRE(t.b.proc->wait() == 0);
    }
    return parsed();
}

void check_day(std::vector<entry> log) {
    auto opened = having(log, "incident opened");
    REQUIRE(opened.size() == 3); // A1, A2, the bus
    for (auto& e : opened) {
        CHECK(e.level == "info");
        CHECK(e.fields["incident"].get<std::string>().starts_with("INC-"));
        CHECK(e.fields["severity"].is_string());
        CHECK(e.fields["offset"].get<std::uint64_t>() > 0);
        // Incident lines carry ids, never a body: no student reference.
        CHECK(e.fields.dump().find("STU-") == std::string::npos);
    }
    CHECK(opened[0].fields["school"] == primary);
    CHECK(opened[0].fields["kind"].is_string());
    CHECK(opened[2].fields["school"] == bus_school);
    CHECK(opened[2].fields["rule"] == "bus.headcount");

    auto acked = having(log, "incident acknowledged");
    REQUIRE(acked.size() == 1);
    CHECK(acked[0].fields["incident"] == "A1"); // the reference as the acknowledger gave it
    CHECK(acked[0].fields["by"] == "anonymous");

    auto raised = having(log, "incident escalated");
    REQUIRE_FALSE(raised.empty());
    bool district = false;
    for (auto& e : raised) {
        CHECK(e.fields["incident"] == opened[1].fields["incident"]); // A2 only
        CHECK(e.fields["late"] == false);
        district = district || e.fields["tier"] == "district";
    }
    CHECK(district);

    auto closed = having(log, "incident closed");
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].fields["incident"] == opened[2].fields["incident"]);
    CHECK(closed[0].fields["rule"] == "bus.headcount");

    auto refused = having(log, "refused events");
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].fields["code"] == "unknown_school");
    CHECK(refused[0].fields["client"] == "anonymous");
    CHECK(refused[0].fields["refused"] == 1);
    CHECK(refused[0].fields["events"] == 1);
    CHECK_FALSE(refused[0].fields["reason"].get<std::string>().empty());

    auto query = having(log, "refused query");
    REQUIRE(query.size() == 1);
    CHECK(query[0].level == "info");
    CHECK(query[0].fields["code"] == "bad_value");
    CHECK(query[0].fields["client"] == "anonymous");
    CHECK(
        query[0].fields["reason"].get<std::string>().starts_with("state: \"lost\" is not one of"));
    CHECK_FALSE(query[0].fields.contains("events")); // a request, not events

    // Every commit is slow at a threshold of 0 ms.
    auto slow = having(log, "slow commit");
    REQUIRE_FALSE(slow.empty());
    CHECK(slow[0].fields["events"].get<int>() >= 1);
    CHECK(slow[0].fields["ms"].is_number());

    auto summaries = having(log, "summary");
    REQUIRE_FALSE(summaries.empty());
    std::uint64_t events = 0, refusals = 0;
    for (auto& s : summaries) {
        for (auto key : {"events", "refusals", "subscriptions", "queued"})
            CHECK(s.fields[key].is_number_integer());
        CHECK(s.fields["lag_ms"].is_number());
        events += s.fields["events"].get<std::uint64_t>();
        refusals += s.fields["refusals"].get<std::uint64_t>();
    }
    CHECK(events >= 9);   // 5 reports stored, and what the engine derived
    CHECK(refusals == 2); // the unknown school's report and the query
}

} // namespace

TEST_CASE("a scripted day through a real broker logs incidents, refusals, slow commits and "
          "summaries as text",
          "[day_log]") {
    check_day(run_day(log_format::text));
}

TEST_CASE("with --log-format json every line of the broker's day is one JSON object with the "
          "same fields",
          "[day_log]") {
    check_day(run_day(log_format::json));
}

TEST_CASE("log fields split from a message's trailing key=value words, quoted values kept whole",
          "[day_log]") {
    auto m = split_fields(R"(refused events code=unknown_school client=anonymous refused=1 )"
                          R"(reason="school \"X\" is not known" lag_ms=1.5)");
    CHECK(m.msg == "refused events");
    CHECK(m.fields["code"] == "unknown_school");
    CHECK(m.fields["refused"] == 1);
    CHECK(m.fields["reason"] == "school \"X\" is not known");
    CHECK(m.fields["lag_ms"] == 1.5);
    // A key=value word followed by plain words is part of the text.
    auto t = split_fields("open files: soft limit a=b raised to 4096");
    CHECK(t.msg == "open files: soft limit a=b raised to 4096");
    CHECK(t.fields.empty());
    CHECK(log_value("学生 已接走") == R"("学生 已接走")");
    CHECK(log_value("INC-1") == "INC-1");
    CHECK(split_fields("x v=" + log_value("a \"b\" \\c")).fields["v"] == "a \"b\" \\c");
    auto line = json::parse(json_log_line("2026-09-01T00:00:00.000000Z", "info", "pingan-broker",
                                          "incident opened incident=INC-1 offset=7"));
    CHECK(line["msg"] == "incident opened");
    CHECK(line["fields"]["offset"] == 7);
    CHECK(line["level"] == "info");
}
