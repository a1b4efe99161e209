// Black-box tests of `pingan export` and `pingan verify --export` against a
// real broker and its LMDB store: the round trip, the CSV as Python's csv
// module reads it, terms, redaction and tampered exports.
#include "broker/store/store.hpp"
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace pingan;
using namespace pingan::test;

namespace {

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);)
        v.push_back(l);
    return v;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
    std::ofstream o(path, std::ios::trunc);
    for (const auto& l : lines)
        o << l << "\n";
}

json hazard(const std::string& school, const std::string& id, const std::string& description,
            const std::string& at) {
    return {{"type", "hazard.reported"},
            {"school", school},
            {"status", "Actual"},
            {"severity", "Moderate"},
            {"occurred_at", at},
            {"body",
             {{"hazard_id", id},
              {"area", "fire"},
              {"grade", "general"},
              {"description", description},
              {"location", "教学楼"},
              {"found_by", "safety_officer"}}}};
}

json psych(const std::string& at) {
    return {{"type", "psych.alert"},
            {"school", "420502P001"},
            {"status", "Actual"},
            {"scope", "Private"},
            {"occurred_at", at},
            {"body",
             {{"alert_id", "PA-1"},
              {"student_ref", "S-7f3a"},
              {"risk_level", "orange"},
              {"source", "teacher"},
              {"indicator_codes", {"SLP-2"}},
              {"reported_by_role", "psych_teacher"}}}};
}

// A broker on a manual clock in the autumn term 2026 with a few events.
struct small_log {
    temp_dir d;
    broker_process b;
    zmq::context_t ctx{1};
    query_client q;

    small_log() : b(d / "store", {"--clock", "manual:2026-10-12T09:00:00+08:00"}), q(ctx, b.query) {
        b.export_env();
        publish(hazard("420502K001", "HZ-1", "灭火器过期, \"急\"\n二楼", now()));
        publish(hazard("420502P001", "HZ-2", "楼梯扶手松动", now()));
        publish(hazard("420502K001", "HZ-3", "电线裸露", now()));
    }
    std::string now() { return q.clock(json::object())["now"].get<std::string>(); }
    void publish(const json& e) {
        auto r = run({"publish", e.dump()});
        INFO(e.dump());
        REQUIRE(r.code == 0);
    }
    std::string store() const { return d / "store"; }
};

} // namespace

TEST_CASE("a complete export verifies on its own and holds exactly the replayed events",
          "[export]") {
    small_log l;
    auto file = l.d / "all.jsonl";
    auto r = run({"export", "--data", l.store(), "--out", file});
    REQUIRE(r.code == 0);
    auto lines = lines_of(file);
    REQUIRE(lines.size() == 4);
    auto header = json::parse(lines[0]);
    CHECK(header["pingan_export"] == 1);
    CHECK(header["complete"] == true);
    CHECK(header["count"] == 3);
    CHECK(header["segment"]["from"] == 1);
    CHECK(header["segment"]["to"] == 3);
    CHECK(header["segment"]["prev_hash"] == std::string(64, '0'));
    // The last hash is the store's head hash, as pingan verify reports it.
    auto v = run({"verify", "--data", l.store()});
    REQUIRE(v.code == 0);
    CHECK(header["segment"]["last_hash"] == json::parse(v.lines.at(0))["head_hash"]);

    // The same events as a replay, byte for byte in their JSON form.
    auto replay = run({"replay", "--json"});
    REQUIRE(replay.code == 0);
    REQUIRE(replay.lines.size() == 3);
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(json::parse(lines[i + 1]) == json::parse(replay.lines[i]));

    auto ok = run({"verify", "--export", file});
    CHECK(ok.code == 0);
    CHECK(json::parse(ok.lines.at(0))["ok"] == true);
    CHECK(run({"verify", "--export", file, "--data", l.store()}).code == 0);
}

TEST_CASE("verify --export refuses an altered, shortened or reordered export", "[export]") {
    small_log l;
    auto file = l.d / "all.jsonl";
    REQUIRE(run({"export", "--data", l.store(), "--out", file}).code == 0);
    auto lines = lines_of(file);
    REQUIRE(lines.size() == 4);
    auto bad = l.d / "bad.jsonl";

    // One word changed.
    auto edited = lines;
    auto e = json::parse(edited[2]);
    e["body"]["description"] = "无隐患";
    edited[2] = e.dump();
    write_lines(bad, edited);
    auto r = run({"verify", "--export", bad});
    CHECK(r.code == 1);
    CHECK(has(r, "altered"));
    CHECK(run({"verify", "--export", bad, "--data", l.store()}).code == 1);

    // One event left out, the count mended.
    auto shorter = lines;
    shorter.erase(shorter.begin() + 2);
    auto h = json::parse(shorter[0]);
    h["count"] = 2;
    shorter[0] = h.dump();
    write_lines(bad, shorter);
    CHECK(run({"verify", "--export", bad}).code == 1);
    auto against = run({"verify", "--export", bad, "--data", l.store()});
    CHECK(against.code == 1);

    // Two events swapped.
    auto swapped = lines;
    std::swap(swapped[1], swapped[2]);
    write_lines(bad, swapped);
    CHECK(run({"verify", "--export", bad}).code == 1);

    // Not an export at all.
    write_lines(bad, {"offset,id", "1,x"});
    auto csv = run({"verify", "--export", bad});
    CHECK(csv.code == 1);
    CHECK(has(csv, "not JSON"));
}

TEST_CASE("a filtered export is proved against the store, and a left-out event is caught",
          "[export]") {
    small_log l;
    auto file = l.d / "k001.jsonl";
    REQUIRE(run({"export", "--data", l.store(), "--school", "420502K001", "--out", file}).code ==
            0);
    auto lines = lines_of(file);
    REQUIRE(lines.size() == 3);
    CHECK(json::parse(lines[0])["complete"] == false);
    // On its own it cannot be re-chained: the store must be asked.
    auto alone = run({"verify", "--export", file});
    CHECK(alone.code == 1);
    CHECK(has(alone, "--data"));
    CHECK(run({"verify", "--export", file, "--data", l.store()}).code == 0);

    auto h = json::parse(lines[0]);
    h["count"] = 1;
    write_lines(l.d / "cut.jsonl", {h.dump(), lines[1]});
    auto cut = run({"verify", "--export", l.d / "cut.jsonl", "--data", l.store()});
    CHECK(cut.code == 1);
    CHECK(has(cut, "missing from it"));

    // From the broker (no --data): the same events; the store proves them.
    auto net = l.d / "net.jsonl";
    REQUIRE(run({"export", "--school", "420502K001", "--out", net}).code == 0);
    auto n = lines_of(net);
    REQUIRE(n.size() == 3);
    CHECK(n[1] == lines[1]);
    CHECK(n[2] == lines[2]);
    CHECK(run({"verify", "--export", net, "--data", l.store()}).code == 0);
}

TEST_CASE("export --term keeps to the school term's dates in China time", "[export]") {
    small_log l;
    l.q.clock({{"set", "2027-02-01T00:00:00+08:00"}}); // the first moment of 2027-spring
    l.publish(hazard("420502K001", "HZ-4", "窗户破损", l.now()));
    auto autumn = run({"export", "--data", l.store(), "--term", "2026-autumn"});
    REQUIRE(autumn.code == 0);
    CHECK(json_lines(autumn).size() == 4);
    CHECK(has(autumn, "this export is not logged"));
    auto spring = run({"export", "--term", "2027-spring"});
    REQUIRE(spring.code == 0);
    REQUIRE(spring.lines.size() == 2);
    CHECK(json::parse(spring.lines[1])["body"]["hazard_id"] == "HZ-4");
    auto bad = run({"export", "--term", "2026-winter"});
    CHECK(bad.code == 2);
    CHECK(has(bad, "YEAR-autumn"));
}

TEST_CASE("an offline export redacts minors' details and says how many", "[export]") {
    small_log l;
    l.publish(psych(l.now()));
    auto r = run({"export", "--data", l.store(), "--type", "psych.alert"});
    REQUIRE(r.code == 0);
    auto lines = json_lines(r);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0]["redacted"] == 1);
    auto e = lines[1];
    CHECK(e["body"]["student_ref"] == "redacted");
    CHECK(e["body"]["risk_level"] == "orange");
    for (const auto& line : r.lines)
        CHECK(line.find("S-7f3a") == std::string::npos);
    auto file = l.d / "psych.jsonl";
    REQUIRE(run({"export", "--data", l.store(), "--type", "psych.alert", "--out", file}).code == 0);
    CHECK(run({"verify", "--export", file, "--data", l.store()}).code == 0);
}

TEST_CASE("the CSV export with a BOM reads back in Python's csv module with Chinese text and "
          "quoting intact",
          "[export]") {
    small_log l;
    auto file = l.d / "all.csv";
    REQUIRE(run({"export", "--format", "csv", "--bom", "--data", l.store(), "--out", file}).code ==
            0);
    auto bytes = read_file(file);
    REQUIRE(bytes.substr(0, 3) == "\xEF\xBB\xBF");
    CHECK(bytes.find("\r\n") != std::string::npos);
    auto script = l.d / "read.py";
    {
        std::ofstream o(script);
        o << "import csv, json, sys\n"
             "with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:\n"
             "    rows = list(csv.DictReader(f))\n"
             "print(json.dumps(rows, ensure_ascii=False))\n";
    }
    process p({"/usr/bin/python3", script, file});
    auto out = p.lines(std::chrono::seconds(30));
    REQUIRE(p.wait() == 0);
    REQUIRE(out.size() == 1);
    auto rows = json::parse(out[0]);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0]["offset"] == "1");
    CHECK(rows[0]["type"] == "hazard.reported");
    CHECK(rows[0]["学校"] == "西陵区第1幼儿园");
    CHECK(rows[0]["body.description"] == "灭火器过期, \"急\"\n二楼");
    CHECK(rows[0]["occurred_at (CST)"] == "2026-10-12 09:00:00");
    CHECK(rows[1]["body.description"] == "楼梯扶手松动");
    CHECK(rows[2]["body.hazard_id"] == "HZ-3");
    // Without --bom there is none.
    auto plain = run({"export", "--format", "csv", "--data", l.store()});
    REQUIRE(plain.code == 0);
    CHECK(plain.lines.at(0).substr(0, 6) == "offset");
}

TEST_CASE("an export imported into a fresh store gives the same records byte for byte, and a "
          "non-empty store or an altered export is refused",
          "[export]") {
    small_log l;
    auto file = l.d / "all.jsonl";
    REQUIRE(run({"export", "--data", l.store(), "--out", file}).code == 0);
    auto r = run({"import", file, "--data", l.d / "restored"});
    INFO(r.lines.at(0));
    REQUIRE(r.code == 0);
    auto j = json::parse(r.lines.at(0));
    CHECK(j["imported"] == 3);
    CHECK(j["head"] == 3);

    // Every record, hash and bytes, is the original's; the chain verifies.
    {
        store_options o;
        o.read_only = true;
        o.path = l.store();
        store a(o);
        o.path = l.d / "restored";
        store b(o);
        REQUIRE(b.head() == a.head());
        for (std::uint64_t off = 1; off <= a.head(); ++off) {
            INFO(off);
            CHECK(*b.get(off) == *a.get(off));
            CHECK(*b.hash_at(off) == *a.hash_at(off));
        }
        CHECK(b.verify().ok);
        CHECK(hex(b.verify().head_hash) == j["head_hash"].get<std::string>());
    }
    // The imported store's export is the original export, line for line.
    auto again = l.d / "again.jsonl";
    REQUIRE(run({"export", "--data", l.d / "restored", "--out", again}).code == 0);
    CHECK(read_file(again) == read_file(file));

    // Never into a store that holds something.
    auto twice = run({"import", file, "--data", l.d / "restored"});
    CHECK(twice.code == 1);
    CHECK(has(twice, "is not empty"));
    // Not an altered export: nothing is written.
    auto lines = lines_of(file);
    auto e = json::parse(lines[2]);
    e["body"]["description"] = "无隐患";
    lines[2] = e.dump();
    write_lines(l.d / "altered.jsonl", lines);
    auto altered = run({"import", l.d / "altered.jsonl", "--data", l.d / "fresh"});
    CHECK(altered.code == 1);
    CHECK(has(altered, "do not chain"));
    CHECK_FALSE(std::filesystem::exists(l.d / "fresh"));
    // Nor a filtered one.
    REQUIRE(
        run({"export", "--data", l.store(), "--school", "420502K001", "--out", l.d / "k001.jsonl"})
            .code == 0);
    auto filtered = run({"import", l.d / "k001.jsonl", "--data", l.d / "fresh"});
    CHECK(filtered.code == 1);
    CHECK(has(filtered, "not a complete export"));
}

TEST_CASE(
    "an export through the broker is logged as access.viewed by the broker, and an offline one "
    "says it is not",
    "[export]") {
    temp_dir d;
    auto server = curve_generate(), city = curve_generate(), school = curve_generate();
    write_key(d / "server.key", server);
    write_key(d / "city.key", city);
    write_key(d / "school.key", school);
    std::ofstream(d / "clients.yaml")
        << "clients:\n  - identity: bureau:city\n    key: \"" << city.public_key
        << "\"\n    scope: city\n    may: [publish, query]\n"
        << "  - identity: school:420502K001\n    key: \"" << school.public_key
        << "\"\n    scope: {school: 420502K001}\n    may: [query]\n";
    broker_process b(d / "store",
                     {"--server-key", d / "server.key", "--clients", d / "clients.yaml"});
    b.export_env();
    auto as = [&](std::vector<std::string> a, const std::string& key) {
        for (std::string k : {std::string("--key"), key, std::string("--server-key"),
                              std::string(d / "server.key")})
            a.push_back(k);
        return a;
    };
    for (auto [sch, id] :
         {std::pair{"420502K001", "HZ-1"}, {"420502P001", "HZ-2"}, {"420502K001", "HZ-3"}}) {
        auto h = hazard(sch, id, "灭火器过期", "2026-10-12T09:00:00+08:00");
        REQUIRE(run(as({"publish", h.dump()}, d / "city.key")).code == 0);
    }
    // The school's key sees its own school's two events, and the broker says so in the log.
    auto e = run(as({"export", "--out", d / "k001.jsonl"}, d / "school.key"));
    REQUIRE(e.code == 0);
    REQUIRE(lines_of(d / "k001.jsonl").size() == 3);
    auto viewed = run(as({"replay", "--json", "--type", "access.viewed"}, d / "city.key"));
    REQUIRE(viewed.code == 0);
    REQUIRE(viewed.lines.size() == 1);
    auto v = json::parse(viewed.lines[0]);
    CHECK(v["actor"] == "school:420502K001");
    CHECK(v["body"]["viewer"] == "school:420502K001");
    CHECK(v["body"]["what"] == "export");
    CHECK(v["body"]["first_offset"] == 1);
    CHECK(v["body"]["last_offset"] == 3);
    CHECK(v["body"]["count"] == 2);
    CHECK(v["body"]["schools"] == json::array({"420502K001"}));

    // A plain replay is not an export, and is not logged as one.
    REQUIRE(run(as({"replay", "--json"}, d / "city.key")).code == 0);
    auto still = run(as({"replay", "--json", "--type", "access.viewed"}, d / "city.key"));
    CHECK(still.lines.size() == 1);

    // Read from the store directly, the export cannot write to the log: it says so.
    auto offline = run({"export", "--data", d / "store", "--out", d / "all.jsonl"});
    REQUIRE(offline.code == 0);
    CHECK(has(offline, "not logged"));
}

TEST_CASE("export --incident through the broker is logged as access.viewed what export, and "
          "INCIDENT refuses another purpose",
          "[export]") {
    temp_dir d;
    auto server = curve_generate(), city = curve_generate(), school = curve_generate();
    write_key(d / "server.key", server);
    write_key(d / "city.key", city);
    write_key(d / "school.key", school);
    std::ofstream(d / "clients.yaml")
        << "clients:\n  - identity: bureau:city\n    key: \"" << city.public_key
        << "\"\n    scope: city\n    may: [publish, query]\n"
        << "  - identity: school:420502K001\n    key: \"" << school.public_key
        << "\"\n    scope: {school: 420502K001}\n    may: [query]\n";
    broker_process b(d / "store",
                     {"--server-key", d / "server.key", "--clients", d / "clients.yaml", "--rules",
                      source_path("config/rules/yichang-default.yaml")});
    b.export_env();
    auto as = [&](std::vector<std::string> a, const std::string& key) {
        for (std::string k : {std::string("--key"), key, std::string("--server-key"),
                              std::string(d / "server.key")})
            a.push_back(k);
        return a;
    };
    for (auto [sch, id] : {std::pair{"420502K001", "HZ-1"}, {"420502P001", "HZ-2"}}) {
        auto h = hazard(sch, id, "灭火器过期", "2026-10-12T09:00:00+08:00");
        REQUIRE(run(as({"publish", h.dump()}, d / "city.key")).code == 0);
    }
    auto viewed = [&] {
        return json_lines(run(as({"replay", "--json", "--type", "access.viewed"}, d / "city.key")));
    };
    // Looking at an incident is not an export.
    REQUIRE(
        run(as({"incidents", "show", "HZ-1", "--school", "420502K001"}, d / "school.key")).code ==
        0);
    CHECK(viewed().empty());

    auto e =
        run(as({"export", "--incident", "HZ-1", "--school", "420502K001", "--out", d / "hz1.jsonl"},
               d / "school.key"));
    INFO((e.lines.empty() ? std::string() : e.lines[0]));
    REQUIRE(e.code == 0);
    std::vector<std::uint64_t> offsets;
    for (const auto& l : lines_of(d / "hz1.jsonl"))
        if (auto j = json::parse(l); j.contains("type") && j.contains("offset"))
            offsets.push_back(j["offset"].get<std::uint64_t>());
    REQUIRE_FALSE(offsets.empty());
    auto v = viewed();
    REQUIRE(v.size() == 1);
    CHECK(v[0]["actor"] == "school:420502K001");
    CHECK(v[0]["body"]["viewer"] == "school:420502K001");
    CHECK(v[0]["body"]["what"] == "export");
    CHECK(v[0]["body"]["first_offset"] == offsets.front());
    CHECK(v[0]["body"]["last_offset"] == offsets.back());
    CHECK(v[0]["body"]["count"] == offsets.size());
    CHECK(v[0]["body"]["schools"] == json::array({"420502K001"}));

    // Another purpose is refused, and nothing is logged for it.
    curve_client c{school, server.public_key};
    zmq::context_t ctx(1);
    query_client q(ctx, b.query, &c);
    try {
        q.request("INCIDENT",
                  json{{"subject", "HZ-1"}, {"school", "420502K001"}, {"purpose", "audit"}},
                  std::chrono::seconds(10));
        FAIL("INCIDENT took purpose \"audit\"");
    } catch (const error& x) {
        CHECK(x.code() == errc::bad_value);
        CHECK(x.detail().find("purpose") != std::string::npos);
    }
    CHECK(viewed().size() == 1);
}
