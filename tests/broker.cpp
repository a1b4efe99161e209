// Black-box tests of real pingan-broker processes on 127.0.0.1 ephemeral ports.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "feed_handshake.hpp"

#include "support.hpp"
#include <zmq_addon.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

std::vector<event> readings(std::size_t n, std::size_t start = 0,
                            const std::string& school = "420502K001") {
    std::vector<event> v;
    for (std::size_t i = 0; i < n; ++i)
        v.push_back(sample_reading(school, start + i));
    return v;
}

// Every stored record, by offset.
std::map<std::uint64_t, std::string> replay_all(zmq::context_t& ctx, const std::string& query,
                                                replay_request r = {}) {
    query_client q(ctx, query);
    std::map<std::uint64_t, std::string> out;
    q.replay(r, [&](std::uint64_t off, std::string_view b) {
        out.emplace(off, std::string(b));
        return true;
    });
    return out;
}

// Stores a probe event for confirm_feed (a reading of 420502K001, whose
// sensor number no test's readings reach). Returns: its offset.
std::uint64_t probe(ingest_client& pub) {
    static std::size_t n = 1000000;
    auto r = pub.publish(readings(1, n++));
    if (r.results.empty() || r.results[0].what != wire::outcome::stored)
        throw std::runtime_error("a probe event was not stored");
    return r.results[0].offset;
}

} // namespace

TEST_CASE("published events replay byte for byte as stored and as fed live", "[broker]") {
    temp_dir d;
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    feed_client feed(ctx, b.feed);
    feed.subscribe("t/");
    ingest_client pub(ctx, b.ingest);
    // The events follow the probes that confirmed the subscription.
    auto base = confirm_feed({&feed}, [&] { return probe(pub); });
    auto ev = readings(50);
    ev.push_back(sample_hazard());
    auto reply = pub.publish(ev);
    REQUIRE(reply.results.size() == ev.size());
    for (std::size_t i = 0; i < ev.size(); ++i) {
        CHECK(reply.results[i].what == wire::outcome::stored);
        CHECK(reply.results[i].offset == base + i + 1);
        CHECK(reply.results[i].id == ev[i].id);
    }
    replay_request after_probes;
    after_probes.from = base + 1;
    auto stored = replay_all(ctx, b.query, after_probes);
    REQUIRE(stored.size() == ev.size());
    for (std::size_t i = 0; i < ev.size(); ++i) {
        event back;
        REQUIRE_FALSE(decode(stored[base + i + 1], back));
        // What was published, plus exactly the fields the broker assigns.
        auto expect = ev[i];
        expect.offset = base + i + 1;
        expect.received_at = back.received_at;
        expect.district = "420502";
        expect.actor = "anonymous";
        CHECK(encode(expect) == stored[base + i + 1]);
    }
    for (std::size_t i = 0; i < ev.size(); ++i) {
        auto m = feed.receive(std::chrono::seconds(5));
        REQUIRE(m);
        CHECK(m->offset == base + i + 1);
        CHECK(m->bytes == stored[m->offset]);
    }
}

TEST_CASE("a resend of an acknowledged id is stored once", "[broker]") {
    temp_dir d;
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    auto ev = readings(10);
    auto first = pub.publish(ev);
    auto second = pub.publish(ev);
    for (std::size_t i = 0; i < ev.size(); ++i) {
        CHECK(second.results[i].what == wire::outcome::duplicate);
        CHECK(second.results[i].offset == first.results[i].offset);
    }
    query_client q(ctx, b.query);
    CHECK(q.stats()["head"] == 10);
}

TEST_CASE("each bad event gets its own nack and the good ones in the batch are stored",
          "[broker]") {
    temp_dir d;
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    auto good = sample_hazard();
    auto unknown = sample_hazard("999999X999");
    auto bad_utf8 = sample_hazard();
    std::get<hazard_reported>(bad_utf8.body).description = "坏\xff";
    std::vector<std::string> frames{encode(good), "garbage frame", encode(unknown),
                                    encode(bad_utf8), std::string(70000, 'x')};
    pub.send(frames, false, "t1");
    auto r = pub.receive(std::chrono::seconds(10));
    REQUIRE(r);
    REQUIRE(r->results.size() == 5);
    CHECK(r->results[0].what == wire::outcome::stored);
    CHECK(r->results[1].code == errc::undecodable);
    CHECK(r->results[2].code == errc::unknown_school);
    CHECK(r->results[3].code == errc::invalid_utf8);
    CHECK(r->results[3].message == "body.description: invalid UTF-8 at byte 3");
    CHECK(r->results[4].code == errc::message_too_large);
}

TEST_CASE("a client sending garbage does not stop another from publishing", "[broker]") {
    temp_dir d;
    broker_process b(d / "store");
    std::atomic<bool> stop{false};
    std::atomic<int> nacks{0};
    std::thread abuser([&] {
        zmq::context_t ctx(1);
        ingest_client bad(ctx, b.ingest);
        std::vector<std::string> junk{"\x01\x01junk", std::string(100000, '\xff')};
        auto bad_json = R"({"type":"hazard.reported","school":"420502K001","status":"Actual",)"
                        R"("occurred_at":"2026-11-29T01:00:00Z","body":{"hazard_id":"x"}})";
        std::vector<std::string> js{bad_json, "{{{{"};
        for (int i = 0; !stop && i < 100000; ++i) {
            if (i % 3 == 0) {
                bad.socket().send(zmq::str_buffer("NOPE"), zmq::send_flags::none);
            } else {
                bad.send(i % 3 == 1 ? std::span<const std::string>(junk)
                                    : std::span<const std::string>(js),
                         i % 3 == 2, "bad");
            }
            while (auto r = bad.receive(std::chrono::milliseconds(0)))
                nacks += r->refused ? 1 : static_cast<int>(r->results.size());
        }
    });
    zmq::context_t ctx(1);
    ingest_client good(ctx, b.ingest);
    std::size_t stored = 0;
    for (int round = 0; round < 20; ++round) {
        auto r = good.publish(readings(500, static_cast<std::size_t>(round) * 500),
                              std::chrono::seconds(10), 1);
        for (auto& x : r.results)
            stored += x.what == wire::outcome::stored;
    }
    stop = true;
    abuser.join();
    CHECK(stored == 10000);
    CHECK(nacks > 0);
    query_client q(ctx, b.query);
    CHECK(q.stats()["head"] == 10000);
}

TEST_CASE("oversize batches and unknown commands get an ERR naming the limit", "[broker]") {
    temp_dir d;
    std::string cfg = d / "broker.yaml";
    { std::ofstream(cfg) << "limits:\n  max_batch: 5\n  max_message_bytes: 4096\n"; }
    broker_process b(d / "store", {"--config", cfg});
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    std::vector<std::string> six(6, encode(sample_hazard()));
    pub.send(six, false, "a");
    auto r = pub.receive(std::chrono::seconds(5));
    REQUIRE(r);
    CHECK(r->refused);
    CHECK(r->code == errc::batch_too_large);
    CHECK(r->message == "6 events in one request; the limit is 5");
    std::vector<std::string> big{std::string(5000, 'x')};
    pub.send(big, false, "b");
    r = pub.receive(std::chrono::seconds(5));
    REQUIRE(r);
    CHECK(r->code == errc::message_too_large);
    pub.socket().send(zmq::str_buffer("HELLO"), zmq::send_flags::sndmore);
    pub.socket().send(zmq::str_buffer("c"), zmq::send_flags::none);
    r = pub.receive(std::chrono::seconds(5));
    REQUIRE(r);
    CHECK(r->code == errc::bad_command);
}

TEST_CASE("kill -9 under pipelined load loses no acknowledged event and leaves no gap",
          "[broker]") {
    temp_dir d;
    std::map<event_id, std::uint64_t> acked;
    std::size_t sent = 0;
    {
        broker_process b(d / "store");
        zmq::context_t ctx(1);
        ingest_client pub(ctx, b.ingest);
        // Keep many requests in flight, then kill the broker mid-stream.
        std::map<std::string, std::vector<event>> inflight;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        bool killed = false;
        std::uint64_t tag_no = 0;
        while (std::chrono::steady_clock::now() < deadline) {
            while (!killed && inflight.size() < 50) {
                auto ev = readings(100, sent);
                sent += ev.size();
                std::vector<std::string> frames;
                for (auto& e : ev)
                    frames.push_back(encode(e));
                auto tag = "k" + std::to_string(tag_no++);
                pub.send(frames, false, tag);
                inflight[tag] = std::move(ev);
            }
            auto r = pub.receive(std::chrono::milliseconds(killed ? 200 : 2000));
            if (!r) {
                if (killed) break;
                continue;
            }
            auto& ev = inflight[r->tag];
            for (std::size_t i = 0; i < r->results.size(); ++i)
                if (r->results[i].what != wire::outcome::rejected)
                    acked[ev[i].id] = r->results[i].offset;
            inflight.erase(r->tag);
            if (!killed && acked.size() >= 20000) {
                b.proc->signal(SIGKILL);
                killed = true;
            }
        }
        REQUIRE(killed);
        CHECK(b.proc->wait() == 128 + SIGKILL);
    }
    REQUIRE(acked.size() >= 20000);
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    auto stored = replay_all(ctx, b.query);
    // No gap: offsets 1..head, each once.
    std::uint64_t expect = 1;
    std::map<event_id, std::uint64_t> by_id;
    for (auto& [off, bytes] : stored) {
        CHECK(off == expect++);
        event e;
        REQUIRE_FALSE(decode(bytes, e));
        CHECK(by_id.emplace(e.id, off).second); // each id once
    }
    std::size_t missing = 0;
    for (auto& [id, off] : acked) {
        auto it = by_id.find(id);
        if (it == by_id.end() || it->second != off) ++missing;
    }
    CHECK(missing == 0);
    CHECK(stored.size() <= sent);
    // The restarted broker answers resends of acknowledged ids as duplicates.
    ingest_client pub(ctx, b.ingest);
    auto ev = readings(1);
    ev[0].id = acked.begin()->first;
    // Same id, different content: still the original's offset, never stored again.
    auto r = pub.publish(ev);
    CHECK(r.results[0].what == wire::outcome::duplicate);
    CHECK(r.results[0].offset == acked.begin()->second);
    CHECK(std::system(("'" + std::string(PINGAN_BIN_DIR) + "/pingan' verify --data '" +
                       d / "store" + "' > /dev/null")
                          .c_str()) == 0);
}

TEST_CASE("a stalled subscriber neither slows ingest nor misses anything after backfill",
          "[broker]") {
    temp_dir d;
    std::string cfg = d / "broker.yaml";
    { std::ofstream(cfg) << "limits:\n  feed_hwm: 100\n"; }
    broker_process b(d / "store", {"--config", cfg});
    zmq::context_t ctx(1);
    feed_client slow(ctx, b.feed);
    slow.socket().set(zmq::sockopt::rcvhwm, 100);
    slow.subscribe("t/");
    ingest_client pub(ctx, b.ingest);
    // The load follows the probes that confirmed the subscription.
    auto base = confirm_feed({&slow}, [&] { return probe(pub); });
    const std::size_t total = 20000;
    for (std::size_t i = 0; i < total; i += 1000) {
        auto r = pub.publish(readings(1000, i));
        for (auto& x : r.results)
            REQUIRE(x.what == wire::outcome::stored);
    }
    // Now read: the feed dropped most messages; every gap is visible by offset.
    std::set<std::uint64_t> seen;
    std::uint64_t last = base, gaps = 0;
    query_client q(ctx, b.query);
    while (auto m = slow.receive(std::chrono::milliseconds(500))) {
        if (m->offset > last + 1) {
            ++gaps;
            replay_request r;
            r.from = last + 1;
            r.to = m->offset - 1;
            q.replay(r, [&](std::uint64_t off, std::string_view) {
                seen.insert(off);
                return true;
            });
        }
        seen.insert(m->offset);
        last = m->offset;
    }
    if (last < base + total) {
        replay_request r;
        r.from = last + 1;
        q.replay(r, [&](std::uint64_t off, std::string_view) {
            seen.insert(off);
            return true;
        });
    }
    CHECK(gaps > 0);
    CHECK(seen.size() == total);
    CHECK(*seen.begin() == base + 1);
    CHECK(*seen.rbegin() == base + total);
}

TEST_CASE("a packed replay gives the offsets and bytes of the binary one, across frames, credit "
          "windows, limits and filters",
          "[broker]") {
    temp_dir d;
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    // More than one packed frame (1,024 events) and than one query-thread turn (512).
    for (int k = 0; k < 5; ++k) {
        auto batch = readings(500, static_cast<std::size_t>(k) * 500);
        auto other = readings(100, static_cast<std::size_t>(k) * 100, "420503K001");
        batch.insert(batch.end(), other.begin(), other.end());
        REQUIRE(pub.publish(batch).results.size() == batch.size());
    }
    auto run = [&](replay_request r) { return replay_all(ctx, b.query, r); };
    replay_request binary;
    binary.packed = false;
    auto all = run(binary);
    REQUIRE(all.size() == 3000);
    CHECK(all.begin()->first == 1);
    CHECK(all.rbegin()->first == 3000);
    replay_request packed;
    CHECK(run(packed) == all);
    for (std::uint64_t credit : {1ULL, 7ULL, 1000ULL, 5000ULL}) {
        replay_request r;
        r.credit = credit;
        INFO("credit " << credit);
        CHECK(run(r) == all);
    }
    replay_request some;
    some.from = 700;
    some.limit = 1111;
    binary.from = 700;
    binary.limit = 1111;
    auto part = run(some);
    CHECK(part.size() == 1111);
    CHECK(part == run(binary));
    replay_request school;
    school.school = "420503K001";
    auto theirs = run(school);
    CHECK(theirs.size() == 500);
    binary = {};
    binary.packed = false;
    binary.school = "420503K001";
    CHECK(theirs == run(binary));
}

TEST_CASE("replay honours credit: the broker never sends more than granted", "[broker]") {
    temp_dir d;
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    pub.publish(readings(100));
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(b.query);
    s.send(zmq::str_buffer("REPLAY"), zmq::send_flags::sndmore);
    s.send(zmq::str_buffer("x"), zmq::send_flags::sndmore);
    s.send(zmq::str_buffer(R"({"from":1,"credit":10})"), zmq::send_flags::none);
    auto count = [&](std::chrono::milliseconds wait) {
        int n = 0;
        std::vector<zmq::message_t> f;
        zmq::pollitem_t it{s.handle(), 0, ZMQ_POLLIN, 0};
        while (zmq::poll(&it, 1, wait) > 0) {
            f.clear();
            (void)zmq::recv_multipart(s, std::back_inserter(f));
            if (f[0].to_string_view() == "EVT") n += static_cast<int>(f.size() - 2) / 2;
        }
        return n;
    };
    CHECK(count(std::chrono::milliseconds(500)) == 10);
    s.send(zmq::str_buffer("CREDIT"), zmq::send_flags::sndmore);
    s.send(zmq::str_buffer("x"), zmq::send_flags::sndmore);
    s.send(zmq::str_buffer(R"({"credit":25})"), zmq::send_flags::none);
    CHECK(count(std::chrono::milliseconds(500)) == 25);
}

TEST_CASE("replay filters by school, district, type and time", "[broker]") {
    temp_dir d;
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    pub.publish(readings(3, 0, "420502K001"));
    auto other = readings(2, 0, "420503P001");
    if (!yichang().find("420503P001")) other = readings(2, 0, yichang().schools().back().id);
    pub.publish(other);
    pub.publish(std::vector<event>{sample_hazard("420502K002")});
    replay_request r;
    r.school = "420502K001";
    CHECK(replay_all(ctx, b.query, r).size() == 3);
    r = {};
    r.district = "420502";
    CHECK(replay_all(ctx, b.query, r).size() == 4);
    r = {};
    r.type = "hazard.";
    auto h = replay_all(ctx, b.query, r);
    REQUIRE(h.size() == 1);
    CHECK(h.begin()->first == 6);
    r = {};
    r.to_time = "2000-01-01T00:00:00Z";
    CHECK(replay_all(ctx, b.query, r).empty());
    r = {};
    r.json = true;
    r.limit = 2;
    auto js = replay_all(ctx, b.query, r);
    REQUIRE(js.size() == 2);
    CHECK(json::parse(js[1])["offset"] == 1);
}

TEST_CASE("sigterm drains in-flight work, acknowledges it, and exits 0", "[broker]") {
    temp_dir d;
    std::size_t acked = 0;
    {
        broker_process b(d / "store");
        zmq::context_t ctx(1);
        ingest_client pub(ctx, b.ingest);
        std::set<std::string> tags;
        for (int i = 0; i < 40; ++i) {
            auto ev = readings(250, static_cast<std::size_t>(i) * 250);
            std::vector<std::string> frames;
            for (auto& e : ev)
                frames.push_back(encode(e));
            pub.send(frames, false, "d" + std::to_string(i));
            tags.insert("d" + std::to_string(i));
        }
        b.proc->signal(SIGTERM);
        while (auto r = pub.receive(std::chrono::seconds(3))) {
            tags.erase(r->tag);
            for (auto& x : r->results)
                acked += x.what == wire::outcome::stored;
        }
        CHECK(b.proc->wait() == 0);
    }
    broker_process b(d / "store");
    zmq::context_t ctx(1);
    auto stored = replay_all(ctx, b.query);
    CHECK(stored.size() >= acked);
}

namespace {

// Runs a program; its stdout and stderr together, and its exit code.
std::pair<int, std::string> run_merged(const std::vector<std::string>& argv) {
    std::string cmd = "exec";
    for (const auto& a : argv)
        cmd += " '" + a + "'";
    process p({"/bin/sh", "-c", cmd + " 2>&1"});
    std::string out;
    for (const auto& l : p.lines(std::chrono::seconds(60)))
        out += l + "\n";
    return {p.wait(), out};
}

std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST_CASE("a second broker on the same data directory refuses to start and names the holder",
          "[broker]") {
    temp_dir d;
    broker_process first(d / "store");
    auto [code, out] =
        run_merged({std::string(PINGAN_BIN_DIR) + "/pingan-broker", "--data", d / "store",
                    "--ingest", "tcp://127.0.0.1:*", "--feed", "tcp://127.0.0.1:*", "--query",
                    "tcp://127.0.0.1:*", "--registry", source_path("data/schools.csv"),
                    "--districts", source_path("data/districts.csv"), "--log-level", "warn"});
    CHECK(code != 0);
    CHECK(out.find("listening") == std::string::npos);
    CHECK_THAT(out, Catch::Contains(d / "store"));
    CHECK_THAT(out, Catch::Contains("pid " + std::to_string(first.proc->pid())));

    // The first broker still serves, and its acks are its own.
    zmq::context_t ctx(1);
    ingest_client pub(ctx, first.ingest);
    auto ev = readings(3);
    auto r = pub.publish(ev);
    REQUIRE(r.results.size() == 3);
    CHECK(r.results[2].offset == 3);
}

TEST_CASE("kill -9 releases the data directory for the next broker", "[broker]") {
    temp_dir d;
    {
        broker_process first(d / "store");
        zmq::context_t ctx(1);
        ingest_client pub(ctx, first.ingest);
        auto ev = readings(2);
        REQUIRE(pub.publish(ev).results.size() == 2);
        first.proc->signal(SIGKILL);
        first.proc->wait();
    }
    broker_process second(d / "store");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, second.ingest);
    auto ev = readings(1, 10);
    auto r = pub.publish(ev);
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].offset == 3);
}

TEST_CASE("read-only tools work on the data directory of a running broker and write nothing",
          "[broker]") {
    temp_dir d;
    auto rules = source_path("config/rules/yichang-default.yaml");
    broker_process b(d / "store", {"--rules", rules});
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    std::vector<event> ev{sample_hazard(), sample_reading("420502K001", 1)};
    auto r = pub.publish(ev);
    REQUIRE(r.results.size() == 2);
    REQUIRE(r.results[0].what == wire::outcome::stored);
    // A probe: once its ack is back, the hazard and everything it derived are committed.
    auto probe = readings(1, 100);
    REQUIRE(pub.publish(probe).results.at(0).what == wire::outcome::stored);

    auto data = d / "store/data.mdb";
    auto before = bytes_of(data);
    struct ::stat st_before {};
    REQUIRE(::stat(data.c_str(), &st_before) == 0);
    auto pingan = std::string(PINGAN_BIN_DIR) + "/pingan";

    auto [list_code, list] = run_merged({pingan, "incidents", "list", "--data", d / "store"});
    CHECK(list_code == 0);
    CHECK_THAT(list, Catch::Contains("HZ-0001"));
    auto [replay_code, replay] =
        run_merged({pingan, "rules", "replay", "--rules", rules, "--data", d / "store"});
    CHECK(replay_code == 0);
    auto [verify_code, verify] = run_merged({pingan, "verify", "--data", d / "store"});
    CHECK(verify_code == 0);
    CHECK_THAT(verify, Catch::Contains("\"ok\":true"));

    struct ::stat st_after {};
    REQUIRE(::stat(data.c_str(), &st_after) == 0);
    CHECK(st_after.st_mtim.tv_sec == st_before.st_mtim.tv_sec);
    CHECK(st_after.st_mtim.tv_nsec == st_before.st_mtim.tv_nsec);
    CHECK(bytes_of(data) == before);
}

TEST_CASE("the broker says at start which allocator serves it", "[broker]") {
    temp_dir d;
    auto log = d / "broker.log";
    { broker_process b(d / "store", {}, log, "info"); }
    auto text = read_file(log);
#ifdef PINGAN_MIMALLOC
    // Linked with mimalloc (PINGAN_MIMALLOC): malloc must really be mimalloc's.
    CHECK(text.find("memory allocator: mimalloc ") != std::string::npos);
    CHECK(text.find("but malloc is another's") == std::string::npos);
#else
    // Without it (or under the sanitizers, which bring their own), nothing to say.
    CHECK(text.find("memory allocator") == std::string::npos);
    CHECK(text.find("registry: ") != std::string::npos); // the log was read
#endif
}
