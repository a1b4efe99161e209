// Replication to NATS JetStream (broker/replication/replicator.hpp, docs/replication.md),
// against real nats-server processes and a real pingan-broker on 127.0.0.1.
#include "broker/server/config.hpp"
#include "broker/store/store.hpp"
#include "broker_process.hpp"
#include "common/client.hpp"
#include "pingan_run.hpp"

#include "support.hpp"

#include <catch2/catch.hpp>
#include <nats/nats.h>

#include <arpa/inet.h>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <set>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace pingan;
using namespace pingan::test;

namespace {

// A TCP port nobody listens on now (the kernel's choice), for nats-server,
// which must be told its client and cluster ports in advance.
int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t n = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
    ::close(fd);
    return ntohs(a.sin_port);
}

// One nats-server with JetStream, on a store directory that survives restarts.
struct nats_node {
    std::string dir, name;
    std::string config; // a configuration file (accounts, users), or empty
    int port = free_port(), cluster_port = 0;
    std::vector<int> routes; // the other nodes' cluster ports
    std::unique_ptr<process> proc;

    // One node on its own, started.
    static nats_node solo(const std::string& dir) {
        nats_node n;
        n.dir = dir;
        n.name = "solo";
        n.start();
        return n;
    }

    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port); }

    void start() {
        std::vector<std::string> argv{"/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p",
                                      std::to_string(port),    "-sd", dir,  "-n",        name};
        if (!config.empty()) {
            argv.push_back("-c");
            argv.push_back(config);
        }
        if (cluster_port) {
            std::string r;
            for (auto p : routes)
                r += (r.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(p);
            for (const std::string& a : std::vector<std::string>{
                     "--cluster_name", "pingan-test", "--cluster",
                     "nats://127.0.0.1:" + std::to_string(cluster_port), "--routes", r})
                argv.push_back(a);
        }
        proc = std::make_unique<process>(argv, std::string(), dir + ".log");
    }
    void kill() {
        proc->signal(SIGKILL);
        proc->wait();
    }
};

// A JetStream client of the test's own, to read the stream the broker writes.
struct stream_reader {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;

    // Connects once the servers answer (JetStream ready: stream info or "not found").
    explicit stream_reader(const std::vector<std::string>& urls) {
        std::vector<const char*> u;
        for (const auto& x : urls)
            u.push_back(x.c_str());
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (true) {
            natsOptions* o = nullptr;
            natsOptions_Create(&o);
            natsOptions_SetServers(o, u.data(), static_cast<int>(u.size()));
            natsOptions_SetMaxReconnect(o, -1);
            natsOptions_SetReconnectWait(o, 100);
            auto s = natsConnection_Connect(&nc, o);
            natsOptions_Destroy(o);
            if (s == NATS_OK) {
                natsConnection_JetStream(&js, nc, nullptr);
                jsAccountInfo* ai = nullptr;
                if (js_GetAccountInfo(&ai, js, nullptr, nullptr) == NATS_OK) {
                    jsAccountInfo_Destroy(ai);
                    return;
                }
                jsCtx_Destroy(js);
                natsConnection_Destroy(nc);
                js = nullptr;
                nc = nullptr;
            }
            if (std::chrono::steady_clock::now() > until)
                throw std::runtime_error("JetStream did not come up");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    ~stream_reader() {
        if (js) jsCtx_Destroy(js);
        if (nc) natsConnection_Destroy(nc);
    }

    // The stream's last sequence (0 when empty or absent).
    std::uint64_t last(const std::string& stream = "PINGAN") {
        jsStreamInfo* si = nullptr;
        if (js_GetStreamInfo(&si, js, stream.c_str(), nullptr, nullptr) != NATS_OK) return 0;
        auto n = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
        return n;
    }

    // Who holds the leadership lease of `stream`: empty when nobody does
    // (it lapsed or was released); nothing when JetStream cannot tell.
    std::optional<std::string> lease_holder(const std::string& stream = "PINGAN") {
        kvStore* kv = nullptr;
        if (js_KeyValue(&kv, js, (stream + "_LEADER").c_str()) != NATS_OK) return std::nullopt;
        kvEntry* e = nullptr;
        auto s = kvStore_Get(&e, kv, "leader");
        std::optional<std::string> who;
        if (s == NATS_NOT_FOUND) who = std::string();
        if (s == NATS_OK)
            who = std::string(static_cast<const char*>(kvEntry_Value(e)),
                              static_cast<std::size_t>(kvEntry_ValueLen(e)));
        if (e) kvEntry_Destroy(e);
        kvStore_Destroy(kv);
        return who;
    }

    // The subjects the stream takes.
    std::vector<std::string> subjects(const std::string& stream = "PINGAN") {
        jsStreamInfo* si = nullptr;
        if (js_GetStreamInfo(&si, js, stream.c_str(), nullptr, nullptr) != NATS_OK) return {};
        std::vector<std::string> v;
        for (int i = 0; si->Config && i < si->Config->SubjectsLen; ++i)
            v.emplace_back(si->Config->Subjects[i]);
        jsStreamInfo_Destroy(si);
        return v;
    }

    struct record {
        std::string data, msg_id, subject;
    };
    std::optional<record> at(std::uint64_t seq, const std::string& stream = "PINGAN") {
        natsMsg* m = nullptr;
        if (js_GetMsg(&m, js, stream.c_str(), seq, nullptr, nullptr) != NATS_OK)
            return std::nullopt;
        record r{
            std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m))),
            {},
            natsMsg_GetSubject(m)};
        const char* id = nullptr;
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id) r.msg_id = id;
        natsMsg_Destroy(m);
        return r;
    }

    // Writes `data` into the stream as another writer would, on a subject it
    // takes. Returns: the sequence the stream stored it at.
    std::uint64_t put(const std::string& data, const std::string& stream = "PINGAN") {
        auto subject = subjects(stream).at(0);
        subject.replace(subject.size() - 1, 1, "420502._");
        jsPubAck* pa = nullptr;
        auto s = js_Publish(&pa, js, subject.c_str(), data.data(), static_cast<int>(data.size()),
                            nullptr, nullptr);
        if (s != NATS_OK) throw std::runtime_error("publishing to the stream failed");
        auto seq = pa->Sequence;
        jsPubAck_Destroy(pa);
        return seq;
    }

    // Waits until the stream's last sequence is `n`. Returns: the last sequence seen.
    std::uint64_t wait_last(std::uint64_t n, const std::string& stream = "PINGAN") {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        std::uint64_t got = 0;
        while ((got = last(stream)) != n && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return got;
    }
};

std::vector<event> readings(std::size_t n, std::size_t start = 0) {
    std::vector<event> v;
    for (std::size_t i = 0; i < n; ++i)
        v.push_back(sample_reading("420502K001", start + i));
    return v;
}

// What publishing as the services do cost: events refused, requests resent,
// the longest request and the longest wait until a batch was stored.
struct resend_stats {
    std::size_t refusals = 0, resends = 0;
    std::chrono::milliseconds longest{0}, recovery{0};
};

// Publishes `batch` as every Pingan publisher does: a request the stream did
// not confirm in time is refused (store_failure) and resent until each event
// is stored, for at most 90 s (an election among the nodes depends on the
// machine's load). Each try waits 5 s (more than the broker's 2 s replication
// timeout), and a silent try is resent; three silent tries throw io_error.
// Each event's offset goes into `acked` (id -> offset); an event acknowledged
// twice must have kept its offset.
void publish_until_stored(ingest_client& pub, std::span<const event> batch,
                          std::map<std::string, std::uint64_t>& acked, resend_stats& stats) {
    auto first_try = std::chrono::steady_clock::now();
    for (;;) {
        REQUIRE(std::chrono::steady_clock::now() - first_try < std::chrono::seconds(90));
        auto t0 = std::chrono::steady_clock::now();
        auto r = pub.publish(batch, std::chrono::seconds(5), 3);
        stats.longest =
            std::max(stats.longest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - t0));
        REQUIRE(r.results.size() == batch.size());
        bool all = true;
        for (std::size_t k = 0; k < batch.size(); ++k) {
            const auto& x = r.results[k];
            if (x.what == wire::outcome::rejected) {
                INFO(x.message);
                CHECK(x.code == errc::store_failure);
                ++stats.refusals;
                all = false;
                continue;
            }
            auto [it, fresh] = acked.emplace(batch[k].id.str(), x.offset);
            if (!fresh) CHECK(it->second == x.offset);
        }
        if (all) break;
        ++stats.resends;
    }
    stats.recovery = std::max(stats.recovery, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - first_try));
}

std::map<std::uint64_t, std::string> replay_all(zmq::context_t& ctx, const std::string& query) {
    query_client q(ctx, query);
    std::map<std::uint64_t, std::string> out;
    q.replay({}, [&](std::uint64_t off, std::string_view b) {
        out.emplace(off, std::string(b));
        return true;
    });
    return out;
}

std::vector<std::string> replication_flags(const std::vector<std::string>& urls, int replicas = 1,
                                           const std::string& timeout = "2s") {
    std::vector<std::string> f{
        "--insecure-dev",         "--replication",       "jetstream", "--jetstream-replicas",
        std::to_string(replicas), "--jetstream-timeout", timeout};
    for (const auto& u : urls) {
        f.push_back("--jetstream-server");
        f.push_back(u);
    }
    return f;
}

// Every record of the log is in the stream at its offset, with the same bytes,
// the event id as Nats-Msg-Id, on the subject of its district and school;
// the stream holds nothing more.
void check_stream_is_log(stream_reader& r, zmq::context_t& ctx, const std::string& query) {
    auto log = replay_all(ctx, query);
    REQUIRE(r.last() == log.size());
    for (const auto& [off, bytes] : log) {
        auto rec = r.at(off);
        REQUIRE(rec);
        CHECK(rec->data == bytes);
        event e;
        REQUIRE_FALSE(decode(bytes, e));
        CHECK(rec->msg_id == e.id.str());
        CHECK(rec->subject == "pingan.events." + (e.district.empty() ? "_" : e.district) + "." +
                                  (e.school.empty() ? "_" : e.school));
    }
}

// Three nats-server nodes in one cluster, started.
struct nats_cluster {
    std::vector<nats_node> nodes;
    std::vector<std::string> urls;
    explicit nats_cluster(const std::string& dir) : nodes(3) {
        std::filesystem::create_directories(dir);
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            nodes[i].dir = dir + "/n" + std::to_string(i);
            nodes[i].name = "n" + std::to_string(i);
            nodes[i].cluster_port = free_port();
        }
        for (auto& n : nodes)
            for (auto& o : nodes)
                if (&n != &o) n.routes.push_back(o.cluster_port);
        for (auto& n : nodes) {
            n.start();
            urls.push_back(n.url());
        }
    }
};

std::vector<std::string> with(std::vector<std::string> f, std::vector<std::string> more) {
    f.insert(f.end(), more.begin(), more.end());
    return f;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The log a broker serves: offsets dense from 1, every id once.
// Returns: offset by event id.
std::map<std::string, std::uint64_t> dense_log(zmq::context_t& ctx, const std::string& query) {
    auto log = replay_all(ctx, query);
    std::map<std::string, std::uint64_t> ids;
    std::uint64_t expect = 1;
    for (const auto& [off, bytes] : log) {
        REQUIRE(off == expect++);
        event e;
        REQUIRE_FALSE(decode(bytes, e));
        CHECK(ids.emplace(e.id.str(), off).second);
    }
    return ids;
}

} // namespace

TEST_CASE("acknowledged events are in a three-node stream at their offsets, and a resend is "
          "stored once in each",
          "[jetstream]") {
    temp_dir d;
    std::vector<nats_node> nodes(3);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        nodes[i].dir = d / ("n" + std::to_string(i));
        nodes[i].name = "n" + std::to_string(i);
        nodes[i].cluster_port = free_port();
    }
    for (auto& n : nodes)
        for (auto& o : nodes)
            if (&n != &o) n.routes.push_back(o.cluster_port);
    std::vector<std::string> urls;
    for (auto& n : nodes) {
        n.start();
        urls.push_back(n.url());
    }
    stream_reader reader(urls);
    broker_process b(d / "store", replication_flags(urls, 3), d / "broker.log", "info");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);

    auto ev = readings(40);
    auto first = pub.publish(std::span(ev).first(15));
    auto second = pub.publish(std::span(ev).subspan(15));
    std::vector<wire::result> results = first.results;
    results.insert(results.end(), second.results.begin(), second.results.end());
    REQUIRE(results.size() == ev.size());
    for (std::size_t i = 0; i < ev.size(); ++i) {
        CHECK(results[i].what == wire::outcome::stored);
        CHECK(results[i].offset == i + 1);
    }
    // The ack came after the stream's: it holds them already.
    check_stream_is_log(reader, ctx, b.query);

    auto again = pub.publish(std::span(ev).subspan(10, 10));
    REQUIRE(again.results.size() == 10);
    for (std::size_t i = 0; i < 10; ++i) {
        CHECK(again.results[i].what == wire::outcome::duplicate);
        CHECK(again.results[i].offset == 11 + i);
    }
    CHECK(replay_all(ctx, b.query).size() == ev.size());
    check_stream_is_log(reader, ctx, b.query);
}

TEST_CASE("without JetStream publishes are refused as not replicated, and once it is back a "
          "resend succeeds with no gap in the stream",
          "[jetstream]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    broker_process b(d / "store", replication_flags({n.url()}, 1, "500ms"), d / "broker.log",
                     "info");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    auto ev = readings(10);
    auto ok = pub.publish(std::span(ev).first(5));
    for (const auto& r : ok.results)
        REQUIRE(r.what == wire::outcome::stored);
    REQUIRE(reader.last() == 5);

    n.kill();
    auto refused = pub.publish(std::span(ev).subspan(5), std::chrono::seconds(10), 1);
    REQUIRE(refused.results.size() == 5);
    for (const auto& r : refused.results) {
        CHECK(r.what == wire::outcome::rejected);
        CHECK(r.code == errc::store_failure);
        CHECK_THAT(r.message, Catch::Contains("not confirmed by JetStream stream PINGAN"));
    }
    // The broker keeps answering: the events are in its own log.
    CHECK(replay_all(ctx, b.query).size() == 10);

    n.start();
    // A publisher resends what was refused until it is acknowledged.
    std::optional<publish_reply> resent;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < until) {
        auto r = pub.publish(std::span(ev).subspan(5), std::chrono::seconds(10), 1);
        if (r.results.size() == 5 && r.results[0].what != wire::outcome::rejected) {
            resent = r;
            break;
        }
    }
    REQUIRE(resent);
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK(resent->results[i].what == wire::outcome::duplicate);
        CHECK(resent->results[i].offset == 6 + i);
    }
    stream_reader after({n.url()});
    check_stream_is_log(after, ctx, b.query);

    // And new events go on at the next offsets.
    auto more = readings(3, 100);
    auto r = pub.publish(more);
    for (std::size_t i = 0; i < 3; ++i)
        CHECK(r.results[i].offset == 11 + i);
    check_stream_is_log(after, ctx, b.query);
}

TEST_CASE("a broker catches a stream that is behind its log up at start, and refuses a stream "
          "that is ahead of it",
          "[jetstream]") {
    temp_dir d;
    zmq::context_t ctx(1);
    auto ev = readings(12);
    {
        // Stored while replication was off.
        broker_process plain(d / "store", {"--insecure-dev"});
        ingest_client pub(ctx, plain.ingest);
        auto r = pub.publish(std::span(ev).first(10));
        REQUIRE(r.results.back().offset == 10);
        plain.proc->signal(SIGTERM);
        REQUIRE(plain.proc->wait() == 0);
    }
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    {
        broker_process b(d / "store", replication_flags({n.url()}), d / "broker.log", "info");
        CHECK(reader.wait_last(10) == 10);
        ingest_client pub(ctx, b.ingest);
        auto r = pub.publish(std::span(ev).subspan(10));
        REQUIRE(r.results.size() == 2);
        CHECK(r.results[0].offset == 11);
        CHECK(r.results[1].offset == 12);
        check_stream_is_log(reader, ctx, b.query);
        b.proc->signal(SIGTERM);
        REQUIRE(b.proc->wait() == 0);
    }

    // An empty store against that stream: the start is refused, naming both numbers.
    process refused(broker_argv(d / "other", replication_flags({n.url()})), std::string(),
                    d / "refused.log");
    CHECK(refused.wait() == 2);
    CHECK_THAT(read_text(d / "refused.log"),
               Catch::Contains("its last sequence is 12, the local head is 0"));
    CHECK(reader.last() == 12);
}

TEST_CASE("the configuration reads replication and its jetstream settings, and names a wrong one",
          "[jetstream]") {
    auto c = parse_broker_config("replication: jetstream\n"
                                 "jetstream:\n"
                                 "  servers: [nats://10.0.0.1:4222, nats://10.0.0.2:4222]\n"
                                 "  stream: CITY\n"
                                 "  subject: city.events\n"
                                 "  replicas: 3\n"
                                 "  timeout: 750ms\n"
                                 "  lease: 5s\n"
                                 "  standby: true\n"
                                 "  name: city-b\n");
    CHECK(c.replication == "jetstream");
    CHECK(c.jetstream.servers ==
          std::vector<std::string>{"nats://10.0.0.1:4222", "nats://10.0.0.2:4222"});
    CHECK(c.jetstream.stream == "CITY");
    CHECK(c.jetstream.subject == "city.events");
    CHECK(c.jetstream.replicas == 3);
    CHECK(c.jetstream.timeout == std::chrono::milliseconds(750));
    CHECK(c.jetstream.lease == std::chrono::seconds(5));
    CHECK(c.jetstream.standby);
    CHECK(c.jetstream.name == "city-b");
    CHECK_FALSE(parse_broker_config("replication: jetstream\n").jetstream.standby);
    CHECK(parse_broker_config("").replication == "none");
    auto wrong = [](const char* yaml) {
        try {
            parse_broker_config(yaml);
        } catch (const error& e) {
            CHECK(e.code() == errc::bad_config);
            return e.detail();
        }
        return std::string("accepted");
    };
    CHECK_THAT(wrong("replication: raft\n"),
               Catch::Contains("replication: expected none or jetstream"));
    CHECK_THAT(wrong("jetstream: {replicas: 2}\n"), Catch::Contains("jetstream.replicas"));
    CHECK_THAT(wrong("jetstream: {servers: []}\n"), Catch::Contains("jetstream.servers"));
    CHECK_THAT(wrong("jetstream: {stram: X}\n"), Catch::Contains("jetstream.stram: unknown key"));
    CHECK_THAT(wrong("jetstream: {lease: 100ms}\n"), Catch::Contains("jetstream.lease"));
    CHECK_THAT(wrong("jetstream: {standby: maybe}\n"), Catch::Contains("jetstream.standby"));
}

TEST_CASE("kill -9 of the leader under load: the standby takes over with every acknowledged "
          "event once, at its offset, in a chain that verifies",
          "[jetstream][failover]") {
    temp_dir d;
    nats_cluster cluster(d / "nats");
    stream_reader reader(cluster.urls);
    auto flags = with(replication_flags(cluster.urls, 3), {"--jetstream-lease", "1s"});
    broker_process leader(d / "a", with(flags, {"--jetstream-name", "broker-a"}), d / "a.log",
                          "info");
    // The standby's ports are known before it listens, so that a client can name both brokers.
    broker_endpoints b_at{"tcp://127.0.0.1:" + std::to_string(free_port()),
                          "tcp://127.0.0.1:" + std::to_string(free_port()),
                          "tcp://127.0.0.1:" + std::to_string(free_port())};
    broker_process standby(d / "b", with(flags, {"--standby", "--jetstream-name", "broker-b"}),
                           d / "b.log", "info", b_at);
    REQUIRE(standby.standby);
    zmq::context_t ctx(1);
    // A publisher that knows both brokers: its requests go to whichever listens.
    ingest_client pub(ctx, leader.ingest + "," + b_at.ingest);

    // 30 requests of 20 events: 20 acknowledged, then 10 sent without waiting
    // and the leader killed while they are in flight.
    std::vector<std::vector<event>> batches;
    for (std::size_t i = 0; i < 30; ++i)
        batches.push_back(readings(20, i * 20));
    std::map<std::string, std::uint64_t> acked; // id -> offset, as the old leader answered
    {
        // A fresh cluster may not confirm the first batches in time: they are resent.
        resend_stats stats;
        for (std::size_t i = 0; i < 20; ++i)
            publish_until_stored(pub, batches[i], acked, stats);
        for (std::size_t i = 20; i < 30; ++i) {
            std::vector<std::string> frames;
            for (const auto& e : batches[i])
                frames.push_back(encode(e));
            pub.send(frames, false, "inflight-" + std::to_string(i));
        }
        leader.proc->signal(SIGKILL);
        leader.proc->wait();
    }

    // The lease lapses (1 s), the standby applies the stream and takes over.
    standby.wait_listening(std::chrono::seconds(20));
    CHECK(standby.ingest == b_at.ingest);
    CHECK_THAT(read_text(d / "b.log"), Catch::Contains("taking over"));

    // The publisher resends what its outbox holds (everything, here) through
    // the same socket: the requests find the new leader.
    for (const auto& b : batches) {
        auto r = pub.publish(b);
        REQUIRE(r.results.size() == b.size());
        for (std::size_t k = 0; k < b.size(); ++k) {
            INFO(b[k].id.str());
            REQUIRE(r.results[k].what != wire::outcome::rejected);
            // An acknowledged event is where the old leader said it was.
            if (auto it = acked.find(b[k].id.str()); it != acked.end()) {
                CHECK(r.results[k].what == wire::outcome::duplicate);
                CHECK(r.results[k].offset == it->second);
            }
        }
    }
    auto ids = dense_log(ctx, standby.query);
    CHECK(ids.size() == 600);
    for (const auto& [id, off] : acked)
        CHECK(ids.at(id) == off);
    // The stream is the new leader's log, record for record.
    check_stream_is_log(reader, ctx, standby.query);
    {
        store_options so;
        so.path = d / "b";
        so.read_only = true;
        store st(so);
        auto v = st.verify();
        CHECK(v.ok);
        CHECK(v.checked == 600);
    }

    // The old leader, restarted on its store, may not write: the lease is held.
    process again(broker_argv(d / "a", with(flags, {"--jetstream-name", "broker-a"})),
                  std::string(), d / "a-again.log");
    CHECK(again.wait() == 2);
    CHECK_THAT(read_text(d / "a-again.log"), Catch::Contains("is held by broker-b"));
}

// A leader and a standby with a 1 s lease on `urls`: the leader stores the
// first 10 of `ev`, then stops answering anyone (a partition, a stalled host;
// SIGSTOP) longer than its lease; the standby takes over and stores the next
// 10 at offsets 11 to 20.
struct stalled_leader {
    broker_process leader, standby;
    std::map<std::string, std::uint64_t> acked;
    resend_stats stats;

    stalled_leader(const temp_dir& d, const std::vector<std::string>& urls, int replicas,
                   zmq::context_t& ctx, std::span<const event> ev)
        : leader(d / "a", with(flags(urls, replicas), {"--jetstream-name", "broker-a"}),
                 d / "a.log", "info"),
          standby(d / "b",
                  with(flags(urls, replicas), {"--standby", "--jetstream-name", "broker-b"}),
                  d / "b.log", "info") {
        // A fresh cluster under load may not confirm in time: publishers resend.
        {
            ingest_client pub(ctx, leader.ingest);
            publish_until_stored(pub, ev.first(10), acked, stats);
        }
        leader.proc->signal(SIGSTOP);
        standby.wait_listening(std::chrono::seconds(20));
        ingest_client pub(ctx, standby.ingest);
        publish_until_stored(pub, ev.subspan(10, 10), acked, stats);
        for (std::size_t k = 10; k < 20; ++k)
            CHECK(acked.at(ev[k].id.str()) == 1 + k);
    }
    static std::vector<std::string> flags(const std::vector<std::string>& urls, int replicas) {
        return with(replication_flags(urls, replicas, "1s"), {"--jetstream-lease", "1s"});
    }
    // The old leader, resumed, refuses what it is sent.
    void old_leader_refuses(zmq::context_t& ctx, std::span<const event> batch) {
        leader.proc->signal(SIGCONT);
        ingest_client pub(ctx, leader.ingest);
        auto r = pub.publish(batch, std::chrono::seconds(10), 1);
        REQUIRE(r.results.size() == batch.size());
        for (const auto& x : r.results) {
            CHECK(x.what == wire::outcome::rejected);
            CHECK(x.code == errc::store_failure);
        }
    }
};

TEST_CASE("a leader cut off past its lease acknowledges nothing more once it is back: two "
          "brokers never both acknowledge",
          "[jetstream][failover]") {
    temp_dir d;
    nats_cluster cluster(d / "nats");
    stream_reader reader(cluster.urls);
    zmq::context_t ctx(1);
    auto ev = readings(40);
    stalled_leader s(d, cluster.urls, 3, ctx, ev);
    auto& [leader, standby, acked, stats] = s;
    auto offset_of = [&](std::size_t k) { return acked.at(ev[k].id.str()); };
    // Back, the old leader finds its lease gone and refuses what it is sent.
    s.old_leader_refuses(ctx, std::span(ev).subspan(20, 10));
    CHECK_THAT(read_text(d / "a.log"), Catch::Contains("lost the leadership lease"));
    // The new leader goes on; the stream is its log and holds nothing of the old one's.
    {
        ingest_client pub(ctx, standby.ingest);
        publish_until_stored(pub, std::span(ev).subspan(20, 20), acked, stats);
        for (std::size_t k = 20; k < 40; ++k)
            CHECK(offset_of(k) == 1 + k);
    }
    auto ids = dense_log(ctx, standby.query);
    CHECK(ids.size() == 40);
    check_stream_is_log(reader, ctx, standby.query);
}

TEST_CASE("a leader whose lease lapsed while nobody took over takes it again once JetStream "
          "answers, and acknowledges on at the next offsets",
          "[jetstream][failover]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    broker_process b(d / "store",
                     with(replication_flags({n.url()}, 1, "1s"),
                          {"--jetstream-lease", "1s", "--jetstream-name", "broker-a"}),
                     d / "broker.log", "info");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    auto ev = readings(20);
    std::map<std::string, std::uint64_t> acked;
    resend_stats stats;
    publish_until_stored(pub, std::span(ev).first(10), acked, stats);
    // The broker stalls past its lease (as when JetStream's nodes elect a new
    // leader for longer than a lease) and nobody else takes it.
    b.proc->signal(SIGSTOP);
    REQUIRE(eventually([&] { return reader.lease_holder() == std::string(); },
                       std::chrono::seconds(20)));
    b.proc->signal(SIGCONT);
    publish_until_stored(pub, std::span(ev).subspan(10), acked, stats);
    for (std::size_t k = 0; k < 20; ++k)
        CHECK(acked.at(ev[k].id.str()) == 1 + k);
    CHECK(reader.lease_holder() == std::string("broker-a"));
    auto log = read_text(d / "broker.log");
    CHECK_THAT(log, Catch::Contains("no other broker took it or wrote the stream"));
    CHECK_THAT(log, !Catch::Contains("lost the leadership lease"));
    check_stream_is_log(reader, ctx, b.query);
}

TEST_CASE("a leader whose lease lapsed does not take it again after another broker wrote the "
          "stream, even once that broker has stopped",
          "[jetstream][failover]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    zmq::context_t ctx(1);
    auto ev = readings(30);
    stalled_leader s(d, {n.url()}, 1, ctx, ev);
    // A clean stop gives the lease back: nobody holds it when the old leader resumes.
    s.standby.proc->signal(SIGTERM);
    CHECK(s.standby.proc->wait() == 0);
    REQUIRE(reader.lease_holder() == std::string());
    s.old_leader_refuses(ctx, std::span(ev).subspan(20, 10));
    CHECK_THAT(read_text(d / "a.log"), Catch::Contains("lost the leadership lease"));
    // It gave the lease back (or let it lapse): a broker may lead again.
    CHECK(eventually([&] { return reader.lease_holder() == std::string(); },
                     std::chrono::seconds(10)));
    CHECK(reader.last() == 20);
}

TEST_CASE("another writer's record in the stream: the broker refuses the events from its "
          "offset on and gives the lease back",
          "[jetstream][failover]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    broker_process b(d / "store",
                     with(replication_flags({n.url()}, 1, "2s"), {"--jetstream-name", "broker-a"}),
                     d / "broker.log", "info");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    auto ev = readings(15);
    std::map<std::string, std::uint64_t> acked;
    resend_stats stats;
    publish_until_stored(pub, std::span(ev).first(10), acked, stats);
    REQUIRE(reader.wait_last(10) == 10);
    REQUIRE(reader.lease_holder() == std::string("broker-a"));
    REQUIRE(reader.put("not a record of this log") == 11);
    // One batch: offset 11 is refused (the stream's last is the other
    // writer's 11), and 12 to 15 then match their expected last sequences
    // and are stored after it. None of the five may be acknowledged: the
    // stream does not hold the event the broker stored at 11.
    auto r = pub.publish(std::span(ev).subspan(10, 5), std::chrono::seconds(10), 1);
    REQUIRE(r.results.size() == 5);
    for (const auto& x : r.results) {
        CHECK(x.what == wire::outcome::rejected);
        CHECK(x.code == errc::store_failure);
    }
    CHECK(eventually([&] { return reader.lease_holder() == std::string(); },
                     std::chrono::seconds(10)));
    CHECK_THAT(read_text(d / "broker.log"),
               Catch::Contains("holds another writer's record at sequence 11"));
    // It refuses from then on.
    auto again = pub.publish(std::span(ev).subspan(10, 1), std::chrono::seconds(10), 1);
    REQUIRE(again.results.size() == 1);
    CHECK(again.results[0].code == errc::store_failure);
}

TEST_CASE("kill -9 of one NATS node under load: every event is acknowledged, stored once and in "
          "the stream, and no request goes unanswered",
          "[jetstream]") {
    temp_dir d;
    nats_cluster cluster(d / "nats");
    stream_reader reader(cluster.urls);
    broker_process b(d / "store", replication_flags(cluster.urls, 3, "2s"), d / "broker.log",
                     "info");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);

    // 40 requests of 20 events, one after another; node n0 is killed after the
    // tenth. A request the stream did not confirm in time is refused
    // (store_failure) and resent, as every Pingan publisher does.
    // The stream may need a new leader (an election among the two nodes
    // left): the time until a batch is stored is printed, and bounded only
    // loosely, since it depends on the machine's load.
    resend_stats stats;
    std::map<std::string, std::uint64_t> acked;
    for (std::size_t i = 0; i < 40; ++i) {
        if (i == 10) cluster.nodes[0].kill();
        publish_until_stored(pub, readings(20, i * 20), acked, stats);
    }
    WARN("kill -9 of one of three NATS nodes: "
         << stats.refusals << " events refused and " << stats.resends
         << " requests resent; the longest request took " << stats.longest.count()
         << " ms, the longest until a batch was stored " << stats.recovery.count() << " ms");
    CHECK(acked.size() == 800);
    // Every acknowledged event once, at the offset it was acknowledged with.
    auto ids = dense_log(ctx, b.query);
    CHECK(ids.size() == 800);
    for (const auto& [id, off] : acked)
        CHECK(ids.at(id) == off);
    // The two nodes left hold the stream; the killed one, restarted, catches up.
    check_stream_is_log(reader, ctx, b.query);
    cluster.nodes[0].start();
    stream_reader only_n0({cluster.nodes[0].url()});
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (only_n0.last() < 800 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(only_n0.last() == 800);
}

TEST_CASE("the new leader fires the deadline the old one left pending, marked late, once",
          "[jetstream][failover]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    // Both brokers run the default rules on a manual clock at the same start.
    const std::string start = "2026-09-01T08:00:00+08:00";
    auto flags =
        with(replication_flags({n.url()}),
             {"--jetstream-lease", "1s", "--rules",
              source_path("config/rules/yichang-default.yaml"), "--clock", "manual:" + start});
    broker_process leader(d / "a", with(flags, {"--jetstream-name", "broker-a"}), d / "a.log",
                          "info");
    broker_process standby(d / "b", with(flags, {"--standby", "--jetstream-name", "broker-b"}),
                           d / "b.log", "info");
    zmq::context_t ctx(1);
    // A red psychological alert: the school must acknowledge it within
    // minutes, else the district is paged (DOMAIN §5).
    {
        nlohmann::json j = {{"type", "psych.alert"},
                            {"school", "420502P001"},
                            {"status", "Actual"},
                            {"severity", "Severe"},
                            {"scope", "Private"},
                            {"occurred_at", start},
                            {"source", "pingan-test/failover"},
                            {"body",
                             {{"alert_id", "P1"},
                              {"student_ref", "STU-P1"},
                              {"risk_level", "red"},
                              {"source", "teacher"},
                              {"reported_by_role", "head_teacher"}}}};
        event e;
        auto p = from_json(j, e);
        INFO(p.text());
        REQUIRE_FALSE(p);
        e.id = new_event_id(*parse_utc(start));
        ingest_client pub(ctx, leader.ingest);
        std::vector<event> batch{e};
        auto r = pub.publish(batch);
        REQUIRE(r.results.at(0).what == wire::outcome::stored);
    }
    // The leader dies before its clock reaches the deadline.
    leader.proc->signal(SIGKILL);
    leader.proc->wait();
    standby.wait_listening(std::chrono::seconds(20));

    auto log = [&] {
        query_client q(ctx, standby.query);
        std::vector<nlohmann::json> v;
        replay_request r;
        r.json = true;
        q.replay(r, [&](std::uint64_t, std::string_view line) {
            v.push_back(nlohmann::json::parse(line));
            return true;
        });
        return v;
    };
    auto of_type = [](const std::vector<nlohmann::json>& v, const std::string& t) {
        std::vector<nlohmann::json> out;
        for (const auto& e : v)
            if (e["type"] == t) out.push_back(e);
        return out;
    };
    auto before = log();
    REQUIRE(of_type(before, "incident.opened").size() == 1);
    CHECK(of_type(before, "timer.fired").empty());

    // Two hours later by the new leader's clock: CLOCK answers once the
    // effects of the move are stored.
    query_client q(ctx, standby.query);
    q.clock({{"set", "2026-09-01T10:00:00+08:00"}});
    auto after = log();
    auto fired = of_type(after, "timer.fired");
    REQUIRE_FALSE(fired.empty());
    std::set<std::string> timer_ids;
    for (const auto& f : fired) {
        CHECK(f["body"]["late"] == true);
        CHECK(timer_ids.insert(f["body"]["timer_id"].get<std::string>()).second);
    }
    auto raised = of_type(after, "escalation.raised");
    REQUIRE_FALSE(raised.empty());
    for (const auto& r : raised)
        CHECK(r["body"]["late"] == true);
    // The stream is the new leader's log.
    check_stream_is_log(reader, ctx, standby.query);
}

namespace {

std::vector<std::string> pingan_argv(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(PINGAN_BIN_DIR) + "/pingan");
    return args;
}

const std::string secret_ref = "stu-SECRET-5521";

// A psych alert of 420502K001 naming a student by reference.
event psych_event() {
    return sample_psych("420502K001", secret_ref);
}

} // namespace

TEST_CASE("each record is on its district's and school's subject, and pingan replay --jetstream "
          "prints the broker's replay lines, of one district with --district",
          "[jetstream][reader]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    broker_process b(d / "store", replication_flags({n.url()}), d / "broker.log", "info");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    std::vector<event> ev;
    for (std::size_t i = 0; i < 12; ++i)
        ev.push_back(sample_reading(i % 3 == 0 ? "420503K001" : "420502K001", i));
    ev.push_back(sample_hazard("420503K002"));
    for (const auto& x : pub.publish(ev).results)
        REQUIRE(x.what == wire::outcome::stored);
    CHECK(reader.subjects() == std::vector<std::string>{"pingan.events.>"});
    CHECK(reader.at(1)->subject == "pingan.events.420503.420503K001");
    CHECK(reader.at(2)->subject == "pingan.events.420502.420502K001");
    CHECK(reader.at(13)->subject == "pingan.events.420503.420503K002");
    check_stream_is_log(reader, ctx, b.query);

    // The same lines from the stream as from the broker, filters included.
    auto both = [&](const std::vector<std::string>& args) {
        auto from_broker = run_stdout(with({"replay", "--query", b.query}, args));
        auto from_stream = run_stdout(with({"replay", "--jetstream", n.url()}, args));
        CHECK(from_broker.code == 0);
        CHECK(from_stream.code == 0);
        CHECK(from_stream.lines == from_broker.lines);
        return from_stream.lines;
    };
    CHECK(both({}).size() == 13);
    CHECK(both({"--json"}).size() == 13);
    CHECK(both({"--from", "5"}).size() == 9);
    CHECK(both({"--type", "hazard."}).size() == 1);
    // One district: a consumer of its subjects only.
    auto district = both({"--json", "--district", "420503"});
    CHECK(district.size() == 5);
    for (const auto& l : district)
        CHECK(nlohmann::json::parse(l)["district"] == "420503");
    CHECK(both({"--school", "420502K001", "--from", "3"}).size() == 7);

    // --follow: what is there, then each record as it is stored.
    process follow(pingan_argv(
        {"replay", "--jetstream", n.url(), "--district", "420502", "--json", "--follow"}));
    for (std::size_t i = 0; i < 8; ++i)
        REQUIRE(follow.line(std::chrono::seconds(20)));
    auto more = readings(3, 100);
    for (const auto& x : pub.publish(more).results)
        REQUIRE(x.what == wire::outcome::stored);
    for (std::size_t k = 0; k < more.size(); ++k) {
        auto l = follow.line(std::chrono::seconds(20));
        REQUIRE(l);
        auto j = nlohmann::json::parse(*l);
        CHECK(j["id"] == more[k].id.str());
        CHECK(j["offset"] == 14 + k);
    }
    follow.signal(SIGTERM);
    follow.wait();

    // Records removed from the stream: a reader of the whole stream says which.
    jsOptions po;
    jsOptions_Init(&po);
    po.Stream.Purge.Sequence = 4;
    REQUIRE(js_PurgeStream(reader.js, "PINGAN", &po, nullptr) == NATS_OK);
    auto gap = run({"replay", "--jetstream", n.url()});
    CHECK(gap.code == 1);
    CHECK(has(gap, "stream PINGAN holds no record at offset 1 to 3 (the next it holds is 4)"));
    CHECK(run_stdout({"replay", "--jetstream", n.url(), "--from", "4"}).lines.size() == 13);
}

TEST_CASE("with --keys the stream holds no student reference, and a JetStream reader shows minors' "
          "details redacted",
          "[jetstream][reader]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    broker_process b(d / "store", with(replication_flags({n.url()}), {"--keys", d / "keys"}),
                     d / "broker.log", "info");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    std::vector<event> ev{psych_event()};
    REQUIRE(pub.publish(ev).results.at(0).what == wire::outcome::stored);
    auto rec = reader.at(1);
    REQUIRE(rec);
    CHECK(rec->subject == "pingan.events.420502.420502K001");
    CHECK(rec->data.find("420502K001") != std::string::npos); // the envelope is in clear
    CHECK(rec->data.find(secret_ref) == std::string::npos);
    auto r = run_stdout({"replay", "--jetstream", n.url(), "--json"});
    CHECK(r.code == 0);
    REQUIRE(r.lines.size() == 1);
    auto j = nlohmann::json::parse(r.lines[0]);
    CHECK(j["type"] == "psych.alert");
    CHECK(j["body"]["student_ref"] == "redacted");
    CHECK(j["body"]["risk_level"] == "red");
    CHECK(r.lines[0].find("sealed:") == std::string::npos);
}

TEST_CASE("a stream of the single-subject layout is refused naming both subjects, and replication "
          "needs the keys that seal minors' data",
          "[jetstream]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char* subjects[] = {"pingan.events"};
        sc.Name = "PINGAN";
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        jsStreamInfo* si = nullptr;
        REQUIRE(js_AddStream(&si, reader.js, &sc, nullptr, nullptr) == NATS_OK);
        jsStreamInfo_Destroy(si);
    }
    process refused(broker_argv(d / "a", replication_flags({n.url()})), std::string(), d / "a.log");
    CHECK(refused.wait() == 2);
    auto log = read_text(d / "a.log");
    CHECK_THAT(log, Catch::Contains("stream PINGAN takes the single subject pingan.events,"));
    CHECK_THAT(log, Catch::Contains("needs a stream that takes pingan.events.>"));
    // A standby does not follow it either.
    process standby(broker_argv(d / "b", with(replication_flags({n.url()}), {"--standby"})),
                    std::string(), d / "b.log");
    CHECK(standby.wait() == 2);
    CHECK_THAT(read_text(d / "b.log"),
               Catch::Contains("stream PINGAN takes the single subject pingan.events,"));
    // Given a new stream, the broker makes it and publishes its log there.
    {
        broker_process b(d / "a",
                         with(replication_flags({n.url()}), {"--jetstream-stream", "PINGAN2"}),
                         d / "a2.log", "info");
        zmq::context_t ctx(1);
        ingest_client pub(ctx, b.ingest);
        auto ev = readings(2);
        for (const auto& x : pub.publish(ev).results)
            REQUIRE(x.what == wire::outcome::stored);
        CHECK(reader.subjects("PINGAN2") == std::vector<std::string>{"pingan.events.>"});
        CHECK(reader.last("PINGAN2") == 2);
    }
    CHECK(reader.last("PINGAN") == 0);

    // Without --keys (nor --insecure-dev) the stream would hold minors' data in clear.
    // The test runner sets PINGAN_INSECURE_DEV for every program; not here.
    const char* insecure = std::getenv("PINGAN_INSECURE_DEV");
    std::string was = insecure ? insecure : "";
    ::unsetenv("PINGAN_INSECURE_DEV");
    process no_keys(
        broker_argv(d / "c", {"--replication", "jetstream", "--jetstream-server", n.url()}),
        std::string(), d / "c.log");
    if (insecure) ::setenv("PINGAN_INSECURE_DEV", was.c_str(), 1);
    CHECK(no_keys.wait() == 2);
    CHECK_THAT(read_text(d / "c.log"), Catch::Contains("--replication jetstream needs --keys"));
}

namespace {

// A NATS server run with the users and permissions of the configuration file
// `<dir>/nats.conf`, and a broker replicating to it as user `broker`
// (password broker-pass).
struct served_with_users {
    nats_node n;
    std::unique_ptr<broker_process> b;

    served_with_users(const temp_dir& d, const std::string& name) {
        n.dir = d / "nats";
        n.name = name;
        n.config = d / "nats.conf";
        n.start();
        stream_reader wait_up({url("broker:broker-pass")});
        b = std::make_unique<broker_process>(
            d / "store", replication_flags({url("broker:broker-pass")}), d / "broker.log", "info");
    }
    std::string url(const std::string& user) const {
        return "nats://" + user + "@127.0.0.1:" + std::to_string(n.port);
    }
};

} // namespace

TEST_CASE("with per-user subject permissions a district's NATS user reads its district through "
          "pingan replay and is refused another's",
          "[jetstream][reader]") {
    temp_dir d;
    // The configuration of docs/replication.md, "NATS users and permissions".
    std::ofstream(d / "nats.conf")
        << "accounts {\n"
           "  CITY {\n"
           "    jetstream: enabled\n"
           "    users: [\n"
           "      {user: broker, password: broker-pass}\n"
           "      {user: district-420502, password: reader-pass, permissions: {\n"
           "        publish: {allow: "
           "[\"$JS.API.CONSUMER.CREATE.PINGAN.*.pingan.events.420502.>\",\n"
           "                          \"$JS.API.CONSUMER.INFO.PINGAN.*\", \"$JS.FC.PINGAN.>\"]}\n"
           "        subscribe: {allow: [\"_INBOX_420502.>\"]}\n"
           "      }}\n"
           "    ]\n"
           "  }\n"
           "}\n";
    served_with_users s(d, "perm");
    auto url = [&](const std::string& user) { return s.url(user); };
    auto& b = *s.b;
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    std::vector<event> ev;
    for (std::size_t i = 0; i < 6; ++i)
        ev.push_back(sample_reading(i % 2 ? "420503K001" : "420502K001", i));
    for (const auto& x : pub.publish(ev).results)
        REQUIRE(x.what == wire::outcome::stored);
    CHECK_FALSE(read_text(d / "broker.log").find("broker-pass") != std::string::npos);

    auto reader = url("district-420502:reader-pass");
    auto own = run_stdout({"replay", "--jetstream", reader, "--district", "420502", "--json"});
    auto broker_own = run_stdout({"replay", "--query", b.query, "--district", "420502", "--json"});
    CHECK(own.code == 0);
    CHECK(own.lines.size() == 3);
    CHECK(own.lines == broker_own.lines);

    // Another district, or the whole stream: the servers refuse the consumer.
    for (const auto& scope : std::vector<std::vector<std::string>>{{"--district", "420503"}, {}}) {
        auto other = run(with({"replay", "--jetstream", reader, "--jetstream-inbox",
                               "_INBOX_420502", "--timeout", "2"},
                              scope));
        INFO((other.lines.empty() ? std::string() : other.lines.back()));
        CHECK(other.code == 1);
        CHECK(has(other, "the NATS servers refused reading"));
        CHECK_FALSE(has(other, "420503K001\""));
    }

    // Nor may it subscribe to another district's subject itself.
    natsConnection* nc = nullptr;
    REQUIRE(natsConnection_ConnectTo(&nc, reader.c_str()) == NATS_OK);
    natsSubscription* sub = nullptr;
    REQUIRE(natsConnection_SubscribeSync(&sub, nc, "pingan.events.420503.>") == NATS_OK);
    (void)natsConnection_FlushTimeout(nc, 2000);
    const char* text = nullptr;
    CHECK(natsConnection_GetLastError(nc, &text) == NATS_NOT_PERMITTED);
    CHECK_THAT(
        std::string(text ? text : ""),
        Catch::Contains("Permissions Violation for Subscription to \"pingan.events.420503.>\""));
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
}

namespace {

// A CURVE public key, as an access table names its clients.
std::string fresh_public_key() {
    char pub[41], sec[41];
    REQUIRE(zmq_curve_keypair(pub, sec) == 0);
    return pub;
}

// A city's broker: its own stream, on a subject of its own, on the servers at `url`.
std::vector<std::string> city_flags(const std::string& url, const std::string& stream,
                                    const std::string& subject) {
    return with(replication_flags({url}),
                {"--jetstream-stream", stream, "--jetstream-subject", subject});
}

// The broker of Yichang (420500) or Wuhan (420100), its store and log in `d`.
broker_process city_broker(const temp_dir& d, const std::string& store, const std::string& url,
                           const std::string& stream) {
    auto code = stream == "YICHANG" ? "420500" : "420100";
    auto name = stream == "YICHANG" ? "yichang" : "wuhan";
    return broker_process(d / store,
                          city_flags(url, stream, std::string("pingan.") + code + ".events"),
                          d / (std::string(name) + ".log"), "info");
}

// A receipt of a city-wide page: of no school and no district.
event city_wide_receipt() {
    auto e = sample_hazard();
    e.school.clear();
    notification_delivered r;
    r.notification_id = "N-1";
    r.incident_id = "INC-1";
    r.receiver = "city-duty";
    r.channel = "file";
    r.attempt = 1;
    e.body = r;
    return e;
}

void publish_stored(ingest_client& pub, std::span<const event> ev) {
    auto r = pub.publish(ev);
    REQUIRE(r.results.size() == ev.size());
    for (const auto& x : r.results) {
        INFO(x.message);
        REQUIRE(x.what == wire::outcome::stored);
    }
}

// The lines of `pingan replay --province ... --json`, by city, each without
// its city: the line the city's own replay prints.
std::map<std::string, std::vector<std::string>> by_city(const std::vector<std::string>& lines) {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& l : lines) {
        auto city = nlohmann::json::parse(l).at("city").get<std::string>();
        auto head = "{\"city\":\"" + city + "\",";
        REQUIRE(l.starts_with(head));
        out[city].push_back("{" + l.substr(head.size()));
    }
    return out;
}

// A city's offsets in its lines are 1, 2, 3...
void check_dense(const std::vector<std::string>& lines) {
    std::uint64_t expect = 1;
    for (const auto& l : lines)
        CHECK(nlohmann::json::parse(l)["offset"] == expect++);
}

} // namespace

TEST_CASE("pingan access nats gives each client that may query a NATS user narrowed to its "
          "scope, and the servers hold each reader to it",
          "[jetstream][reader]") {
    temp_dir d;
    std::ofstream(d / "access.yaml") << "clients:\n"
                                        "  - {identity: \"school:420502K001\", key: \""
                                     << fresh_public_key()
                                     << "\", scope: {school: 420502K001}, may: [publish, query]}\n"
                                        "  - {identity: \"school:420502K002\", key: \""
                                     << fresh_public_key()
                                     << "\", scope: {school: 420502K002}, may: [publish]}\n"
                                        "  - {identity: \"bureau:420503\", key: \""
                                     << fresh_public_key()
                                     << "\", scope: {district: \"420503\"}, may: [query, act]}\n"
                                        "  - {identity: auditor, key: \""
                                     << fresh_public_key() << "\", scope: city, may: [query]}\n";
    auto made = run_stdout({"access", "nats", "--access", d / "access.yaml"});
    REQUIRE(made.code == 0);
    std::string conf;
    for (const auto& l : made.lines)
        conf += l + "\n";
    // The publisher that may not query has no user; each reader has one.
    CHECK_THAT(conf, Catch::Contains("clients that may not query (1) have none"));
    CHECK_FALSE(conf.find("420502K002") != std::string::npos);
    CHECK_THAT(conf, Catch::Contains("{user: \"school-420502K001\", password: "
                                     "$PINGAN_NATS_SCHOOL_420502K001"));
    CHECK_THAT(conf, Catch::Contains("$JS.API.CONSUMER.CREATE.PINGAN.*.pingan.events.420503.>"));
    std::ofstream(d / "nats.conf") << conf;
    // Two clients that would be one NATS user, or an account that is not a name: refused.
    std::ofstream(d / "twins.yaml")
        << "clients:\n"
           "  - {identity: \"bureau:420503\", key: \""
        << fresh_public_key()
        << "\", scope: {district: \"420503\"}, may: [query]}\n"
           "  - {identity: \"bureau-420503\", key: \""
        << fresh_public_key() << "\", scope: {district: \"420503\"}, may: [query]}\n";
    auto twins = run({"access", "nats", "--access", d / "twins.yaml"});
    CHECK(twins.code == 2);
    // (named in the table's key order, which the fresh keys make either way)
    CHECK((has(twins, "clients bureau:420503 and bureau-420503 would both") ||
           has(twins, "clients bureau-420503 and bureau:420503 would both")));
    CHECK(
        has(twins, "would both be NATS user bureau-420503 (password $PINGAN_NATS_BUREAU_420503)"));
    auto account = run({"access", "nats", "--access", d / "access.yaml", "--account", "A B"});
    CHECK(account.code == 2);
    CHECK(has(account, "--account A B: use letters, digits, '-' and '_' only"));
    ::setenv("PINGAN_NATS_BROKER", "broker-pass", 1);
    ::setenv("PINGAN_NATS_SCHOOL_420502K001", "school-pass", 1);
    ::setenv("PINGAN_NATS_BUREAU_420503", "bureau-pass", 1);
    ::setenv("PINGAN_NATS_AUDITOR", "auditor-pass", 1);

    served_with_users s(d, "made");
    auto url = [&](const std::string& user) { return s.url(user); };
    auto& b = *s.b;
    zmq::context_t ctx(1);
    ingest_client pub(ctx, b.ingest);
    std::vector<event> ev;
    for (std::size_t i = 0; i < 9; ++i)
        ev.push_back(
            sample_reading(std::array{"420502K001", "420502K002", "420503K001"}[i % 3], i));
    for (const auto& x : pub.publish(ev).results)
        REQUIRE(x.what == wire::outcome::stored);

    // Each reader reads its scope, the same lines as the broker's replay.
    struct reader {
        std::string user;
        std::vector<std::string> scope;
        std::size_t records;
    };
    for (const auto& r :
         std::vector<reader>{{"school-420502K001:school-pass", {"--school", "420502K001"}, 3},
                             {"bureau-420503:bureau-pass", {"--district", "420503"}, 3},
                             {"auditor:auditor-pass", {}, 9}}) {
        INFO(r.user);
        auto own = run_stdout(with({"replay", "--jetstream", url(r.user), "--json"}, r.scope));
        auto broker_own = run_stdout(with({"replay", "--query", b.query, "--json"}, r.scope));
        CHECK(own.code == 0);
        CHECK(own.lines.size() == r.records);
        CHECK(own.lines == broker_own.lines);
    }

    // Outside its scope, the servers refuse the consumer.
    for (const auto& r : std::vector<reader>{
             {"school-420502K001:school-pass",
              {"--school", "420502K002", "--jetstream-inbox", "_INBOX_420502K001"},
              0},
             {"bureau-420503:bureau-pass",
              {"--district", "420502", "--jetstream-inbox", "_INBOX_420503"},
              0},
             {"school-420502K001:school-pass", {"--jetstream-inbox", "_INBOX_420502K001"}, 0}}) {
        INFO(r.user);
        auto other = run(with({"replay", "--jetstream", url(r.user), "--timeout", "2"}, r.scope));
        CHECK(other.code == 1);
        CHECK(has(other, "the NATS servers refused reading"));
    }
}

TEST_CASE("a province mirrors its cities' streams: pingan replay --province reads every city, "
          "each in its offset order with its own bytes, and one district across cities",
          "[jetstream][province]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    auto yichang = city_broker(d, "yichang", n.url(), "YICHANG");
    auto wuhan = city_broker(d, "wuhan", n.url(), "WUHAN");
    zmq::context_t ctx(1);
    ingest_client to_yichang(ctx, yichang.ingest), to_wuhan(ctx, wuhan.ingest);
    std::vector<event> ev;
    for (std::size_t i = 0; i < 6; ++i)
        ev.push_back(sample_reading(i % 2 ? "420503K001" : "420502K001", i));
    ev.push_back(sample_hazard("420503K002"));
    ev.push_back(city_wide_receipt());
    publish_stored(to_yichang, ev);
    // Wuhan has a backlog when the province is made: the mirror's catch-up rate.
    const std::size_t backlog = 20000;
    for (std::size_t i = 0; i < backlog; i += 500) {
        std::vector<event> batch;
        for (std::size_t k = i; k < i + 500; ++k)
            batch.push_back(sample_reading(k % 4 ? "420502K001" : "420503K001", 1000 + k));
        publish_stored(to_wuhan, batch);
    }
    // The record of no school and no district is on the `_` subject of its city.
    CHECK(reader.at(8, "YICHANG")->subject == "pingan.420500.events._._");
    CHECK(reader.at(1, "WUHAN")->subject == "pingan.420100.events.420503.420503K001");

    auto made = run({"province", "create", "--jetstream", n.url(), "--province", "HUBEI", "--city",
                     "YICHANG", "--city", "WUHAN"});
    // The rate is of what is mirrored after the command returned.
    auto t0 = std::chrono::steady_clock::now();
    auto at_t0 = reader.last("HUBEI_WUHAN");
    CHECK(made.code == 0);
    CHECK(has(made, "HUBEI_YICHANG mirrors YICHANG (pingan.420500.events.>): created"));
    CHECK(has(made, "HUBEI_WUHAN mirrors WUHAN (pingan.420100.events.>): created"));
    CHECK(reader.wait_last(backlog, "HUBEI_WUHAN") == backlog);
    auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    WARN("HUBEI_WUHAN mirrored " << backlog - at_t0 << " records of a backlog of " << backlog
                                 << " in " << took << " s: "
                                 << static_cast<long>((backlog - at_t0) / took) << " records/s");
    CHECK(reader.wait_last(ev.size(), "HUBEI_YICHANG") == ev.size());
    // The mirror's sequence is the city's offset, its bytes the city's.
    for (std::uint64_t s : {std::uint64_t{1}, std::uint64_t{8}}) {
        CHECK(reader.at(s, "HUBEI_YICHANG")->data == reader.at(s, "YICHANG")->data);
        CHECK(reader.at(s, "HUBEI_YICHANG")->subject == reader.at(s, "YICHANG")->subject);
    }
    // Made again: the mirrors are kept.
    auto again = run({"province", "create", "--jetstream", n.url(), "--province", "HUBEI", "--city",
                      "YICHANG", "--city", "WUHAN"});
    CHECK(again.code == 0);
    CHECK(has(again, "HUBEI_YICHANG mirrors YICHANG (pingan.420500.events.>): there already, 8 "
                     "records"));

    // Every city, each with its own offsets, the lines of its own replay.
    auto province = [&](std::vector<std::string> args) {
        auto r = run_stdout(with({"replay", "--jetstream", n.url(), "--province", "HUBEI"}, args));
        CHECK(r.code == 0);
        return r.lines;
    };
    auto city_replay = [&](const broker_process& b, std::vector<std::string> args) {
        auto r = run_stdout(with({"replay", "--query", b.query}, args));
        CHECK(r.code == 0);
        return r.lines;
    };
    auto all = by_city(province({"--json"}));
    REQUIRE(all.size() == 2);
    CHECK(all["YICHANG"] == city_replay(yichang, {"--json"}));
    CHECK(all["WUHAN"] == city_replay(wuhan, {"--json"}));
    CHECK(all["WUHAN"].size() == backlog);
    check_dense(all["YICHANG"]);
    check_dense(all["WUHAN"]);
    auto receipt = nlohmann::json::parse(all["YICHANG"].back());
    CHECK(receipt["type"] == "notification.delivered");
    CHECK(receipt["school"] == "");

    // One district across cities: a consumer of its subjects in each city.
    auto district = by_city(province({"--json", "--district", "420503"}));
    CHECK(district["YICHANG"] == city_replay(yichang, {"--json", "--district", "420503"}));
    CHECK(district["WUHAN"] == city_replay(wuhan, {"--json", "--district", "420503"}));
    CHECK(district["YICHANG"].size() == 4);
    CHECK(district["WUHAN"].size() == backlog / 4);
    for (const auto& [city, lines] : district)
        for (const auto& l : lines)
            CHECK(nlohmann::json::parse(l)["district"] == "420503");

    // Lines for people begin with their city; --type, --from and --limit as in a city.
    auto people = province({"--type", "hazard."});
    REQUIRE(people.size() == 1);
    CHECK(people[0] == "YICHANG " + city_replay(yichang, {"--type", "hazard."}).at(0));
    auto from = by_city(province({"--json", "--from", "5"}));
    CHECK(from["YICHANG"] == city_replay(yichang, {"--json", "--from", "5"}));
    CHECK(from["WUHAN"].size() == backlog - 4);
    CHECK(province({"--limit", "3"}).size() == 3);

    // --follow: what is there, then each city's new records as they are stored.
    process follow(pingan_argv({"replay", "--jetstream", n.url(), "--province", "HUBEI",
                                "--district", "420502", "--json", "--follow"}));
    for (std::size_t i = 0; i < 3 + backlog * 3 / 4; ++i)
        REQUIRE(follow.line(std::chrono::seconds(20)));
    std::vector<event> more{sample_reading("420502K001", 90000)};
    publish_stored(to_wuhan, more);
    auto l = follow.line(std::chrono::seconds(20));
    REQUIRE(l);
    auto j = nlohmann::json::parse(*l);
    CHECK(j["city"] == "WUHAN");
    CHECK(j["id"] == more[0].id.str());
    CHECK(j["offset"] == backlog + 1);
    follow.signal(SIGTERM);
    follow.wait();
}

TEST_CASE("a province names a missing city stream, and a city's records missing from its mirror "
          "stop the reader naming the city and the offsets",
          "[jetstream][province]") {
    temp_dir d;
    auto n = nats_node::solo(d / "nats");
    stream_reader reader({n.url()});
    auto yichang = city_broker(d, "yichang", n.url(), "YICHANG");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, yichang.ingest);
    publish_stored(pub, readings(6));
    std::vector<event> psych{psych_event()};
    publish_stored(pub, psych);

    auto missing = run({"province", "create", "--jetstream", n.url(), "--province", "HUBEI",
                        "--city", "YICHANG", "--city", "WUHAN"});
    CHECK(missing.code == 1);
    CHECK(has(missing, "city stream WUHAN does not exist at " + n.url()));
    CHECK(reader.last("HUBEI_YICHANG") == 0); // nothing made
    auto none = run({"replay", "--jetstream", n.url(), "--province", "HUBEI"});
    CHECK(none.code == 1);
    CHECK(has(none, "province HUBEI has no city stream"));

    // The city's first records were removed from its stream before the province mirrored it.
    jsOptions po;
    jsOptions_Init(&po);
    po.Stream.Purge.Sequence = 4;
    REQUIRE(js_PurgeStream(reader.js, "YICHANG", &po, nullptr) == NATS_OK);
    auto made = run(
        {"province", "create", "--jetstream", n.url(), "--province", "HUBEI", "--city", "YICHANG"});
    CHECK(made.code == 0);
    CHECK(reader.wait_last(7, "HUBEI_YICHANG") == 7);
    auto gap = run({"replay", "--jetstream", n.url(), "--province", "HUBEI"});
    CHECK(gap.code == 1);
    CHECK(has(gap, "stream HUBEI_YICHANG (city YICHANG) holds no record at offset 1 to 3 (the "
                   "next it holds is 4)"));
    auto rest = run_stdout(
        {"replay", "--jetstream", n.url(), "--province", "HUBEI", "--from", "4", "--json"});
    CHECK(rest.code == 0);
    REQUIRE(rest.lines.size() == 4);
    // Minors' details read redacted, as from a city's stream.
    auto j = nlohmann::json::parse(rest.lines.back());
    CHECK(j["city"] == "YICHANG");
    CHECK(j["type"] == "psych.alert");
    CHECK(j["body"]["student_ref"] == "redacted");
    CHECK(rest.lines.back().find(secret_ref) == std::string::npos);
}

TEST_CASE("a province mirrors a city stream of another NATS system through a leaf node and its "
          "JetStream domain",
          "[jetstream][province]") {
    temp_dir d;
    // The province's servers: JetStream domain hubei, taking leaf node connections.
    int leaf_port = free_port();
    std::ofstream(d / "hubei.conf") << "jetstream { domain: hubei }\n"
                                       "leafnodes { listen: \"127.0.0.1:"
                                    << leaf_port << "\" }\n";
    nats_node hubei;
    hubei.dir = d / "hubei";
    hubei.name = "hubei";
    hubei.config = d / "hubei.conf";
    hubei.start();
    // The city's own servers: JetStream domain yichang, a leaf node of the province's.
    std::ofstream(d / "yichang.conf") << "jetstream { domain: yichang }\n"
                                         "leafnodes { remotes: [{url: \"nats-leaf://127.0.0.1:"
                                      << leaf_port << "\"}] }\n";
    nats_node city;
    city.dir = d / "yichang";
    city.name = "yichang";
    city.config = d / "yichang.conf";
    city.start();
    stream_reader at_city({city.url()}), at_province({hubei.url()});
    auto yichang = city_broker(d, "store", city.url(), "YICHANG");
    zmq::context_t ctx(1);
    ingest_client pub(ctx, yichang.ingest);
    publish_stored(pub, readings(5));

    // The leaf node connects in the background: the city's domain answers once it is up.
    run_result made{};
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    do {
        made = run({"province", "create", "--jetstream", hubei.url(), "--province", "HUBEI",
                    "--city", "YICHANG@yichang"});
    } while (made.code != 0 && std::chrono::steady_clock::now() < until);
    INFO((made.lines.empty() ? std::string() : made.lines.back()));
    CHECK(made.code == 0);
    CHECK(has(made, "HUBEI_YICHANG mirrors YICHANG (pingan.420500.events.>) from JetStream domain "
                    "yichang: created"));
    CHECK(at_province.wait_last(5, "HUBEI_YICHANG") == 5);
    CHECK(at_province.last("YICHANG") == 0); // the city's stream is in the city's servers only
    auto r = run_stdout({"replay", "--jetstream", hubei.url(), "--province", "HUBEI", "--json"});
    CHECK(r.code == 0);
    auto lines = by_city(r.lines);
    CHECK(lines["YICHANG"] == run_stdout({"replay", "--query", yichang.query, "--json"}).lines);
    check_dense(lines["YICHANG"]);
    // Records stored later reach the province too.
    publish_stored(pub, readings(2, 50));
    CHECK(at_province.wait_last(7, "HUBEI_YICHANG") == 7);
    auto mirrored = at_province.at(7, "HUBEI_YICHANG");
    REQUIRE(mirrored);
    CHECK(mirrored->data == at_city.at(7, "YICHANG").value().data);
    // Made again: the mirror is kept, and named with its domain.
    CHECK(has(run({"province", "create", "--jetstream", hubei.url(), "--province", "HUBEI",
                   "--city", "YICHANG@yichang"}),
              "HUBEI_YICHANG mirrors YICHANG (pingan.420500.events.>) from JetStream domain "
              "yichang: there already, 7 records"));

    // A city stream that the city's domain does not hold is named with it.
    auto missing = run({"province", "create", "--jetstream", hubei.url(), "--province", "HUBEI",
                        "--city", "WUHAN@yichang"});
    CHECK(missing.code == 1);
    CHECK(has(missing, "city stream WUHAN does not exist at " + hubei.url() +
                           " in JetStream domain yichang"));

    // Two cities on one subject could not be told apart: refused, naming both.
    {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char* subjects[] = {"pingan.420500.events.>"};
        sc.Name = "WUHAN";
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        jsStreamInfo* si = nullptr;
        REQUIRE(js_AddStream(&si, at_province.js, &sc, nullptr, nullptr) == NATS_OK);
        jsStreamInfo_Destroy(si);
    }
    auto same = run({"province", "create", "--jetstream", hubei.url(), "--province", "HUBEI",
                     "--city", "YICHANG@yichang", "--city", "WUHAN"});
    CHECK(same.code == 1);
    CHECK(has(same, "cities YICHANG and WUHAN publish on pingan.420500.events.> and "
                    "pingan.420500.events.>: give each city's broker a subject of its own"));
    CHECK(at_province.last("HUBEI_WUHAN") == 0);
}

TEST_CASE("with per-user subject permissions a provincial reader of one district reads it in "
          "every city and is refused another district",
          "[jetstream][province]") {
    temp_dir d;
    // The configuration of docs/replication.md, "Province".
    std::ofstream(d / "nats.conf")
        << "accounts {\n"
           "  PROVINCE {\n"
           "    jetstream: enabled\n"
           "    users: [\n"
           "      {user: admin, password: admin-pass}\n"
           "      {user: province-420503, password: reader-pass, permissions: {\n"
           "        publish: {allow: [\"$JS.API.STREAM.NAMES\", \"$JS.API.STREAM.INFO.*\",\n"
           "                          \"$JS.API.CONSUMER.CREATE.*.*.pingan.*.events.420503.>\",\n"
           "                          \"$JS.API.CONSUMER.INFO.*.*\", \"$JS.FC.>\"]}\n"
           "        subscribe: {allow: [\"_INBOX_420503.>\"]}\n"
           "      }}\n"
           "      {user: no-info, password: reader-pass, permissions: {\n"
           "        publish: {allow: [\"$JS.API.STREAM.NAMES\"]}\n"
           "        subscribe: {allow: [\"_INBOX_420503.>\"]}\n"
           "      }}\n"
           "    ]\n"
           "  }\n"
           "}\n";
    nats_node n;
    n.dir = d / "nats";
    n.name = "perm";
    n.config = d / "nats.conf";
    n.start();
    auto url = [&](const std::string& user) {
        return "nats://" + user + "@127.0.0.1:" + std::to_string(n.port);
    };
    auto admin = url("admin:admin-pass");
    stream_reader reader({admin});
    auto yichang = city_broker(d, "yichang", admin, "YICHANG");
    auto wuhan = city_broker(d, "wuhan", admin, "WUHAN");
    zmq::context_t ctx(1);
    ingest_client to_yichang(ctx, yichang.ingest), to_wuhan(ctx, wuhan.ingest);
    std::vector<event> ev;
    for (std::size_t i = 0; i < 6; ++i)
        ev.push_back(sample_reading(i % 2 ? "420503K001" : "420502K001", i));
    publish_stored(to_yichang, ev);
    publish_stored(to_wuhan, readings(3, 10));
    std::vector<event> one{sample_reading("420503K001", 20)};
    publish_stored(to_wuhan, one);
    REQUIRE(run({"province", "create", "--jetstream", admin, "--province", "HUBEI", "--city",
                 "YICHANG", "--city", "WUHAN"})
                .code == 0);
    REQUIRE(reader.wait_last(6, "HUBEI_YICHANG") == 6);
    REQUIRE(reader.wait_last(4, "HUBEI_WUHAN") == 4);

    auto reader_url = url("province-420503:reader-pass");
    auto own = run_stdout({"replay", "--jetstream", reader_url, "--province", "HUBEI", "--district",
                           "420503", "--json"});
    CHECK(own.code == 0);
    auto lines = by_city(own.lines);
    CHECK(lines["YICHANG"] ==
          run_stdout({"replay", "--query", yichang.query, "--district", "420503", "--json"}).lines);
    CHECK(lines["WUHAN"] ==
          run_stdout({"replay", "--query", wuhan.query, "--district", "420503", "--json"}).lines);
    CHECK(lines["YICHANG"].size() == 3);
    CHECK(lines["WUHAN"].size() == 1);

    // Another district, or the whole province: the servers refuse the consumers.
    for (const auto& scope : std::vector<std::vector<std::string>>{{"--district", "420502"}, {}}) {
        auto other = run(with({"replay", "--jetstream", reader_url, "--province", "HUBEI",
                               "--jetstream-inbox", "_INBOX_420503", "--timeout", "2"},
                              scope));
        INFO((other.lines.empty() ? std::string() : other.lines.back()));
        CHECK(other.code == 1);
        CHECK(has(other, "the NATS servers refused reading"));
        CHECK_FALSE(has(other, "420502K001\""));
    }
    // Without the streams' information it cannot tell which city a mirror copies.
    auto blind = run({"replay", "--jetstream", url("no-info:reader-pass"), "--province", "HUBEI",
                      "--district", "420503", "--timeout", "2"});
    CHECK(blind.code == 1);
    CHECK(has(blind, "the NATS servers refused the information of stream HUBEI_WUHAN of province "
                     "HUBEI"));
}
