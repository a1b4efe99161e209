// Tests for broker/store/store.hpp on real LMDB files.
#include "broker/store/store.hpp"
#include "broker_process.hpp"
#include "common/lmdb.hpp"
#include "process.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

using namespace pingan;
using namespace pingan::test;

namespace {

std::vector<event> readings(std::size_t n, const std::string& school = "420502K001") {
    std::vector<event> v;
    for (std::size_t i = 0; i < n; ++i) {
        v.push_back(sample_reading(school, i));
        v.back().district = school.substr(0, 6);
    }
    return v;
}

std::vector<std::uint64_t> offsets(const store& s, const scan_filter& f) {
    std::vector<std::uint64_t> out;
    s.scan(f, 1'000'000, [&](std::uint64_t off, std::string_view) {
        out.push_back(off);
        return true;
    });
    return out;
}

} // namespace

TEST_CASE("appended events get consecutive offsets from 1", "[store]") {
    temp_dir d;
    store s({d.path()});
    auto ev = readings(5);
    batch_output out;
    s.append(ev, at("2026-11-29T02:00:00Z"), nullptr, out);
    REQUIRE(out.results.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK(out.results[i].what == wire::outcome::stored);
        CHECK(out.results[i].offset == i + 1);
    }
    CHECK(s.head() == 5);
    CHECK(out.stored.size() == 5);
    event back;
    REQUIRE_FALSE(decode(*s.get(3), back));
    CHECK(back.offset == 3);
    CHECK(back.id == ev[2].id);
    CHECK(back.received_at == at("2026-11-29T02:00:00Z"));
}

TEST_CASE("a resent id is answered with its original offset and stored once", "[store]") {
    temp_dir d;
    store s({d.path()});
    auto ev = readings(3);
    batch_output out;
    s.append(ev, at("2026-11-29T02:00:00Z"), nullptr, out);
    auto again = std::vector<event>{ev[1], ev[1], sample_reading("420502K001", 99)};
    batch_output out2;
    s.append(again, at("2026-11-29T02:00:01Z"), nullptr, out2);
    CHECK(out2.results[0].what == wire::outcome::duplicate);
    CHECK(out2.results[0].offset == 2);
    CHECK(out2.results[1].what == wire::outcome::duplicate);
    CHECK(out2.results[2].what == wire::outcome::stored);
    CHECK(out2.results[2].offset == 4);
    CHECK(s.head() == 4);
    CHECK(s.stats().events == 4);
}

TEST_CASE("received_at never goes backwards even if the clock does", "[store]") {
    temp_dir d;
    store s({d.path()});
    auto a = readings(1), b = readings(1);
    batch_output out;
    s.append(a, at("2026-11-29T02:00:00Z"), nullptr, out);
    s.append(b, at("2026-11-29T01:00:00Z"), nullptr, out);
    event e;
    REQUIRE_FALSE(decode(*s.get(2), e));
    CHECK(e.received_at == at("2026-11-29T02:00:00Z"));
}

TEST_CASE("scans filter by school, district, type prefix and time", "[store]") {
    temp_dir d;
    store s({d.path()});
    batch_output out;
    auto a = readings(3, "420502K001");
    s.append(a, at("2026-11-29T01:00:00Z"), nullptr, out);
    auto b = readings(2, "420503P001");
    s.append(b, at("2026-11-29T02:00:00Z"), nullptr, out);
    std::vector<event> c{sample_hazard("420502K002")};
    c[0].district = "420502";
    s.append(c, at("2026-11-29T03:00:00Z"), nullptr, out);

    scan_filter f;
    f.school = "420502K001";
    CHECK(offsets(s, f) == std::vector<std::uint64_t>{1, 2, 3});
    f = {};
    f.district = "420502";
    CHECK(offsets(s, f) == std::vector<std::uint64_t>{1, 2, 3, 6});
    f = {};
    f.type_prefix = "hazard.";
    CHECK(offsets(s, f) == std::vector<std::uint64_t>{6});
    f = {};
    f.from_time = at("2026-11-29T01:30:00Z");
    f.to_time = at("2026-11-29T02:00:00Z");
    CHECK(offsets(s, f) == std::vector<std::uint64_t>{4, 5});
    f = {};
    f.from = 2;
    f.to = 4;
    CHECK(offsets(s, f) == std::vector<std::uint64_t>{2, 3, 4});
    f = {};
    f.district = "420502";
    f.from = 3;
    CHECK(offsets(s, f) == std::vector<std::uint64_t>{3, 6});
}

TEST_CASE("a scan stops at max and resumes from the returned offset", "[store]") {
    temp_dir d;
    store s({d.path()});
    batch_output out;
    auto ev = readings(10000);
    s.append(ev, at("2026-11-29T01:00:00Z"), nullptr, out);
    scan_filter f;
    std::vector<std::uint64_t> seen;
    while (f.from <= s.head()) {
        f.from = s.scan(f, 777, [&](std::uint64_t off, std::string_view) {
            seen.push_back(off);
            return true;
        });
    }
    REQUIRE(seen.size() == 10000);
    for (std::size_t i = 0; i < seen.size(); ++i)
        CHECK(seen[i] == i + 1);
}

TEST_CASE("the store reopens with its head, chain and dedup intact", "[store]") {
    temp_dir d;
    auto ev = readings(4);
    {
        store s({d.path()});
        batch_output out;
        s.append(ev, at("2026-11-29T01:00:00Z"), nullptr, out);
    }
    store s({d.path()});
    CHECK(s.head() == 4);
    CHECK(s.find(ev[2].id) == 3u);
    std::vector<event> again{ev[0], sample_reading("420502K001", 50)};
    batch_output out;
    s.append(again, at("2026-11-29T01:00:01Z"), nullptr, out);
    CHECK(out.results[0].what == wire::outcome::duplicate);
    CHECK(out.results[1].offset == 5);
    CHECK(s.verify().ok);
    CHECK(s.verify().checked == 5);
}

TEST_CASE("the map grows when full instead of failing", "[store]") {
    temp_dir d;
    store_options o{d.path()};
    o.initial_map_size = 256 * 1024;
    store s(o);
    for (int round = 0; round < 20; ++round) {
        auto ev = readings(500);
        batch_output out;
        s.append(ev, at("2026-11-29T01:00:00Z"), nullptr, out);
    }
    CHECK(s.head() == 10000);
    CHECK(s.stats().map_bytes > 256 * 1024);
    CHECK(s.verify().ok);
}

TEST_CASE("verify finds an edited record, a deleted record and a truncated tail", "[store]") {
    temp_dir d;
    {
        store s({d.path()});
        auto ev = readings(10);
        batch_output out;
        s.append(ev, at("2026-11-29T01:00:00Z"), nullptr, out);
        CHECK(s.verify().ok);
    }
    auto tamper = [&](auto&& f) {
        lmdb::env env(d.path(), 16, 1 << 30);
        lmdb::txn t(env);
        auto dbi = lmdb::open_dbi(t, "events", 0);
        f(t, dbi);
        t.commit();
    };
    SECTION("edited") {
        tamper([](lmdb::txn& t, MDB_dbi dbi) {
            auto key = lmdb::be64(4);
            std::string v(*lmdb::get(t, dbi, key));
            v[v.size() - 3] ^= 1; // one bit of the reading
            lmdb::put(t, dbi, key, v);
        });
        store_options o{d.path()};
        o.read_only = true;
        auto r = store(o).verify();
        CHECK_FALSE(r.ok);
        CHECK(r.first_bad == 4);
    }
    SECTION("deleted") {
        tamper([](lmdb::txn& t, MDB_dbi dbi) { lmdb::del(t, dbi, lmdb::be64(6)); });
        store_options o{d.path()};
        o.read_only = true;
        auto r = store(o).verify();
        CHECK_FALSE(r.ok);
        CHECK(r.first_bad == 6);
    }
    SECTION("truncated") {
        tamper([](lmdb::txn& t, MDB_dbi dbi) { lmdb::del(t, dbi, lmdb::be64(10)); });
        store_options o{d.path()};
        o.read_only = true;
        auto r = store(o).verify();
        CHECK_FALSE(r.ok);
    }
    SECTION("reordered") {
        tamper([](lmdb::txn& t, MDB_dbi dbi) {
            std::string a(*lmdb::get(t, dbi, lmdb::be64(2)));
            std::string b(*lmdb::get(t, dbi, lmdb::be64(3)));
            lmdb::put(t, dbi, lmdb::be64(2), b);
            lmdb::put(t, dbi, lmdb::be64(3), a);
        });
        store_options o{d.path()};
        o.read_only = true;
        auto r = store(o).verify();
        CHECK_FALSE(r.ok);
        CHECK(r.first_bad == 2);
    }
}

TEST_CASE("a read-only store refuses a directory that is not a store", "[store]") {
    temp_dir d;
    { lmdb::env env(d.path(), 4, 1 << 20); }
    store_options o{d.path()};
    o.read_only = true;
    CHECK_THROWS_AS(store(o), error);
}

TEST_CASE("a second writer on one directory is refused, naming the directory and the holder",
          "[store]") {
    temp_dir d;
    store first({d.path()});
    try {
        store second({d.path()});
        FAIL("a second writable store opened on " << d.path());
    } catch (const error& e) {
        CHECK(e.code() == errc::io_error);
        CHECK_THAT(e.detail(), Catch::Contains(d.path()));
        CHECK_THAT(e.detail(), Catch::Contains("pid " + std::to_string(::getpid())));
    }
    // Readers take no lock: an audit runs beside the writer.
    store_options ro{d.path()};
    ro.read_only = true;
    store reader(ro);
    CHECK(reader.verify().ok);
}

TEST_CASE("the writer lock ends with the store that held it", "[store]") {
    temp_dir d;
    { store first({d.path()}); }
    store again({d.path()});
    CHECK(again.head() == 0);
}

TEST_CASE("a read-only store never creates its directory", "[store]") {
    temp_dir d;
    store_options o{d / "absent"};
    o.read_only = true;
    CHECK_THROWS(store(o));
    CHECK_FALSE(std::filesystem::exists(d / "absent"));
}

namespace {

std::shared_ptr<store_faults> faulty(store_options& o) {
    o.faults = std::make_shared<store_faults>();
    return o.faults;
}

} // namespace

TEST_CASE("a put failing mid-batch stores nothing of the batch, and the next batch commits",
          "[store]") {
    temp_dir d;
    store_options o{d.path()};
    auto faults = faulty(o);
    store s(o);
    batch_output out;
    auto first = readings(3);
    s.append(first, at("2026-11-29T01:00:00Z"), nullptr, out);
    auto before = s.stats();

    // Each event is several puts (id, record, index...): the 7th is mid-batch.
    faults->fail_at(store_faults::point::put, 7);
    auto batch = readings(5);
    batch_output failed;
    try {
        s.append(batch, at("2026-11-29T01:00:01Z"), nullptr, failed);
        FAIL("the injected put failure was not reported");
    } catch (const error& e) {
        CHECK(e.code() == errc::store_failure);
        CHECK_THAT(e.detail(), Catch::Contains("mdb_put"));
    }
    CHECK(failed.results.empty());
    CHECK(failed.stored.empty());
    CHECK(s.head() == 3);
    for (const auto& e : batch)
        CHECK_FALSE(s.find(e.id));
    CHECK(s.stats().events == before.events);
    CHECK(s.stats().by_type == before.by_type);

    // The same events again: stored now, with the offsets the failed batch would have had.
    batch_output ok;
    s.append(batch, at("2026-11-29T01:00:02Z"), nullptr, ok);
    REQUIRE(ok.results.size() == 5);
    CHECK(ok.results[0].what == wire::outcome::stored);
    CHECK(ok.results[0].offset == 4);
    CHECK(s.head() == 8);
    CHECK(s.verify().ok);
}

TEST_CASE("a failed commit stores nothing and leaves the head where it was", "[store]") {
    temp_dir d;
    store_options o{d.path()};
    auto faults = faulty(o);
    {
        store s(o);
        batch_output out;
        auto first = readings(2);
        s.append(first, at("2026-11-29T01:00:00Z"), nullptr, out);
        faults->fail_at(store_faults::point::commit, 1);
        auto batch = readings(4);
        batch_output failed;
        CHECK_THROWS_AS(s.append(batch, at("2026-11-29T01:00:01Z"), nullptr, failed), error);
        CHECK(s.head() == 2);
        auto next = readings(1);
        batch_output ok;
        s.append(next, at("2026-11-29T01:00:02Z"), nullptr, ok);
        CHECK(ok.results.at(0).offset == 3);
    }
    // On disk too, after a reopen.
    store s({d.path()});
    CHECK(s.head() == 3);
    CHECK(s.stats().events == 3);
    CHECK(s.verify().ok);
}

TEST_CASE("opening a store reads no record of the events table", "[store]") {
    temp_dir d;
    {
        store s({d.path()});
        batch_output out;
        auto ev = readings(1000);
        s.append(ev, at("2026-11-29T02:00:00Z"), nullptr, out);
    }
    store_options o{d.path()};
    auto faults = faulty(o);
    faults->fail_at(store_faults::point::event_read, 1);
    store s(o);
    CHECK(faults->reached(store_faults::point::event_read) == 0);
    CHECK(s.head() == 1000);
    // It still knows the last received_at, which never goes backwards.
    auto late = readings(1);
    batch_output out;
    s.append(late, at("2026-11-29T01:00:00Z"), nullptr, out);
    event e;
    REQUIRE_FALSE(decode(*s.get(1001), e));
    CHECK(e.received_at == at("2026-11-29T02:00:00Z"));
}

TEST_CASE("a district scan resumes inside a transaction's index record and across records",
          "[store]") {
    temp_dir d;
    store s({d.path()});
    batch_output out;
    // Three transactions, two districts interleaved in each.
    std::vector<std::uint64_t> expect;
    for (int txn = 0; txn < 3; ++txn) {
        std::vector<event> batch;
        for (int i = 0; i < 40; ++i) {
            auto school = i % 2 ? "420503P001" : "420502K001";
            batch.push_back(sample_reading(school, static_cast<std::size_t>(txn * 40 + i)));
            batch.back().district = std::string(school).substr(0, 6);
            if (i % 2 == 0) expect.push_back(static_cast<std::uint64_t>(txn * 40 + i + 1));
        }
        s.append(batch, at("2026-11-29T01:00:00Z"), nullptr, out);
    }
    scan_filter f;
    f.district = "420502";
    CHECK(offsets(s, f) == expect);
    // Seven at a time: each resumption starts in the middle of a record.
    std::vector<std::uint64_t> seen;
    while (f.from <= s.head()) {
        f.from = s.scan(f, 7, [&](std::uint64_t off, std::string_view) {
            seen.push_back(off);
            return true;
        });
    }
    CHECK(seen == expect);
    // A range that starts and ends inside transactions.
    f = {};
    f.district = "420502";
    f.from = 30;
    f.to = 85;
    std::vector<std::uint64_t> mid;
    for (auto off : expect)
        if (off >= 30 && off <= 85) mid.push_back(off);
    CHECK(offsets(s, f) == mid);
}

TEST_CASE("the chain step over an ingest-side digest equals the chain over the stored record",
          "[store]") {
    auto e = sample_reading("420502K001", 1);
    e.district = "420502";
    auto p = prepare(e);
    // What the writer does: fill in the broker's fields, then chain the digest.
    auto received = at("2026-11-29T01:00:00Z");
    patch_broker_fields(p.value.data() + 32, p.received_pos, 9, received);
    auto stored = std::string_view(p.value).substr(32);
    chain_hash prev{};
    prev[0] = 7;
    CHECK(chain_step(prev, 9, to_us(received), p.digest) == chain_next(prev, 9, stored));
    // Any change to the record, its offset or its time changes the hash.
    std::string edited(stored);
    edited.back() ^= 1;
    CHECK(chain_next(prev, 9, edited) != chain_next(prev, 9, stored));
    CHECK(chain_step(prev, 10, to_us(received), p.digest) != chain_next(prev, 9, stored));
    std::string retimed(stored);
    patch_broker_fields(retimed.data(), p.received_pos, 9, received + micros{1});
    CHECK(chain_next(prev, 9, retimed) != chain_next(prev, 9, stored));
}

TEST_CASE("a store of an older format is refused, naming both formats", "[store]") {
    temp_dir d;
    { store s({d.path()}); }
    {
        lmdb::env env(d.path(), 16, 1 << 30);
        lmdb::txn t(env);
        auto meta = lmdb::open_dbi(t, "meta", 0);
        lmdb::put(t, meta, "format", "1");
        t.commit();
    }
    try {
        store s({d.path()});
        FAIL("a format 1 store was opened");
    } catch (const error& e) {
        CHECK(e.code() == errc::unsupported_version);
        CHECK_THAT(e.detail(), Catch::Contains("format 1") && Catch::Contains("format 2"));
    }
}

TEST_CASE("the broker and pingan verify refuse a store of an older format, say what to do, and "
          "change nothing in its folder",
          "[store]") {
    temp_dir d;
    std::string data = d / "store";
    {
        store_options o;
        o.path = data;
        store s(o);
        std::vector<event> batch{sample_hazard(), sample_reading("420502K001", 1)};
        batch_output out;
        s.append(batch, at("2026-09-01T02:00:00Z"), nullptr, out);
        REQUIRE(out.stored.size() == 2);
    }
    {
        lmdb::env env(data, 16, 1 << 30);
        lmdb::txn t(env);
        auto meta = lmdb::open_dbi(t, "meta", 0);
        lmdb::put(t, meta, "format", "1");
        t.commit();
    }
    // What the folder holds: every file's size, and the records' file byte for byte.
    auto files = [&] {
        std::map<std::string, std::uintmax_t> m;
        for (const auto& e : std::filesystem::directory_iterator(data))
            m[e.path().filename().string()] = e.file_size();
        return m;
    };
    auto before = files();
    auto bytes = read_file(data + "/data.mdb");
    auto mtime = std::filesystem::last_write_time(data + "/data.mdb");

    auto says_what_to_do = [&](const std::string& text) {
        INFO(text);
        CHECK(text.find(data) != std::string::npos);
        CHECK(text.find("holds a store of format 1") != std::string::npos);
        CHECK(text.find("reads format 2 only") != std::string::npos);
        CHECK(text.find("nothing in it was changed") != std::string::npos);
        CHECK(text.find("run the version that wrote it") != std::string::npos);
    };
    {
        process broker(broker_argv(data), {}, d / "broker.err");
        CHECK(broker.wait() == 2);
        says_what_to_do(read_file(d / "broker.err"));
    }
    {
        process verify({std::string(PINGAN_BIN_DIR) + "/pingan", "verify", "--data", data}, {},
                       d / "verify.err");
        auto out = verify.lines(std::chrono::seconds(30));
        CHECK(verify.wait() == 2);
        std::string text = read_file(d / "verify.err");
        for (const auto& l : out)
            text += l + "\n";
        says_what_to_do(text);
    }
    CHECK(files() == before);
    CHECK(std::filesystem::last_write_time(data + "/data.mdb") == mtime);
    CHECK(read_file(data + "/data.mdb") == bytes);
}
