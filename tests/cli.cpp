// Black-box tests of the `pingan` command-line tool against a real broker.
#include "broker/store/store.hpp"
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "common/lmdb.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

std::string default_rules() {
    return std::string(PINGAN_SOURCE_DIR) + "/config/rules/yichang-default.yaml";
}

std::string hazard_json(const std::string& school, const std::string& id) {
    return R"({"type":"hazard.reported","school":")" + school +
           R"(","status":"Actual","severity":"Severe","body":{"hazard_id":")" + id +
           R"(","area":"fire","grade":"major","description":"消防通道堵塞","location":"宿舍楼",)"
           R"("found_by":"safety_officer"}})";
}

} // namespace

TEST_CASE("publish prints one result line per event and exits 1 if any was refused", "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    std::string file = d / "events.jsonl";
    {
        std::ofstream f(file);
        f << hazard_json("420502K001", "H1") << "\n"
          << hazard_json("999999X999", "H2") << "\n"
          << "{broken\n"
          << R"({"type":"hazard.reported","school":"420502K001","n":5e6123456789})"
          << "\n"
          << hazard_json("420502K002", "H3") << "\n";
    }
    auto r = run_stdout({"publish", "--file", file});
    CHECK(r.code == 1);
    REQUIRE(r.lines.size() == 5);
    auto j0 = json::parse(r.lines[0]);
    CHECK(j0["offset"] == 1);
    CHECK(j0["duplicate"] == false);
    CHECK(json::parse(r.lines[1])["error"]["code"] == "unknown_school");
    CHECK(json::parse(r.lines[2])["error"]["code"] == "malformed_json");
    CHECK(json::parse(r.lines[3])["error"]["code"] == "malformed_json");
    CHECK(json::parse(r.lines[4])["offset"] == 2);

    auto one = run_stdout({"publish", hazard_json("420502K003", "H4")});
    CHECK(one.code == 0);
    REQUIRE(one.lines.size() == 1);
    CHECK(json::parse(one.lines[0])["offset"] == 3);
}

TEST_CASE("publish from standard input and a resend with the same id", "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    auto j = json::parse(hazard_json("420502K001", "H1"));
    j["id"] = "01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f";
    std::string file = d / "one.json";
    { std::ofstream(file) << j.dump(); }
    auto a = run_stdout({"publish", "-"}, file);
    auto b2 = run_stdout({"publish", "-"}, file);
    CHECK(a.code == 0);
    CHECK(b2.code == 0);
    CHECK(json::parse(b2.lines.at(0))["duplicate"] == true);
    CHECK(json::parse(b2.lines.at(0))["offset"] == 1);
}

TEST_CASE("replay prints json lines with id, offset, type and school, filtered", "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    run_stdout({"publish", hazard_json("420502K001", "A")});
    run_stdout({"publish", hazard_json("420503K001", "B")});
    run_stdout({"publish", hazard_json("420502K002", "C")});
    auto all = run_stdout({"replay", "--json"});
    CHECK(all.code == 0);
    REQUIRE(all.lines.size() == 3);
    auto j = json::parse(all.lines[1]);
    CHECK(j["offset"] == 2);
    CHECK(j["type"] == "hazard.reported");
    CHECK(j.contains("id"));
    auto district = run_stdout({"replay", "--json", "--district", "420502"});
    CHECK(district.lines.size() == 2);
    auto range = run_stdout({"replay", "--json", "--from", "2", "--to", "2"});
    REQUIRE(range.lines.size() == 1);
    CHECK(json::parse(range.lines[0])["body"]["hazard_id"] == "B");
    auto people = run_stdout({"replay", "--school", "420502K001"});
    REQUIRE(people.lines.size() == 1);
    CHECK(people.lines[0].find("西陵区第1幼儿园") != std::string::npos);
    CHECK(people.lines[0].find("CST") != std::string::npos);
}

TEST_CASE("tail --from replays then follows live with no gap and no duplicate at the seam",
          "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    std::vector<event> first;
    for (int i = 0; i < 500; ++i)
        first.push_back(sample_reading("420502K001", i));
    pub.publish(first);
    const int total = 3000;
    process tail({pingan_bin(), "tail", "--from", "1", "--json", "--count", std::to_string(total)});
    // Publish the rest while tail is replaying and switching to live.
    for (int i = 500; i < total; i += 100) {
        std::vector<event> ev;
        for (int k = 0; k < 100; ++k)
            ev.push_back(sample_reading("420502K001", i + k));
        pub.publish(ev);
    }
    auto lines = tail.lines(std::chrono::seconds(60));
    CHECK(tail.wait() == 0);
    REQUIRE(lines.size() == static_cast<std::size_t>(total));
    for (int i = 0; i < total; ++i)
        CHECK(json::parse(lines[i])["offset"] == i + 1);
}

TEST_CASE("tail marks exercises so that a drill is never read as a real alert", "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    process tail({pingan_bin(), "tail"});
    // Handshake: tail follows the feed once it shows a (real) probe report.
    std::optional<std::string> shown;
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
         !shown && std::chrono::steady_clock::now() < until;) {
        REQUIRE(run_stdout({"publish", hazard_json("420502K001", "P")}).code == 0);
        shown = tail.line(std::chrono::milliseconds(200));
    }
    REQUIRE(shown);
    CHECK(shown->find("[EXERCISE]") == std::string::npos);
    auto j = json::parse(hazard_json("420502K001", "X"));
    j["status"] = "Exercise";
    auto r = run_stdout({"publish", j.dump()});
    REQUIRE(r.code == 0);
    // Its line, after the probes' (lines begin "#OFFSET ").
    auto mine =
        "#" + std::to_string(json::parse(r.lines.at(0))["offset"].get<std::uint64_t>()) + " ";
    while (shown && !shown->starts_with(mine)) {
        CHECK(shown->find("[EXERCISE]") == std::string::npos);
        shown = tail.line(std::chrono::seconds(20));
    }
    tail.signal(SIGTERM);
    tail.wait();
    REQUIRE(shown);
    CHECK(shown->find("[EXERCISE]") != std::string::npos);
}

TEST_CASE("stats and verify report on the store", "[cli]") {
    temp_dir d;
    {
        broker_process b(d / "store");
        b.export_env();
        run_stdout({"publish", hazard_json("420502K001", "A")});
        auto s = run_stdout({"stats", "--json"});
        REQUIRE(s.lines.size() == 1);
        auto j = json::parse(s.lines[0]);
        CHECK(j["head"] == 1);
        CHECK(j["by_type"]["hazard.reported"] == 1);
        auto v = run_stdout({"verify", "--data", d / "store"}); // beside the running broker
        CHECK(v.code == 0);
        CHECK(json::parse(v.lines.at(0))["ok"] == true);
    }
    auto v = run_stdout({"verify", "--data", d / "nonexistent"});
    CHECK(v.code == 2);
}

TEST_CASE("every command has --help", "[cli]") {
    for (auto cmd : {"publish", "tail", "replay", "stats", "verify"}) {
        auto r = run_stdout({cmd, "--help"});
        INFO(cmd);
        CHECK(r.code == 0);
        CHECK_FALSE(r.lines.empty());
    }
    CHECK(run_stdout({"no-such-command"}).code == 2);
}

TEST_CASE("a broker that is not there is a clear error, not a hang", "[cli]") {
    auto r = run_stdout({"stats", "--query", "tcp://127.0.0.1:1"});
    CHECK(r.code == 2);
}

TEST_CASE("backup copies a store while the broker writes, and the copy verifies", "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    for (auto id : {"A", "B", "C"})
        REQUIRE(run_stdout({"publish", hazard_json("420502K001", id)}).code == 0);
    auto r = run_stdout({"backup", "--data", d / "store", d / "copy"});
    REQUIRE(r.code == 0);
    auto j = json::parse(r.lines.at(0));
    CHECK(j["ok"] == true);
    CHECK(j["head"] == 3);
    CHECK(j["checked"] == 3);
    // The broker goes on writing; the copy is the store as of the backup.
    REQUIRE(run_stdout({"publish", hazard_json("420502K001", "D")}).code == 0);
    auto v = run_stdout({"verify", "--data", d / "copy"});
    REQUIRE(v.code == 0);
    CHECK(json::parse(v.lines.at(0))["head"] == 3);
    CHECK(json::parse(v.lines.at(0))["head_hash"] == j["head_hash"]);
    // A folder that holds something is refused, and left as it was.
    auto again = run_stdout({"backup", "--data", d / "store", d / "copy"});
    CHECK(again.code == 2);
    CHECK(json::parse(run_stdout({"verify", "--data", d / "copy"}).lines.at(0))["head"] == 3);
}

TEST_CASE("backup under load: a copy taken while a publisher writes verifies, and a broker "
          "restored from it serves on from its head",
          "[cli]") {
    temp_dir d;
    std::uint64_t acked = 0;
    std::string head_hash;
    std::int64_t head = 0;
    {
        broker_process b(d / "store");
        b.export_env();
        // A publisher writes batches of readings for as long as the backups run.
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> stored{0};
        std::thread load([&] {
            zmq::context_t ctx(1);
            ingest_client c(ctx, b.ingest);
            for (std::uint64_t n = 0; !stop; ++n) {
                std::vector<event> batch;
                for (int i = 0; i < 50; ++i)
                    batch.push_back(sample_reading("420502K001", n * 50 + i));
                auto r = c.publish(batch);
                for (auto& x : r.results)
                    if (x.what == wire::outcome::stored) ++stored;
            }
        });
        // Three copies, each while the publisher is writing.
        for (int i = 0; i < 3; ++i) {
            while (stored < 500u * (i + 1))
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            auto copy = d / ("copy" + std::to_string(i));
            auto r = run_stdout({"backup", "--data", d / "store", copy});
            REQUIRE(r.code == 0);
            auto j = json::parse(r.lines.at(0));
            CHECK(j["ok"] == true);
            CHECK(j["checked"] == j["head"]);
            CHECK(j["head"].get<std::int64_t>() >= 500 * (i + 1));
            head = j["head"].get<std::int64_t>();
            head_hash = j["head_hash"].get<std::string>();
        }
        stop = true;
        load.join();
        acked = stored;
        CHECK(acked > static_cast<std::uint64_t>(head)); // it wrote on after the last copy
    }
    // The store is lost; the last copy is put in a new data folder as
    // docs/operations.md says, and a broker starts on it.
    std::filesystem::create_directories(d / "restored");
    std::filesystem::copy_file(d / "copy2/data.mdb", d / "restored/data.mdb");
    auto v = run_stdout({"verify", "--data", d / "restored", "--expect", head_hash});
    REQUIRE(v.code == 0);
    CHECK(json::parse(v.lines.at(0))["head"] == head);
    broker_process b(d / "restored");
    b.export_env();
    auto r = run_stdout({"publish", hazard_json("420502K001", "after-restore")});
    REQUIRE(r.code == 0);
    CHECK(json::parse(r.lines.at(0))["offset"] == head + 1);
}

TEST_CASE("verify --expect catches a history rewritten and re-chained after the head was recorded",
          "[cli]") {
    temp_dir d;
    std::string recorded;
    {
        broker_process b(d / "store");
        b.export_env();
        for (auto id : {"A", "B", "C"})
            run_stdout({"publish", hazard_json("420502K001", id)});
    }
    auto v = run_stdout({"verify", "--data", d / "store"});
    REQUIRE(v.code == 0);
    recorded = json::parse(v.lines.at(0))["head_hash"].get<std::string>();

    // Someone with write access edits record 2 and recomputes every hash after it.
    {
        lmdb::env env(d / "store", 16, 1 << 30);
        lmdb::txn t(env);
        auto events = lmdb::open_dbi(t, "events", 0);
        auto meta = lmdb::open_dbi(t, "meta", 0);
        chain_hash h{};
        for (std::uint64_t off = 1; off <= 3; ++off) {
            std::string value(*lmdb::get(t, events, lmdb::be64(off)));
            std::string rec = value.substr(32);
            if (off == 2) {
                event e;
                REQUIRE_FALSE(decode(rec, e));
                std::get<hazard_reported>(e.body).description = "无隐患";
                rec = encode(e);
            }
            h = chain_next(h, off, rec);
            lmdb::put(t, events, lmdb::be64(off),
                      std::string(reinterpret_cast<const char*>(h.data()), 32) + rec);
        }
        lmdb::put(t, meta, "chain",
                  lmdb::be64(3) + std::string(reinterpret_cast<const char*>(h.data()), 32));
        t.commit();
    }
    // The chain is consistent again, so only the recorded head exposes it.
    CHECK(run_stdout({"verify", "--data", d / "store"}).code == 0);
    auto caught = run_stdout({"verify", "--data", d / "store", "--expect", recorded});
    CHECK(caught.code == 1);
    CHECK(json::parse(caught.lines.at(0))["problem"].get<std::string>().find("rewritten") !=
          std::string::npos);
}

TEST_CASE("incidents list, show and ack go over the network, with the school taken from the "
          "incident",
          "[cli]") {
    temp_dir d;
    broker_process b(d / "store", {"--rules", default_rules()});
    b.export_env();
    auto h = json::parse(hazard_json("420502K001", "HZ-NET"));
    h["body"]["interim_control"] = "已封闭通道";
    REQUIRE(run_stdout({"publish", h.dump()}).code == 0);

    auto list = run_stdout({"incidents", "list", "--json"});
    REQUIRE(list.code == 0);
    REQUIRE(list.lines.size() == 1);
    auto inc = json::parse(list.lines[0]);
    auto id = inc["id"].get<std::string>();
    CHECK(inc["subject"] == "HZ-NET");
    CHECK(run_stdout({"incidents", "list", "--json", "--state", "closed"}).lines.empty());
    auto people = run_stdout({"incidents", "list"});
    REQUIRE(people.lines.size() == 1);
    CHECK(people.lines[0].find("西陵区第1幼儿园") != std::string::npos);

    // No --school: the incident says where it is.
    auto ack = run_stdout({"incidents", "ack", id, "--note", "已电话联系校长"});
    CHECK(ack.code == 0);
    REQUIRE(ack.lines.size() == 1);
    CHECK_FALSE(json::parse(ack.lines[0]).contains("error"));

    auto show = run_stdout({"incidents", "show", id, "--json"});
    REQUIRE(show.code == 0);
    REQUIRE(show.lines.size() == 1);
    auto j = json::parse(show.lines[0]);
    CHECK(j["state"] == "acknowledged");
    CHECK(j["acknowledged_by"] == json::array({"anonymous"}));
    std::vector<std::string> types;
    for (const auto& e : j["timeline"])
        types.push_back(e["type"]);
    REQUIRE(types.size() >= 3);
    CHECK(types.front() == "hazard.reported");
    CHECK(std::count(types.begin(), types.end(), "incident.opened") == 1);
    CHECK(types.back() == "incident.acknowledged");
    auto by_subject =
        run_stdout({"incidents", "show", "HZ-NET", "--school", "420502K001", "--json"});
    REQUIRE(by_subject.code == 0);
    CHECK(json::parse(by_subject.lines.at(0))["id"] == id);
}

TEST_CASE("incident actions that make no sense are refused and nothing is stored", "[cli]") {
    temp_dir d;
    broker_process b(d / "store", {"--rules", default_rules()});
    b.export_env();
    auto h = json::parse(hazard_json("420502K001", "HZ-BAD"));
    h["body"]["interim_control"] = "已封闭通道";
    REQUIRE(run_stdout({"publish", h.dump()}).code == 0);
    auto id = json::parse(run_stdout({"incidents", "list", "--json"}).lines.at(0))["id"]
                  .get<std::string>();
    zmq::context_t ctx(1);
    query_client q(ctx, b.query);
    auto head = q.stats()["head"].get<std::uint64_t>();

    auto unknown = run({"incidents", "ack", "INC-0000000000000000"});
    CHECK(unknown.code == 1);
    CHECK(has(unknown, "no incident \"INC-0000000000000000\""));
    auto resolve = run({"incidents", "resolve", id, "--resolution", "已处理"});
    CHECK(resolve.code == 1);
    CHECK(has(resolve, "is a hazard"));
    auto early =
        run({"incidents", "verify", "HZ-BAD", "--school", "420502K001", "--verifier", "li"});
    CHECK(early.code == 1);
    CHECK(has(early, "not rectified yet"));
    CHECK(q.stats()["head"].get<std::uint64_t>() == head);

    json fix = {
        {"type", "hazard.rectified"},
        {"school", "420502K001"},
        {"status", "Actual"},
        {"body", {{"hazard_id", "HZ-BAD"}, {"rectified_by", "wang"}, {"description", "已疏通"}}}};
    REQUIRE(run_stdout({"publish", fix.dump()}).code == 0);
    head = q.stats()["head"].get<std::uint64_t>();
    auto fixer =
        run({"incidents", "verify", "HZ-BAD", "--school", "420502K001", "--verifier", "wang"});
    CHECK(fixer.code == 1);
    CHECK(has(fixer, "someone other than the fixer"));
    CHECK(q.stats()["head"].get<std::uint64_t>() == head);
    auto other =
        run_stdout({"incidents", "verify", id, "--verifier", "li", "--evidence", "复查合格"});
    CHECK(other.code == 0);
    CHECK(json::parse(run_stdout({"incidents", "show", id, "--json"}).lines.at(0))["state"] ==
          "closed");
    auto again = run({"incidents", "ack", id});
    CHECK(again.code == 1);
    CHECK(has(again, "is closed"));
}

TEST_CASE("incidents over the network stay within the caller's scope", "[cli]") {
    temp_dir d;
    auto server = curve_generate(), city = curve_generate(), school = curve_generate();
    write_key(d / "server.key", server);
    write_key(d / "city.key", city);
    write_key(d / "school.key", school);
    std::ofstream(d / "clients.yaml")
        << "clients:\n  - identity: bureau:city\n    key: \"" << city.public_key
        << "\"\n    scope: city\n    may: [publish, query]\n"
        << "  - identity: school:420502K001\n    key: \"" << school.public_key
        << "\"\n    scope: {school: 420502K001}\n    may: [publish, query, act]\n";
    broker_process b(d / "store", {"--rules", default_rules(), "--server-key", d / "server.key",
                                   "--clients", d / "clients.yaml"});
    b.export_env();
    std::vector<std::string> as_city{"--key", d / "city.key", "--server-key", d / "server.key"};
    std::vector<std::string> as_school{"--key", d / "school.key", "--server-key", d / "server.key"};
    auto with = [](std::vector<std::string> a, const std::vector<std::string>& k) {
        a.insert(a.end(), k.begin(), k.end());
        return a;
    };
    for (auto [sch, hz] : {std::pair{"420502K001", "HZ-A"}, {"420503K001", "HZ-B"}}) {
        auto h = json::parse(hazard_json(sch, hz));
        h["body"]["interim_control"] = "已封闭通道";
        REQUIRE(run_stdout(with({"publish", h.dump()}, as_city)).code == 0);
    }
    auto all = run_stdout(with({"incidents", "list", "--json"}, as_city));
    REQUIRE(all.lines.size() == 2);
    auto mine = run_stdout(with({"incidents", "list", "--json"}, as_school));
    REQUIRE(mine.code == 0);
    REQUIRE(mine.lines.size() == 1);
    CHECK(json::parse(mine.lines[0])["school"] == "420502K001");
    auto theirs = json::parse(all.lines[1])["id"].get<std::string>();
    CHECK(run_stdout(with({"incidents", "show", theirs}, as_school)).code == 1);
    auto forbidden = run(with({"incidents", "list", "--school", "420503K001"}, as_school));
    CHECK(forbidden.code == 1);
    CHECK(has(forbidden, "forbidden"));
    auto unknown = run(with({"incidents", "list", "--school", "999999X999"}, as_city));
    CHECK(unknown.code == 1);
    CHECK(has(unknown, "999999X999"));
    // The school's own acknowledgement is recorded under its identity.
    auto own = json::parse(mine.lines[0])["id"].get<std::string>();
    REQUIRE(run_stdout(with({"incidents", "ack", own}, as_school)).code == 0);
    auto shown = run_stdout(with({"incidents", "show", own, "--json"}, as_school));
    CHECK(json::parse(shown.lines.at(0))["acknowledged_by"] == json::array({"school:420502K001"}));
}

TEST_CASE("replay and tail refuse unknown schools, district names and misspelt types", "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    run_stdout({"publish", hazard_json("420502K001", "A")});
    auto bogus = run({"replay", "--school", "999999X999"});
    CHECK(bogus.code == 2);
    CHECK(has(bogus, "school \"999999X999\" is not in the registry"));
    auto lower = run({"replay", "--school", "420502k001"});
    CHECK(lower.code == 2);
    CHECK(has(lower, "420502K001"));
    auto name = run({"replay", "--district", "西陵区"});
    CHECK(name.code == 2);
    CHECK(has(name, "420502"));
    auto typo = run({"replay", "--type", "hazrd.reported"});
    CHECK(typo.code == 2);
    CHECK(has(typo, "hazrd.reported"));
    auto tail = run({"tail", "--type", "hazard.reportd", "--count", "1"});
    CHECK(tail.code == 2);
    // A prefix of known types stays valid.
    auto prefix = run_stdout({"replay", "--type", "hazard.", "--json"});
    CHECK(prefix.code == 0);
    CHECK(prefix.lines.size() == 1);
}

TEST_CASE("publish --stable-ids makes publishing the same file again store nothing twice",
          "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    std::string file = d / "events.jsonl";
    {
        std::ofstream f(file);
        f << hazard_json("420502K001", "S1") << "\n"
          << hazard_json("420502K001", "S2") << "\n"
          << hazard_json("420502K001", "S1") << "\n"; // the same report twice: two facts
    }
    auto first = run_stdout({"publish", "--stable-ids", "--file", file});
    REQUIRE(first.code == 0);
    REQUIRE(first.lines.size() == 3);
    auto second = run_stdout({"publish", "--stable-ids", "--file", file});
    REQUIRE(second.code == 0);
    REQUIRE(second.lines.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        auto a = json::parse(first.lines[i]), c = json::parse(second.lines[i]);
        CHECK(a["duplicate"] == false);
        CHECK(c["duplicate"] == true);
        CHECK(c["offset"] == a["offset"]);
        CHECK(c["id"] == a["id"]);
    }
    zmq::context_t ctx(1);
    query_client q(ctx, b.query);
    CHECK(q.stats()["head"] == 3);
}

TEST_CASE("a broker that is down is named while waiting, and --timeout ends the wait", "[cli]") {
    auto start = std::chrono::steady_clock::now();
    auto tail = run(
        {"tail", "--feed", "tcp://127.0.0.1:1", "--query", "tcp://127.0.0.1:1", "--timeout", "2"});
    CHECK(tail.code == 2);
    CHECK(has(tail, "waiting for the broker at tcp://127.0.0.1:1 (no answer yet)"));
    CHECK(has(tail, "no answer from the broker at tcp://127.0.0.1:1"));
    auto publish = run({"publish", "--ingest", "tcp://127.0.0.1:1", "--timeout", "1",
                        hazard_json("420502K001", "T")});
    CHECK(publish.code == 2);
    CHECK(has(publish, "tcp://127.0.0.1:1"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("without a key, a secured broker is reported at once, not waited for", "[cli]") {
    temp_dir d;
    auto server = curve_generate(), city = curve_generate();
    write_key(d / "server.key", server);
    std::ofstream(d / "clients.yaml")
        << "clients:\n  - identity: bureau:city\n    key: \"" << city.public_key
        << "\"\n    scope: city\n    may: [publish, query]\n";
    broker_process b(d / "store",
                     {"--server-key", d / "server.key", "--clients", d / "clients.yaml"});
    b.export_env();
    auto start = std::chrono::steady_clock::now();
    for (auto args : std::vector<std::vector<std::string>>{
             {"stats", "--timeout", "30"},
             {"tail", "--count", "1"},
             {"publish", "--timeout", "30", hazard_json("420502K001", "K")}}) {
        auto r = run(args);
        INFO(args[0]);
        CHECK(r.code == 2);
        CHECK(has(r, "requires a CURVE key: use --key and --server-key"));
    }
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("tail shows the whole text of pages, school names, several types and exclusions",
          "[cli]") {
    temp_dir d;
    broker_process b(d / "store", {"--rules", default_rules()});
    b.export_env();
    auto h = json::parse(hazard_json("420502K001", "HZ-T"));
    h["body"]["interim_control"] = "已封闭通道";
    REQUIRE(run_stdout({"publish", h.dump()}).code == 0);
    json reading = {
        {"type", "food.temp_reading"},
        {"school", "420502K001"},
        {"status", "Actual"},
        {"body",
         {{"canteen_id", "C1"}, {"sensor_id", "P1"}, {"zone", "cold_storage"}, {"celsius", 4.0}}}};
    REQUIRE(run_stdout({"publish", reading.dump()}).code == 0);
    std::vector<std::string> texts;
    for (const auto& l : run_stdout({"replay", "--json", "--type", "notification.requested"}).lines)
        texts.push_back(json::parse(l)["body"]["text"]);
    REQUIRE_FALSE(texts.empty());

    auto t = run_stdout({"tail", "--from", "1", "--type", "notification.", "--type", "hazard.",
                         "--exclude", "food.temp_reading", "--idle-exit-ms", "500"});
    CHECK(t.code == 0);
    REQUIRE(t.lines.size() == texts.size() + 1);
    CHECK(t.lines[0].find("hazard.reported") != std::string::npos);
    CHECK(t.lines[0].find("西陵区第1幼儿园") != std::string::npos);
    CHECK(t.lines[0].find("CST") != std::string::npos);
    CHECK(t.lines[0].find("Severe") != std::string::npos);
    for (std::size_t i = 0; i < texts.size(); ++i)
        CHECK(t.lines[i + 1].find(texts[i]) != std::string::npos);
    for (const auto& l : t.lines)
        CHECK(l.find("food.temp_reading") == std::string::npos);
}

TEST_CASE("the shipped broker configuration works from any working directory", "[cli]") {
    temp_dir d;
    std::filesystem::create_directories(d / "elsewhere");
    process broker({"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", d / "elsewhere",
                    std::string(PINGAN_BIN_DIR) + "/pingan-broker", "--config",
                    std::string(PINGAN_SOURCE_DIR) + "/config/broker.yaml", "--data", "store",
                    "--ingest", "tcp://127.0.0.1:*", "--feed", "tcp://127.0.0.1:*", "--query",
                    "tcp://127.0.0.1:*", "--log-level", "warn"});
    auto l = broker.line(std::chrono::seconds(20));
    REQUIRE(l);
    REQUIRE(l->find("listening") == 0);
    auto ingest = l->substr(l->find("ingest=") + 7, l->find(" feed=") - l->find("ingest=") - 7);
    auto query = l->substr(l->find("query=") + 6);
    // The registry and the rules named in the file were found: a school is
    // known and a major hazard opens an incident.
    auto h = json::parse(hazard_json("420502K001", "HZ-CFG"));
    h["body"]["interim_control"] = "已封闭通道";
    auto p = run_program({pingan_bin(), "publish", "--ingest", ingest, h.dump()}, d / "elsewhere");
    CHECK(p.code == 0);
    auto list = run_program({pingan_bin(), "incidents", "list", "--json", "--query", query},
                            d / "elsewhere");
    CHECK(list.code == 0);
    CHECK(list.lines.size() == 1);
    // --data on the command line is relative to the working directory.
    CHECK(std::filesystem::exists(d / "elsewhere/store/data.mdb"));
    broker.signal(SIGTERM);
    CHECK(broker.wait() == 0);
}

TEST_CASE("pingan finds the school registry beside itself, not in the build tree", "[cli]") {
    temp_dir d;
    std::filesystem::create_directories(d / "bin");
    std::filesystem::create_directories(d / "share/pingan/data");
    std::filesystem::copy_file(pingan_bin(), d / "bin/pingan");
    std::filesystem::permissions(d / "bin/pingan", std::filesystem::perms::owner_exec,
                                 std::filesystem::perm_options::add);
    // An installed registry whose school name differs from the source tree's.
    auto schools = read_file(std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv");
    auto at = schools.find("西陵区第1幼儿园");
    REQUIRE(at != std::string::npos);
    schools.replace(at, std::string("西陵区第1幼儿园").size(), "安装目录幼儿园");
    std::ofstream(d / "share/pingan/data/schools.csv") << schools;
    std::filesystem::copy_file(std::string(PINGAN_SOURCE_DIR) + "/data/districts.csv",
                               d / "share/pingan/data/districts.csv");
    broker_process b(d / "store");
    b.export_env();
    run_stdout({"publish", hazard_json("420502K001", "A")});
    auto r = run_program({d / "bin/pingan", "replay", "--school", "420502K001"}, "/");
    CHECK(r.code == 0);
    REQUIRE(r.lines.size() == 1);
    CHECK(r.lines[0].find("安装目录幼儿园") != std::string::npos);
    ::setenv("PINGAN_REGISTRY_DIR", (d / "nowhere").c_str(), 1);
    auto none = run_program({d / "bin/pingan", "replay", "--school", "420502K001"}, "/");
    ::unsetenv("PINGAN_REGISTRY_DIR");
    CHECK(none.code == 0);
    CHECK(has(none, "PINGAN_REGISTRY_DIR"));
}
