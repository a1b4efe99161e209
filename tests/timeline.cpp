// Black-box tests of `pingan incidents timeline` and `pingan replay --incident`:
// a scripted hazard on a real broker with a manual clock, told as a story.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

std::string default_rules() {
    return source_path("config/rules/yichang-default.yaml");
}

// A general hazard at 420502K001, from report to closure, on a manual clock:
// reported 2026-10-12 09:00 CST with a deadline of 2026-10-14 09:00, the page
// delivered, acknowledged at 09:30, the deadline passes (overdue), rectified
// on 10-14 at 11:00, verified by someone else at 12:00.
struct scripted_hazard {
    temp_dir d;
    broker_process b;
    zmq::context_t ctx{1};
    query_client q;
    std::string incident;

    scripted_hazard()
        : b(d / "store",
            {"--rules", default_rules(), "--clock", "manual:2026-10-12T09:00:00+08:00"}),
          q(ctx, b.query) {
        b.export_env();
        publish({{"type", "hazard.reported"},
                 {"school", "420502K001"},
                 {"status", "Actual"},
                 {"severity", "Moderate"},
                 {"body",
                  {{"hazard_id", "HZ-T1"},
                   {"area", "fire"},
                   {"grade", "general"},
                   {"description", "灭火器过期"},
                   {"location", "教学楼二层"},
                   {"found_by", "safety_officer"},
                   {"deadline", "2026-10-14T09:00:00+08:00"}}}});
        auto list = run_stdout({"incidents", "list", "--json"});
        REQUIRE(list.lines.size() == 1);
        incident = json::parse(list.lines[0])["id"].get<std::string>();
        // The notifier's report that the page reached the safety officer.
        std::string page_id;
        replay_request r;
        r.json = true;
        r.type = "notification.requested";
        q.replay(r, [&](std::uint64_t, std::string_view line) {
            page_id = json::parse(line)["id"].get<std::string>();
            return true;
        });
        REQUIRE_FALSE(page_id.empty());
        publish({{"type", "notification.delivered"},
                 {"school", "420502K001"},
                 {"status", "Actual"},
                 {"body",
                  {{"notification_id", page_id},
                   {"incident_id", incident},
                   {"receiver", "safety_officer"},
                   {"channel", "sms"},
                   {"attempt", 1},
                   {"latency_ms", 850}}}});
        q.clock({{"advance", "30m"}});
        REQUIRE(run_stdout({"incidents", "ack", incident, "--note", "已安排整改"}).code == 0);
        q.clock({{"set", "2026-10-14T10:00:00+08:00"}});
        REQUIRE(eventually([&] { return count("incident.overdue") == 1; }));
        q.clock({{"advance", "1h"}});
        publish({{"type", "hazard.rectified"},
                 {"school", "420502K001"},
                 {"status", "Actual"},
                 {"body",
                  {{"hazard_id", "HZ-T1"}, {"rectified_by", "wang"}, {"description", "已更换"}}}});
        q.clock({{"advance", "1h"}});
        REQUIRE(run_stdout(
                    {"incidents", "verify", incident, "--verifier", "li", "--evidence", "复查合格"})
                    .code == 0);
        REQUIRE(eventually([&] { return count("incident.closed") == 1; }));
    }

    std::uint64_t count(const std::string& type) {
        auto by = q.stats()["by_type"];
        return by.contains(type) ? by[type].get<std::uint64_t>() : 0;
    }

    // Publishes at the broker's time.
    void publish(json e) {
        e["occurred_at"] = q.clock(json::object())["now"];
        auto r = run_stdout({"publish", e.dump()});
        INFO(e.dump());
        REQUIRE(r.code == 0);
    }
};

std::vector<std::string> steps_of(const json& t) {
    std::vector<std::string> v;
    for (const auto& s : t["steps"])
        v.push_back(s["step"].get<std::string>() + " " + s["type"].get<std::string>());
    return v;
}

} // namespace

TEST_CASE("timeline tells a hazard's story in order with the time between steps and the "
          "deadlines met or missed",
          "[timeline]") {
    scripted_hazard h;
    auto r = run_stdout({"incidents", "timeline", h.incident, "--json"});
    REQUIRE(r.code == 0);
    REQUIRE(r.lines.size() == 1);
    auto t = json::parse(r.lines[0]);
    CHECK(t["incident"]["id"] == h.incident);
    CHECK(t["incident"]["state"] == "closed");
    std::vector<std::string> expected{
        "report hazard.reported", "rule incident.opened", "page notification.requested",
        "delivered notification.delivered", "acknowledged incident.acknowledged",
        "timer timer.fired", "overdue incident.overdue",
        // the school was told at the start: a reminder, no escalation
        "page notification.requested", "rectified hazard.rectified", "verified hazard.verified",
        "closed incident.closed"};
    CHECK(steps_of(t) == expected);
    const auto& s = t["steps"];
    REQUIRE(s.size() == expected.size());
    // The rule that fired, its basis tag and rule-set hash.
    CHECK(s[1]["rule_id"] == "hazard.general");
    CHECK(s[1]["basis"] == "L");
    CHECK(s[1]["ruleset_hash"].get<std::string>().size() == 32);
    CHECK(s[2]["tier"] == "school");
    CHECK(s[2]["roles"] == json::array({"safety_officer"}));
    CHECK(s[3]["receiver"] == "safety_officer");
    CHECK(s[3]["channel"] == "sms");
    CHECK(s[4]["actor"] == "anonymous");
    CHECK(s[4]["what"] == "已安排整改");
    // Time between steps: the acknowledgement half an hour after the page, the
    // deadline passing at 10:00 on the 14th (when the clock got there), and so on.
    CHECK(s[0]["since_previous_s"] == 0.0);
    CHECK(s[4]["since_previous_s"] == 1800.0);
    CHECK(s[5]["since_start_s"] == 2 * 86400.0 + 3600.0);
    CHECK(s[8]["since_previous_s"] == 3600.0);
    CHECK(s[8]["rectified_by"] == "wang");
    CHECK(s[9]["verifier"] == "li");
    CHECK(s[10]["since_start_s"] == 2 * 86400.0 + 3 * 3600.0);

    // Without the rule set: the due time and the step that went overdue, both missed.
    const auto& d = t["deadlines"];
    REQUIRE(d.size() == 2);
    CHECK(d[0]["what"] == "due");
    CHECK(d[0]["deadline"] == "2026-10-14T01:00:00.000000Z");
    CHECK(d[0]["waited_for"] == "rectified");
    CHECK(d[0]["status"] == "missed");
    CHECK(d[0]["margin_s"] == -7200.0);
    CHECK(d[1]["what"] == "step");
    CHECK(d[1]["rule_id"] == "hazard.general");
    CHECK(d[1]["status"] == "missed");

    // With the rule set: the later steps (3 and 7 days past due) were met.
    auto with =
        run_stdout({"incidents", "timeline", h.incident, "--json", "--rules", default_rules()});
    REQUIRE(with.code == 0);
    auto dl = json::parse(with.lines.at(0))["deadlines"];
    std::vector<std::string> judged;
    for (const auto& x : dl)
        judged.push_back(x["what"].get<std::string>() + " " + x["deadline"].get<std::string>() +
                         " " + x["status"].get<std::string>());
    CHECK(judged == std::vector<std::string>{"due 2026-10-14T01:00:00.000000Z missed",
                                             "step 2026-10-14T01:00:00.000000Z missed",
                                             "step 2026-10-17T01:00:00.000000Z met",
                                             "step 2026-10-21T01:00:00.000000Z met"});

    // For people: China time, the steps' names, the deadlines.
    auto text = run_stdout({"incidents", "timeline", h.incident});
    REQUIRE(text.code == 0);
    std::string all;
    for (const auto& l : text.lines)
        all += l + "\n";
    CHECK(all.find("2026-10-12 09:00:00 CST") != std::string::npos);
    CHECK(all.find("确认 acknowledged") != std::string::npos);
    CHECK(all.find("rule hazard.general [L]") != std::string::npos);
    CHECK(all.find("MISSED") != std::string::npos);
    CHECK(all.find("+30m") != std::string::npos);
}

TEST_CASE("timeline reads a store directly with --data and tells the same story", "[timeline]") {
    scripted_hazard h;
    auto net = run_stdout({"incidents", "timeline", h.incident, "--json"});
    auto off = run_stdout({"incidents", "timeline", "HZ-T1", "--school", "420502K001", "--json",
                           "--data", h.d / "store"});
    REQUIRE(net.code == 0);
    REQUIRE(off.code == 0);
    auto a = json::parse(net.lines.at(0)), b = json::parse(off.lines.at(0));
    CHECK(a["steps"] == b["steps"]);
    CHECK(a["deadlines"] == b["deadlines"]);
    auto missing = run({"incidents", "timeline", "INC-0000000000000000", "--data", h.d / "store"});
    CHECK(missing.code == 1);
    REQUIRE_FALSE(missing.lines.empty());
    CHECK(missing.lines[0].find("no incident \"INC-0000000000000000\"") != std::string::npos);
    // A rule set other than the one the broker ran is refused, not trusted.
    auto other = h.d / "other.yaml";
    {
        std::ofstream o(other);
        o << read_file(default_rules()) << "\n# edited\n";
    }
    auto wrong = run({"incidents", "timeline", h.incident, "--rules", other});
    CHECK(wrong.code == 1);
    CHECK(wrong.lines.at(0).find("give the rule set the broker ran") != std::string::npos);
}

TEST_CASE("replay --incident prints the incident's events in offset order", "[timeline]") {
    scripted_hazard h;
    auto r = run_stdout({"replay", "--incident", h.incident, "--json"});
    REQUIRE(r.code == 0);
    REQUIRE(r.lines.size() == 11);
    std::uint64_t last = 0;
    for (const auto& l : r.lines) {
        auto e = json::parse(l);
        CHECK(e["offset"].get<std::uint64_t>() > last);
        last = e["offset"].get<std::uint64_t>();
    }
    CHECK(json::parse(r.lines.front())["type"] == "hazard.reported");
    CHECK(json::parse(r.lines.back())["type"] == "incident.closed");
    auto people = run_stdout({"replay", "--incident", "HZ-T1", "--school", "420502K001"});
    REQUIRE(people.code == 0);
    CHECK(people.lines.size() == 11);
    auto mixed = run({"replay", "--incident", h.incident, "--type", "hazard."});
    CHECK(mixed.code == 2);
}
