// Black-box tests of the `pingan` command-line tool against a real broker.
#include "broker/store.hpp"
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/lmdb.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

std::string pingan_bin() {
    return std::string(PINGAN_BIN_DIR) + "/pingan";
}

struct run_result {
    int code;
    std::vector<std::string> lines;
};

run_result run(std::vector<std::string> args, const std::string& stdin_file = {}) {
    args.insert(args.begin(), pingan_bin());
    process p(args, stdin_file);
    auto lines = p.lines(std::chrono::seconds(60));
    return {p.wait(), lines};
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
          << hazard_json("420502K002", "H3") << "\n";
    }
    auto r = run({"publish", "--file", file});
    CHECK(r.code == 1);
    REQUIRE(r.lines.size() == 4);
    auto j0 = json::parse(r.lines[0]);
    CHECK(j0["offset"] == 1);
    CHECK(j0["duplicate"] == false);
    CHECK(json::parse(r.lines[1])["error"]["code"] == "unknown_school");
    CHECK(json::parse(r.lines[2])["error"]["code"] == "malformed_json");
    CHECK(json::parse(r.lines[3])["offset"] == 2);

    auto one = run({"publish", hazard_json("420502K003", "H4")});
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
    auto a = run({"publish", "-"}, file);
    auto b2 = run({"publish", "-"}, file);
    CHECK(a.code == 0);
    CHECK(b2.code == 0);
    CHECK(json::parse(b2.lines.at(0))["duplicate"] == true);
    CHECK(json::parse(b2.lines.at(0))["offset"] == 1);
}

TEST_CASE("replay prints json lines with id, offset, type and school, filtered", "[cli]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    run({"publish", hazard_json("420502K001", "A")});
    run({"publish", hazard_json("420503K001", "B")});
    run({"publish", hazard_json("420502K002", "C")});
    auto all = run({"replay", "--json"});
    CHECK(all.code == 0);
    REQUIRE(all.lines.size() == 3);
    auto j = json::parse(all.lines[1]);
    CHECK(j["offset"] == 2);
    CHECK(j["type"] == "hazard.reported");
    CHECK(j.contains("id"));
    auto district = run({"replay", "--json", "--district", "420502"});
    CHECK(district.lines.size() == 2);
    auto range = run({"replay", "--json", "--from", "2", "--to", "2"});
    REQUIRE(range.lines.size() == 1);
    CHECK(json::parse(range.lines[0])["body"]["hazard_id"] == "B");
    auto people = run({"replay", "--school", "420502K001"});
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
    process tail({pingan_bin(), "tail", "--count", "1"});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto j = json::parse(hazard_json("420502K001", "X"));
    j["status"] = "Exercise";
    run({"publish", j.dump()});
    auto lines = tail.lines(std::chrono::seconds(20));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("[EXERCISE]") != std::string::npos);
}

TEST_CASE("stats and verify report on the store", "[cli]") {
    temp_dir d;
    {
        broker_process b(d / "store");
        b.export_env();
        run({"publish", hazard_json("420502K001", "A")});
        auto s = run({"stats", "--json"});
        REQUIRE(s.lines.size() == 1);
        auto j = json::parse(s.lines[0]);
        CHECK(j["head"] == 1);
        CHECK(j["by_type"]["hazard.reported"] == 1);
        auto v = run({"verify", "--data", d / "store"}); // beside the running broker
        CHECK(v.code == 0);
        CHECK(json::parse(v.lines.at(0))["ok"] == true);
    }
    auto v = run({"verify", "--data", d / "nonexistent"});
    CHECK(v.code == 2);
}

TEST_CASE("every command has --help", "[cli]") {
    for (auto cmd : {"publish", "tail", "replay", "stats", "verify"}) {
        auto r = run({cmd, "--help"});
        INFO(cmd);
        CHECK(r.code == 0);
        CHECK_FALSE(r.lines.empty());
    }
    CHECK(run({"no-such-command"}).code == 2);
}

TEST_CASE("a broker that is not there is a clear error, not a hang", "[cli]") {
    auto r = run({"stats", "--query", "tcp://127.0.0.1:1"});
    CHECK(r.code == 2);
}

TEST_CASE("verify --expect catches a history rewritten and re-chained after the head was recorded",
          "[cli]") {
    temp_dir d;
    std::string recorded;
    {
        broker_process b(d / "store");
        b.export_env();
        for (auto id : {"A", "B", "C"})
            run({"publish", hazard_json("420502K001", id)});
    }
    auto v = run({"verify", "--data", d / "store"});
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
    CHECK(run({"verify", "--data", d / "store"}).code == 0);
    auto caught = run({"verify", "--data", d / "store", "--expect", recorded});
    CHECK(caught.code == 1);
    CHECK(json::parse(caught.lines.at(0))["problem"].get<std::string>().find("rewritten") !=
          std::string::npos);
}
