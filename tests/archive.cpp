// pingan archive, verify --archive and replay --archive: old ranges of a real
// LMDB store in compressed, chain-verified segment files, run as processes.
#include "broker/store/store.hpp"
#include "broker_process.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <zlib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>

using namespace pingan;
using namespace pingan::test;
namespace fs = std::filesystem;

namespace {

struct run_result {
    int code;
    std::vector<std::string> lines;
};

// `pingan` with its standard error merged into the lines.
run_result run(std::vector<std::string> args) {
    args.insert(args.begin(), {"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh",
                               std::string(PINGAN_BIN_DIR) + "/pingan"});
    process p(args);
    auto lines = p.lines(std::chrono::seconds(60));
    return {p.wait(), lines};
}

std::string joined(const run_result& r) {
    std::string s;
    for (const auto& l : r.lines)
        s += l + "\n";
    return s;
}

// A store holding `per_day` canteen readings on each of `days` days from
// 2026-09-01 (received at 10:00 China time), written by the store itself.
void fill(const std::string& dir, int days, int per_day) {
    store_options o;
    o.path = dir;
    store s(o);
    std::uint64_t n = 0;
    for (int d = 0; d < days; ++d) {
        auto now = at("2026-09-01T02:00:00Z") + std::chrono::hours(24 * d);
        std::vector<event> batch;
        for (int i = 0; i < per_day; ++i)
            batch.push_back(sample_reading(i % 2 ? "420502K001" : "420503J002", ++n));
        batch_output out;
        s.append(batch, now, nullptr, out);
    }
}

std::vector<fs::path> segments(const std::string& dir) {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".pseg") v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
}

json last_json(const run_result& r) {
    REQUIRE(!r.lines.empty());
    return json::parse(r.lines.back());
}

} // namespace

TEST_CASE("archive writes a segment per day before the date and verify proves archive and store "
          "as one chain",
          "[archive]") {
    temp_dir d;
    std::string data = d / "store", arch = d / "archive";
    fill(data, 3, 300);

    auto r = run({"archive", "--data", data, "--before", "2026-09-03", "--out", arch});
    INFO(joined(r));
    REQUIRE(r.code == 0);
    auto j = last_json(r);
    CHECK(j["events"] == 600);
    CHECK(j["archived_to"] == 600);
    REQUIRE(j["segments"].size() == 2);
    CHECK(j["segments"][0]["day"] == "2026-09-01");
    CHECK(j["segments"][0]["first"] == 1);
    CHECK(j["segments"][0]["last"] == 300);
    CHECK(j["segments"][1]["day"] == "2026-09-02");
    CHECK(j["bytes"].get<std::uint64_t>() < j["raw_bytes"].get<std::uint64_t>() / 4);

    auto v = run({"verify", "--data", data, "--archive", arch});
    INFO(joined(v));
    REQUIRE(v.code == 0);
    auto vj = last_json(v);
    CHECK(vj["ok"] == true);
    CHECK(vj["archive"]["segments"] == 2);
    CHECK(vj["archive"]["checked"] == 600);
    CHECK(vj["archive"]["last"] == 600);
    CHECK(vj["head"] == 900);

    // The next run continues the archive where it ended.
    auto again = run({"archive", "--data", data, "--before", "2026-09-04", "--out", arch});
    INFO(joined(again));
    REQUIRE(again.code == 0);
    auto aj = last_json(again);
    REQUIRE(aj["segments"].size() == 1);
    CHECK(aj["segments"][0]["first"] == 601);
    CHECK(aj["archived_to"] == 900);
    CHECK(segments(arch).size() == 3);
    CHECK(last_json(run({"verify", "--data", data, "--archive", arch}))["ok"] == true);

    // An archive is not another store's history.
    std::string other = d / "other";
    fill(other, 3, 301);
    auto wrong = run({"verify", "--data", other, "--archive", arch});
    CHECK(wrong.code == 1);
    CHECK(joined(wrong).find("not the one the archive's records make") != std::string::npos);
}

TEST_CASE("a tampered segment is caught, naming the segment and the offsets", "[archive]") {
    temp_dir d;
    std::string data = d / "store", arch = d / "archive";
    fill(data, 2, 1000);
    REQUIRE(run({"archive", "--data", data, "--before", "2026-09-03", "--out", arch}).code == 0);
    auto segs = segments(arch);
    REQUIRE(segs.size() == 2);
    auto file = segs[1]; // offsets 1001-2000

    // One record's temperature rewritten and the body compressed again, as
    // someone with the file and zlib would.
    auto text = read_file(file);
    auto body_at = text.find('\n', text.find('\n') + 1) + 1;
    auto header = json::parse(text.substr(text.find('\n') + 1, body_at - text.find('\n') - 2));
    std::string raw(header["raw_bytes"].get<std::size_t>(), '\0');
    uLongf raw_len = raw.size();
    REQUIRE(uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_len,
                       reinterpret_cast<const Bytef*>(text.data() + body_at),
                       text.size() - body_at) == Z_OK);
    // Record 1300 is the 300th of the segment: find its bytes and change one.
    std::size_t pos = 0;
    for (int i = 0; i < 299; ++i) {
        std::uint32_t len;
        std::memcpy(&len, raw.data() + pos, 4);
        pos += 4 + len;
    }
    std::uint32_t len;
    std::memcpy(&len, raw.data() + pos, 4);
    std::string rec = raw.substr(pos + 4, len);
    event e;
    REQUIRE(!decode(rec, e));
    REQUIRE(e.offset == 1300);
    std::get<food_temp_reading>(e.body).celsius = 3.9;
    auto forged = encode(e);
    REQUIRE(forged.size() == rec.size());
    REQUIRE(forged != rec);
    raw.replace(pos + 4, len, forged);
    std::string packed(compressBound(raw.size()), '\0');
    uLongf packed_len = packed.size();
    REQUIRE(compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_len,
                      reinterpret_cast<const Bytef*>(raw.data()), raw.size(), 9) == Z_OK);
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out << text.substr(0, body_at) << packed.substr(0, packed_len);
    }
    auto v = run({"verify", "--data", data, "--archive", arch});
    INFO(joined(v));
    CHECK(v.code == 1);
    auto j = last_json(v);
    CHECK(j["ok"] == false);
    // The record sits in the second window of 256 records: 1257-1512.
    CHECK(j["first_bad"] == 1257);
    auto problem = j["problem"].get<std::string>();
    CHECK(problem.find(file.filename().string()) != std::string::npos);
    CHECK(problem.find("offsets 1257-1512") != std::string::npos);

    // A damaged file (a byte flipped in the compressed body) is caught too.
    text[body_at + 500] = static_cast<char>(text[body_at + 500] ^ 0x55);
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out << text;
    }
    auto v2 = run({"verify", "--data", data, "--archive", arch});
    INFO(joined(v2));
    CHECK(v2.code == 1);
    CHECK(last_json(v2)["problem"].get<std::string>().find(file.filename().string()) !=
          std::string::npos);

    // A segment removed leaves a gap that is named.
    fs::remove(segs[0]);
    auto v3 = run({"verify", "--data", data, "--archive", arch});
    CHECK(v3.code == 1);
    CHECK(joined(v3).find("begins at offset 1001") != std::string::npos);
}

TEST_CASE("archived events replay as the broker replays them, and after --drop the store "
          "continues the archive's chain",
          "[archive]") {
    temp_dir d;
    std::string data = d / "store", arch = d / "archive";
    fill(data, 3, 200);
    std::vector<std::string> from_broker;
    {
        broker_process b(data);
        b.export_env();
        auto r = run({"replay", "--json", "--from", "1", "--to", "400"});
        REQUIRE(r.code == 0);
        from_broker = r.lines;
        REQUIRE(from_broker.size() == 400);

        // --drop needs the broker stopped; without it, archiving runs beside it.
        auto busy =
            run({"archive", "--data", data, "--before", "2026-09-03", "--out", arch, "--drop"});
        CHECK(busy.code == 2);
        CHECK(joined(busy).find("in use by a broker") != std::string::npos);
        CHECK((!fs::exists(arch) || segments(arch).empty()));
        b.proc->signal(SIGTERM);
        REQUIRE(b.proc->wait() == 0);
    }
    // Chain hashes recorded before the drop, as an inspector would keep them.
    std::string at300, at500, at600;
    {
        store_options o;
        o.path = data;
        o.read_only = true;
        store s(o);
        at300 = hex(*s.hash_at(300));
        at500 = hex(*s.hash_at(500));
        at600 = hex(*s.hash_at(600));
    }
    auto a = run({"archive", "--data", data, "--before", "2026-09-03", "--out", arch, "--drop"});
    INFO(joined(a));
    REQUIRE(a.code == 0);
    CHECK(last_json(a)["dropped"] == 400);

    // The archived events, event for event as the broker gave them.
    auto r = run({"replay", "--archive", arch, "--json"});
    REQUIRE(r.code == 0);
    CHECK(r.lines == from_broker);
    auto day2 = run({"replay", "--archive", arch, "--json", "--since", "2026-09-02T00:00:00+08:00",
                     "--limit", "5"});
    REQUIRE(day2.lines.size() == 5);
    CHECK(day2.lines[0] == from_broker[200]);

    // The store holds 401-600, verifies on its own and with the archive.
    {
        store_options o;
        o.path = data;
        o.read_only = true;
        store s(o);
        CHECK(!s.get(400));
        CHECK(s.get(401));
        auto vr = s.verify();
        CHECK(vr.ok);
        CHECK(vr.checked == 200);
    }
    auto v = run({"verify", "--data", data, "--archive", arch});
    INFO(joined(v));
    CHECK(v.code == 0);
    auto alone = run({"verify", "--data", data});
    INFO(joined(alone));
    CHECK(alone.code == 0);
    // Hashes recorded earlier still prove the records the store kept; an
    // offset it no longer holds is named as archived, not as rewritten.
    CHECK(run({"verify", "--data", data, "--expect", at600}).code == 0);
    CHECK(run({"verify", "--data", data, "--expect", at500, "--at", "500"}).code == 0);
    auto wrong = run({"verify", "--data", data, "--expect", at300, "--at", "500"});
    CHECK(wrong.code == 1);
    CHECK(joined(wrong).find("the history was rewritten") != std::string::npos);
    auto gone = run({"verify", "--data", data, "--expect", at300, "--at", "300"});
    CHECK(gone.code == 1);
    CHECK(joined(gone).find("is no longer in this store: records 1-400 were archived") !=
          std::string::npos);
    CHECK(joined(gone).find("rewritten") == std::string::npos);

    // The broker opens the store, stores on after the head, and replays what it still holds.
    broker_process b(data);
    b.export_env();
    auto live = run({"replay", "--json", "--from", "1"});
    REQUIRE(live.code == 0);
    REQUIRE(live.lines.size() == 200);
    CHECK(json::parse(live.lines.front())["offset"] == 401);
    std::string file = d / "one.jsonl";
    {
        std::ofstream f(file);
        f << R"({"type":"hazard.reported","school":"420502K001","status":"Actual",)"
          << R"("severity":"Severe","body":{"hazard_id":"H9","area":"fire","grade":"major",)"
          << R"("description":"消防通道堵塞","location":"宿舍楼","found_by":"safety_officer"}})"
          << "\n";
    }
    auto p = run({"publish", "--file", file});
    INFO(joined(p));
    CHECK(p.code == 0);
    b.proc->signal(SIGTERM);
    REQUIRE(b.proc->wait() == 0);
    auto after = run({"verify", "--data", data, "--archive", arch});
    INFO(joined(after));
    CHECK(after.code == 0);
    CHECK(last_json(after)["head"].get<std::uint64_t>() > 600);
}

TEST_CASE("the inspector's question: one school's temperature readings of one day come from the "
          "archive as the broker gives them, both ends of the day included",
          "[archive]") {
    temp_dir d;
    std::string data = d / "store", arch = d / "archive";
    const std::string school = "420502K001", other = "420503J002";
    // Events received around 2026-09-01 (China time), the day's edges
    // included; `in` marks what the inspector asks for.
    struct arrival {
        const char* received;
        std::string school;
        bool reading, in;
    };
    const std::vector<arrival> day{
        {"2026-08-31T23:59:59.999999+08:00", school, true, false}, // the day before
        {"2026-09-01T00:00:00+08:00", school, true, true},         // the day's first instant
        {"2026-09-01T00:00:00.5+08:00", other, true, false},       // another school
        {"2026-09-01T10:00:00+08:00", school, true, true},
        {"2026-09-01T10:00:01+08:00", school, false, false}, // a hazard report, not a reading
        {"2026-09-01T15:30:00+08:00", school, true, true},
        {"2026-09-01T23:59:59.999999+08:00", school, true, true}, // the day's last instant
        {"2026-09-02T00:00:00+08:00", school, true, false},       // the next day
        {"2026-09-02T09:00:00+08:00", other, true, false},
    };
    std::set<std::uint64_t> expected;
    {
        store_options o;
        o.path = data;
        store s(o);
        std::uint64_t n = 0;
        for (const auto& a : day) {
            std::vector<event> one{a.reading ? sample_reading(a.school, ++n)
                                             : sample_hazard(a.school)};
            batch_output out;
            s.append(one, at(a.received), nullptr, out);
            REQUIRE(out.stored.size() == 1);
            if (a.in) expected.insert(out.stored[0].offset);
        }
    }
    REQUIRE(expected.size() == 4);
    auto a = run({"archive", "--data", data, "--before", "2026-09-03", "--out", arch});
    INFO(joined(a));
    REQUIRE(a.code == 0);
    REQUIRE(last_json(a)["segments"].size() == 3); // 08-31, 09-01, 09-02

    // The command of docs/operations.md.
    const std::vector<std::string> question{
        "--type",  "food.temp_reading",         "--school", school,
        "--since", "2026-09-01T00:00:00+08:00", "--until",  "2026-09-01T23:59:59.999999+08:00",
        "--json"};
    std::vector<std::string> args{"replay", "--archive", arch};
    args.insert(args.end(), question.begin(), question.end());
    auto r = run(args);
    INFO(joined(r));
    REQUIRE(r.code == 0);
    std::set<std::uint64_t> got;
    for (const auto& l : r.lines) {
        auto j = json::parse(l);
        CHECK(j["type"] == "food.temp_reading");
        CHECK(j["school"] == school);
        CHECK(j["body"]["sensor_id"].is_string()); // each reading names its fridge's probe
        got.insert(j["offset"].get<std::uint64_t>());
    }
    CHECK(r.lines.size() == expected.size());
    CHECK(got == expected);

    // A day still in the store: the same filters without --archive ask the
    // broker, and the answer is the same, line for line.
    broker_process b(data);
    b.export_env();
    std::vector<std::string> live{"replay"};
    live.insert(live.end(), question.begin(), question.end());
    auto l = run(live);
    INFO(joined(l));
    REQUIRE(l.code == 0);
    CHECK(l.lines == r.lines);
}
