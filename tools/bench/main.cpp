// pingan-bench: durable publish throughput, ack latency and replay speed of the
// broker, each beside a raw baseline measured in the same run.
//
// The raw baseline is the least a durable ZeroMQ + LMDB service can do: a
// ROUTER that drains what arrived, puts each frame in LMDB under a counter,
// commits (fsync) and acks, with no decoding, validation, indexes, hash chain
// or feed. The broker runs in-process on the same sockets and disk. Machines
// here are noisy, so the ratios are the result, not the absolute numbers.
#include "broker/engine/engine_processor.hpp"
#include "broker/engine/rules.hpp"
#include "broker/server/broker.hpp"
#include "common/allocator.hpp"
#include "common/client.hpp"
#include "common/lmdb.hpp"
#include "common/shipped.hpp"
#include "common/version.hpp"
#include "tools/bench/engine_bench.hpp"
#include "tools/bench/redis_peer.hpp"
#include "tools/bench/restart_bench.hpp"

#include <CLI/CLI.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <sys/resource.h>
#include <time.h>

using namespace pingan;
namespace fs = std::filesystem;

namespace {

using steady = std::chrono::steady_clock;

struct load_result {
    double events_per_s = 0;
    double p50_ms = 0, p99_ms = 0;
    std::size_t events = 0;
    // CPU per event (µs): the whole process, and the server side alone (the
    // process less the threads that make the load and read the feed).
    double process_cpu_us = 0, server_cpu_us = 0;
};

double process_cpu() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return sec(u.ru_utime) + sec(u.ru_stime);
}

double thread_cpu() {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

// ~300-byte events from schools of the registry.
std::vector<std::string> make_events(const registry& reg, std::size_t n) {
    std::vector<std::string> out;
    out.reserve(n);
    auto t0 = *parse_utc("2026-11-29T01:00:00Z");
    for (std::size_t i = 0; i < n; ++i) {
        const auto& s = reg.schools()[i % reg.size()];
        event e;
        e.id = new_event_id(t0 + micros{static_cast<std::int64_t>(i)});
        e.school = s.id;
        e.source = "pingan-canteen/" + s.district_code + "/cold-room-sensor-gateway-" +
                   std::to_string(i % 16);
        e.occurred_at = t0 + micros{static_cast<std::int64_t>(i)};
        e.status = status::actual;
        e.severity = severity::minor;
        food_temp_reading r;
        r.canteen_id = s.id + "-canteen-main-kitchen-building-east-wing-ground-floor";
        r.sensor_id = "cold-room-01-temperature-probe-" + std::to_string(i % 8);
        r.zone = food_zone::cold_storage;
        r.celsius = 3.5 + static_cast<double>(i % 10) / 10.0;
        e.body = r;
        out.push_back(encode(e));
    }
    return out;
}

// Publishes `events` one per request with up to `window` requests in flight,
// timing each from send to ack.
load_result drive(const std::string& endpoint, const std::vector<std::string>& events,
                  std::size_t window, const std::atomic<double>* other_client_cpu = nullptr) {
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::sndhwm, 0);
    s.set(zmq::sockopt::rcvhwm, 0);
    s.connect(endpoint);
    std::vector<steady::time_point> sent_at(events.size());
    std::vector<double> lat;
    lat.reserve(events.size());
    std::size_t next = 0, acked = 0;
    auto start = steady::now();
    std::vector<zmq::message_t> f;
    double cpu0 = process_cpu(), mine0 = thread_cpu();
    double other0 = other_client_cpu ? other_client_cpu->load() : 0;
    while (acked < events.size()) {
        while (next < events.size() && next - acked < window) {
            std::uint64_t tag = next;
            sent_at[next] = steady::now();
            s.send(zmq::str_buffer("PUB"), zmq::send_flags::sndmore);
            s.send(zmq::buffer(&tag, sizeof tag), zmq::send_flags::sndmore);
            s.send(zmq::buffer(events[next]), zmq::send_flags::none);
            ++next;
        }
        f.clear();
        if (!zmq::recv_multipart(s, std::back_inserter(f))) continue;
        if (f.size() < 3 || f[1].size() != 8) throw error(errc::bad_command, "bad ack");
        std::uint64_t tag;
        std::memcpy(&tag, f[1].data(), 8);
        auto res = wire::decode_result(f[2].to_string_view());
        if (!res || res->what == wire::outcome::rejected)
            throw error(errc::internal, "event refused: " + (res ? res->message : "?"));
        lat.push_back(
            std::chrono::duration<double, std::milli>(steady::now() - sent_at[tag]).count());
        ++acked;
    }
    auto secs = std::chrono::duration<double>(steady::now() - start).count();
    double cpu = process_cpu() - cpu0, mine = thread_cpu() - mine0;
    double other = other_client_cpu ? other_client_cpu->load() - other0 : 0;
    std::sort(lat.begin(), lat.end());
    load_result r;
    r.events = events.size();
    r.process_cpu_us = cpu * 1e6 / static_cast<double>(events.size());
    r.server_cpu_us = (cpu - mine - other) * 1e6 / static_cast<double>(events.size());
    r.events_per_s = static_cast<double>(events.size()) / secs;
    r.p50_ms = lat[lat.size() / 2];
    r.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
    return r;
}

// Which allocator both sides ran with, so that figures of different builds
// are compared knowingly.
std::string allocator_name() {
    auto a = current_allocator();
    return a.name + (a.linked_unused ? " (linked, not in use)" : "");
}

// The raw baseline server: ROUTER, drain, LMDB put per frame, commit, ack.
class raw_server {
  public:
    explicit raw_server(const std::string& dir)
        : env_(dir, 2, std::size_t{8} << 30), sock_(ctx_, zmq::socket_type::router) {
        lmdb::txn t(env_);
        dbi_ = lmdb::open_dbi(t, "events", MDB_CREATE);
        t.commit();
        sock_.set(zmq::sockopt::linger, 0);
        sock_.set(zmq::sockopt::sndhwm, 0);
        sock_.set(zmq::sockopt::rcvhwm, 0);
        sock_.bind("tcp://127.0.0.1:*");
        endpoint_ = sock_.get(zmq::sockopt::last_endpoint);
        thread_ = std::thread([this] { run(); });
    }
    ~raw_server() {
        stop_ = true;
        thread_.join();
    }
    const std::string& endpoint() const { return endpoint_; }
    lmdb::env& env() { return env_; }
    MDB_dbi dbi() const { return dbi_; }

  private:
    void run() {
        std::vector<std::vector<zmq::message_t>> batch;
        zmq::pollitem_t it{sock_.handle(), 0, ZMQ_POLLIN, 0};
        while (!stop_) {
            if (zmq::poll(&it, 1, std::chrono::milliseconds(50)) <= 0) continue;
            batch.clear();
            for (int k = 0; k < 20000; ++k) {
                std::vector<zmq::message_t> f;
                if (!zmq::recv_multipart(sock_, std::back_inserter(f), zmq::recv_flags::dontwait))
                    break;
                batch.push_back(std::move(f));
            }
            lmdb::txn t(env_);
            std::vector<std::uint64_t> first(batch.size());
            for (std::size_t i = 0; i < batch.size(); ++i) {
                first[i] = offset_ + 1;
                for (std::size_t j = 3; j < batch[i].size(); ++j)
                    lmdb::put(t, dbi_, lmdb::be64(++offset_), batch[i][j].to_string_view(),
                              MDB_APPEND);
            }
            t.commit();
            for (std::size_t i = 0; i < batch.size(); ++i) {
                wire::result r;
                r.offset = first[i];
                auto frame = wire::encode_result(r);
                sock_.send(batch[i][0], zmq::send_flags::sndmore);
                sock_.send(zmq::str_buffer("RES"), zmq::send_flags::sndmore);
                sock_.send(batch[i][2], zmq::send_flags::sndmore);
                sock_.send(zmq::buffer(frame), zmq::send_flags::none);
            }
        }
    }

    lmdb::env env_;
    MDB_dbi dbi_{};
    zmq::context_t ctx_{1};
    zmq::socket_t sock_;
    std::string endpoint_;
    std::uint64_t offset_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// A live-feed subscriber taking every event once (the "t/" topics), as the
// console does, on its own thread; it counts what it received.
class feed_subscriber {
  public:
    feed_subscriber(const std::string& endpoint) : sock_(ctx_, zmq::socket_type::sub) {
        sock_.set(zmq::sockopt::linger, 0);
        sock_.set(zmq::sockopt::rcvhwm, 0);
        sock_.set(zmq::sockopt::subscribe, wire::subscription("", "", ""));
        sock_.set(zmq::sockopt::rcvtimeo, 50);
        sock_.connect(endpoint);
        thread_ = std::thread([this] { run(); });
    }
    ~feed_subscriber() {
        stop_ = true;
        thread_.join();
    }
    std::uint64_t received() const { return received_.load(); }
    std::uint64_t last_offset() const { return last_.load(); }
    // This thread's CPU time so far (s), updated every 1,024 events.
    const std::atomic<double>& cpu() const { return cpu_; }

  private:
    void run() {
        std::vector<zmq::message_t> f;
        while (!stop_) {
            f.clear();
            if (!zmq::recv_multipart(sock_, std::back_inserter(f))) continue;
            if (f.size() == 3)
                if (auto off = wire::read_u64_le(f[1].to_string_view())) last_ = *off;
            if ((++received_ & 1023) == 0) cpu_ = thread_cpu();
        }
        cpu_ = thread_cpu();
    }
    zmq::context_t ctx_{1};
    zmq::socket_t sock_;
    std::atomic<std::uint64_t> received_{0}, last_{0};
    std::atomic<double> cpu_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

double raw_scan(lmdb::env& env, MDB_dbi dbi, std::size_t& n) {
    auto start = steady::now();
    lmdb::txn t(env, MDB_RDONLY);
    lmdb::cursor c(t, dbi);
    std::string_view k, v;
    std::size_t bytes = 0;
    n = 0;
    for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT)) {
        bytes += v.size();
        ++n;
    }
    auto secs = std::chrono::duration<double>(steady::now() - start).count();
    if (bytes == 0) throw error(errc::internal, "empty scan");
    return static_cast<double>(n) / secs;
}

// `packed`: many events to a frame (the default); else the binary format's
// two frames per event (docs/protocol.md).
double broker_replay(const std::string& query, std::size_t expect, bool packed = true) {
    zmq::context_t ctx(1);
    query_client q(ctx, query);
    replay_request r;
    r.credit = 20000;
    r.packed = packed;
    std::size_t n = 0, bytes = 0;
    auto start = steady::now();
    q.replay(r, [&](std::uint64_t, std::string_view b) {
        ++n;
        bytes += b.size();
        return true;
    });
    auto secs = std::chrono::duration<double>(steady::now() - start).count();
    if (n != expect)
        throw error(errc::internal, "replay returned " + std::to_string(n) + " events, expected " +
                                        std::to_string(expect));
    return static_cast<double>(n) / secs;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(errc::io_error, "cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pingan-bench: broker throughput, ack latency and replay against a raw "
                 "ZeroMQ + LMDB baseline measured in the same run"};
    app.set_version_flag("--version", pingan::version_line("pingan-bench"));
    std::size_t events = 200000, single = 2000, window = 1000;
    int rounds = 3;
    std::string dir = "/tmp", data = find_shipped("data"),
                rules_file = find_shipped("config/rules/yichang-default.yaml");
    bool json_out = false, skip_engine = false, skip_redis = false;
    std::string only; // "raw" or "broker": one side alone, for profiling
    app.add_option("--events", events, "events per pipelined run")->capture_default_str();
    app.add_option("--single", single, "events in the one-in-flight run")->capture_default_str();
    app.add_option("--window", window, "events in flight")->capture_default_str();
    app.add_option("--rounds", rounds, "alternating runs of each side; medians are reported")
        ->capture_default_str();
    app.add_option("--dir", dir, "where the stores go (removed after)")->capture_default_str();
    app.add_option("--data", data, "registry directory")->capture_default_str();
    app.add_flag("--json", json_out, "print the figures as one JSON object on the last line");
    app.add_flag("--skip-engine", skip_engine, "leave out the escalation engine figures");
    app.add_flag("--skip-redis", skip_redis, "leave out the Redis Streams peer row");
    bool sync_each = false;
    app.add_flag("--sync-each-commit", sync_each,
                 "run the broker with two fsyncs per commit and acks right after it, as before "
                 "acks followed the next commit");
    bool writer_thread = false;
    app.add_flag("--writer-thread", writer_thread,
                 "run the broker with ingest handing batches to a writer thread, as before one "
                 "thread read, committed and answered");
    app.add_option("--rules", rules_file, "rule pack for the engine figures")
        ->capture_default_str();
    app.add_option("--only", only, "run one side alone (raw or broker), for profiling; no ratios")
        ->check(CLI::IsMember({"raw", "broker"}));
    std::vector<std::string> jetstream;
    int js_replicas = 1;
    app.add_option("--jetstream", jetstream,
                   "NATS server URL (repeat for a cluster): adds a row with replication to "
                   "JetStream, a stream per round (docs/replication.md)");
    app.add_option("--jetstream-replicas", js_replicas, "replicas of the bench's streams")
        ->capture_default_str();
    std::size_t restart = 0;
    app.add_option("--restart", restart,
                   "only the restart figure: fill a store with about this many records through "
                   "the default rules, then time opening it and loading the engine's state");
    CLI11_PARSE(app, argc, argv);

    try {
        auto reg = registry::from_csv(read_text(data + "/schools.csv"),
                                      read_text(data + "/districts.csv"));
        if (restart) {
            auto root = fs::path(dir) / ("pingan-bench-" + std::to_string(::getpid()));
            fs::create_directories(root);
            auto fig = bench_restart(reg, read_text(rules_file), root.string(), restart);
            fs::remove_all(root);
            if (json_out) std::cout << fig.dump() << std::endl;
            return 0;
        }
        auto root = fs::path(dir) / ("pingan-bench-" + std::to_string(::getpid()));
        fs::create_directories(root);
        auto evs = make_events(reg, events);
        auto one = make_events(reg, single);
        std::size_t avg = 0;
        for (auto& e : evs)
            avg += e.size();
        avg /= evs.size();
        std::printf("pingan-bench: %zu events of ~%zu bytes, %zu in flight; stores in %s; "
                    "allocator %s\n",
                    events, avg, window, root.c_str(), allocator_name().c_str());

        json out = json::object();
        out["allocator"] = allocator_name();
        out["event_bytes"] = avg;
        out["events"] = events;
        out["window"] = window;
        out["rounds"] = rounds;

        // Each side runs `rounds` times, alternating, on fresh stores; the
        // median of each figure is reported, so that one noisy moment on a
        // shared machine does not decide a ratio.
        std::vector<load_result> raw_many_r, raw_one_r, br_many_r, br_one_r, rules_r, feed_r, js_r;
        std::vector<bench::peer_result> redis_r;
        std::string no_redis;
        auto redis = only.empty() && !skip_redis ? bench::find_redis_server(no_redis)
                                                 : std::optional<std::string>();
        if (skip_redis) no_redis = "--skip-redis";
        std::vector<double> raw_scan_r, replay_r, replay_binary_r;
        std::string rules_text;
        std::shared_ptr<const rules::ruleset> ruleset;
        if (!skip_engine && only != "raw") {
            rules_text = read_text(rules_file);
            auto parsed = rules::parse(rules_text);
            if (!parsed.errors.empty())
                throw error(errc::bad_config, rules_file + ": " + parsed.errors[0].text());
            ruleset = parsed.rules;
        }
        auto shared_reg = std::shared_ptr<const registry>(&reg, [](const registry*) {});
        // Probe events for the feed subscriber's handshake, distinct from the load's.
        auto probes = make_events(reg, 100);
        std::size_t feed_missed = 0;
        auto broker_run = [&](const std::string& name, processor* proc, bool singles,
                              bool feed = false, bool replicate = false) {
            system_clock clk;
            broker_options o;
            o.data_dir = (root / name).string();
            o.ingest = o.feed = o.query = "tcp://127.0.0.1:*";
            o.initial_map_size = std::size_t{8} << 30;
            o.defer_sync = !sync_each;
            o.commit_on_ingest = !writer_thread;
            if (replicate) {
                // A fresh stream for a fresh store: a stream ahead of its log refuses the start.
                auto js = std::make_shared<jetstream_config>();
                js->servers = jetstream;
                js->replicas = js_replicas;
                js->stream = "PINGAN_BENCH_" + std::to_string(::getpid()) + "_" + name;
                js->subject = "pingan.bench." + std::to_string(::getpid()) + "." + name;
                js->timeout = std::chrono::seconds(10);
                o.replication = std::move(js);
            }
            load_result r;
            {
                broker b(o, clk, reg, proc);
                b.start();
                if (singles) br_one_r.push_back(drive(b.bound().ingest, one, 1));
                if (feed) {
                    feed_subscriber sub(b.bound().feed);
                    // Handshake: the subscription is live once a probe event arrives.
                    std::size_t p = 0;
                    while (sub.received() == 0 && p < probes.size())
                        drive(b.bound().ingest, {probes[p++]}, 1);
                    if (sub.received() == 0)
                        throw error(errc::internal, "the feed subscriber received no probe");
                    auto before = sub.received();
                    r = drive(b.bound().ingest, evs, window, &sub.cpu());
                    // Wait for the feed to deliver the head (or give up after 10 s).
                    std::uint64_t head = evs.size() + p;
                    auto until = steady::now() + std::chrono::seconds(10);
                    while (sub.last_offset() < head && steady::now() < until)
                        std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    auto got = sub.received() - before;
                    feed_missed += evs.size() - std::min<std::uint64_t>(evs.size(), got);
                } else {
                    r = drive(b.bound().ingest, evs, window);
                }
                if (singles) {
                    replay_r.push_back(broker_replay(b.bound().query, one.size() + evs.size()));
                    replay_binary_r.push_back(
                        broker_replay(b.bound().query, one.size() + evs.size(), false));
                }
                b.stop();
                b.wait();
            }
            fs::remove_all(root / name);
            return r;
        };
        for (int round = 0; round < rounds; ++round) {
            auto tag = std::to_string(round);
            if (only != "broker") {
                {
                    raw_server raw((root / ("raw" + tag)).string());
                    raw_one_r.push_back(drive(raw.endpoint(), one, 1));
                    raw_many_r.push_back(drive(raw.endpoint(), evs, window));
                    std::size_t n;
                    raw_scan_r.push_back(raw_scan(raw.env(), raw.dbi(), n));
                }
                fs::remove_all(root / ("raw" + tag));
            }
            if (only != "raw") br_many_r.push_back(broker_run("broker" + tag, nullptr, true));
            if (only.empty()) feed_r.push_back(broker_run("feed" + tag, nullptr, false, true));
            if (!jetstream.empty() && only.empty())
                js_r.push_back(broker_run("js" + tag, nullptr, false, false, true));
            if (ruleset) {
                engine_processor proc(ruleset, shared_reg);
                rules_r.push_back(broker_run("rules" + tag, &proc, false));
            }
            if (redis)
                redis_r.push_back(
                    bench::run_redis_peer(*redis, (root / ("redis" + tag)).string(), evs, window));
        }
        auto mid = [](std::vector<double> x) {
            if (x.empty()) return 0.0;
            std::sort(x.begin(), x.end());
            return x[x.size() / 2];
        };
        auto median = [&](const std::vector<load_result>& v) {
            if (v.empty()) return load_result{};
            std::vector<double> a, b, c, d, e;
            for (auto& r : v) {
                a.push_back(r.events_per_s);
                b.push_back(r.p50_ms);
                c.push_back(r.p99_ms);
                d.push_back(r.process_cpu_us);
                e.push_back(r.server_cpu_us);
            }
            return load_result{mid(a), mid(b), mid(c), v[0].events, mid(d), mid(e)};
        };
        load_result peer;
        if (!redis_r.empty()) {
            std::vector<load_result> v;
            for (auto& r : redis_r)
                v.push_back({r.events_per_s, r.p50_ms, r.p99_ms, evs.size(),
                             r.client_cpu_us + r.server_cpu_us, r.server_cpu_us});
            peer = median(v);
        }
        auto raw_many = median(raw_many_r), raw_one = median(raw_one_r);
        auto br_many = median(br_many_r), br_one = median(br_one_r), br_rules = median(rules_r);
        auto br_feed = median(feed_r), br_js = median(js_r);
        double raw_scan_rate = mid(raw_scan_r), br_replay_rate = mid(replay_r),
               br_replay_binary_rate = mid(replay_binary_r);
        json engine_fig;
        if (ruleset) engine_fig = bench_engine(reg, rules_text, 20000);
        fs::remove_all(root);

        auto row = [](const char* name, const load_result& r) {
            std::printf("  %-34s %10.0f ev/s   ack p50 %7.3f ms   p99 %7.3f ms   "
                        "CPU/event %5.2f us (server %5.2f us)\n",
                        name, r.events_per_s, r.p50_ms, r.p99_ms, r.process_cpu_us,
                        r.server_cpu_us);
        };
        std::printf("durable publish (ack after fsync)\n");
        row("raw baseline, 1 in flight", raw_one);
        row("broker, 1 in flight", br_one);
        row("raw baseline, window in flight", raw_many);
        row("broker, window in flight", br_many);
        if (br_feed.events) row("broker + feed subscriber", br_feed);
        if (br_js.events) row("broker + JetStream replication", br_js);
        if (peer.events)
            row("redis XADD, appendfsync always", peer);
        else if (only.empty())
            std::printf("  redis peer row skipped: %s\n", no_redis.c_str());
        std::printf("replay\n  %-34s %10.0f ev/s\n  %-34s %10.0f ev/s\n  %-34s %10.0f ev/s\n",
                    "raw LMDB cursor scan", raw_scan_rate, "broker replay over ZeroMQ (packed)",
                    br_replay_rate, "  binary format, 2 frames an event", br_replay_binary_rate);
        if (br_rules.events) {
            row("broker with the default rules", br_rules);
        }
        double thr_ratio = br_many.events_per_s / raw_many.events_per_s;
        double p99_ratio = br_many.p99_ms / raw_many.p99_ms;
        double one_ratio = br_one.events_per_s / raw_one.events_per_s;
        std::printf("ratios (targets: throughput >= 0.7, ack p99 <= 2.0, 1 in flight >= 0.9, "
                    "feed and rules rows >= 0.85 of the broker row, replay >= 2M ev/s)\n"
                    "  throughput broker/raw at %zu in flight  %.2f\n"
                    "  ack p99 broker/raw at %zu in flight     %.2f\n"
                    "  throughput broker/raw at 1 in flight     %.2f\n",
                    window, thr_ratio, window, p99_ratio, one_ratio);

        auto fig = [](const load_result& r) {
            return json{{"events_per_s", r.events_per_s},
                        {"ack_p50_ms", r.p50_ms},
                        {"ack_p99_ms", r.p99_ms},
                        {"cpu_us_per_event", r.process_cpu_us},
                        {"server_cpu_us_per_event", r.server_cpu_us}};
        };
        out["raw"] = {{"window", fig(raw_many)},
                      {"single", fig(raw_one)},
                      {"scan_events_per_s", raw_scan_rate}};
        out["broker"] = {{"window", fig(br_many)},
                         {"single", fig(br_one)},
                         {"replay_events_per_s", br_replay_rate},
                         {"replay_binary_events_per_s", br_replay_binary_rate}};
        out["ratios"] = {{"throughput_window", thr_ratio},
                         {"ack_p99_window", p99_ratio},
                         {"throughput_single", one_ratio}};
        if (br_rules.events) {
            double rules_ratio = br_rules.events_per_s / br_many.events_per_s;
            std::printf("  throughput with rules / without           %.2f\n", rules_ratio);
            out["broker"]["with_rules"] = fig(br_rules);
            out["ratios"]["throughput_rules"] = rules_ratio;
            out["engine"] = engine_fig;
        }
        if (br_feed.events) {
            double feed_ratio = br_feed.events_per_s / br_many.events_per_s;
            std::printf("  throughput with a feed subscriber / without %.2f  (%zu events missed)\n",
                        feed_ratio, feed_missed);
            out["broker"]["with_feed"] = fig(br_feed);
            out["broker"]["feed_missed"] = feed_missed;
            out["ratios"]["throughput_feed"] = feed_ratio;
        }
        if (br_js.events) {
            double js_ratio = br_js.events_per_s / br_many.events_per_s;
            std::printf("  throughput with JetStream (%d replicas) / without %.2f\n", js_replicas,
                        js_ratio);
            out["broker"]["with_jetstream"] = fig(br_js);
            out["ratios"]["throughput_jetstream"] = js_ratio;
        }
        if (peer.events) {
            std::printf("  throughput broker/redis at %zu in flight  %.2f\n", window,
                        br_many.events_per_s / peer.events_per_s);
            out["redis"] = fig(peer);
            out["ratios"]["throughput_redis"] = br_many.events_per_s / peer.events_per_s;
        }
        out["targets_met"] = {{"throughput", thr_ratio >= 0.7},
                              {"ack_p99", p99_ratio <= 2.0},
                              {"single", one_ratio >= 0.9},
                              {"replay", br_replay_rate >= 2e6}};
        if (json_out) std::cout << out.dump() << std::endl;
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "pingan-bench: " << e.what() << "\n";
        return 2;
    }
}
