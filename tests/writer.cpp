// Tests of the broker's writer when a transaction fails: a real broker, in
// this process so that its store can be told to fail (store_faults.hpp) and
// its processor can throw, on real ZeroMQ sockets and real LMDB files. Each
// runs twice: with the writer in ingest's turns (the default) and on a thread
// of its own (broker_options::commit_on_ingest false).
#include "broker/server/broker.hpp"
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "process.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;

namespace {

// Throws on a hazard whose id is "POISON", as a processor bug would on one
// unlucky event; optionally has a timer always due whose firing throws.
class poison_processor final : public processor {
  public:
    std::atomic<bool> timer_always_due{false};
    std::atomic<int> fire_attempts{0};
    std::atomic<int> reloads{0};

    void open(state_store&) override {}
    void reload(state_store&) override { ++reloads; }
    void apply(const event& e, state_store& s, std::vector<event>&) override {
        if (auto* h = std::get_if<hazard_reported>(&e.body); h && h->hazard_id == "POISON")
            throw std::runtime_error("poison hazard");
        s.put("engine", "seen/" + e.id.str(), "1");
    }
    std::optional<timestamp> next_due() const override {
        if (timer_always_due) return timestamp{};
        return std::nullopt;
    }
    void fire(timestamp, state_store&, std::vector<event>&) override {
        ++fire_attempts;
        throw error(errc::store_failure, "timer storage broke");
    }
};

event hazard_named(const std::string& id) {
    auto e = sample_hazard();
    std::get<hazard_reported>(e.body).hazard_id = id;
    return e;
}

struct running_broker {
    system_clock clk;
    broker b;
    zmq::context_t ctx{1};
    ingest_client client;

    running_broker(const broker_options& o, processor* p)
        : b(o, clk, yichang(), p), client(ctx, b.bound().ingest) {
        b.start();
    }
    ~running_broker() {
        b.stop();
        b.wait();
    }
};

broker_options options_in(const temp_dir& d, bool commit_on_ingest) {
    UNSCOPED_INFO("commit_on_ingest: " << commit_on_ingest);
    broker_options o;
    o.commit_on_ingest = commit_on_ingest;
    o.data_dir = d / "store";
    o.ingest = o.feed = o.query = "tcp://127.0.0.1:*";
    o.initial_map_size = 64ull << 20;
    return o;
}

} // namespace

TEST_CASE("a poison event is nacked as internal and the broker keeps serving", "[writer]") {
    temp_dir d;
    poison_processor p;
    running_broker rb(options_in(d, GENERATE(true, false)), &p);

    std::vector<event> poison{hazard_named("POISON")};
    auto bad = rb.client.publish(poison);
    REQUIRE(bad.results.size() == 1);
    CHECK(bad.results[0].what == wire::outcome::rejected);
    CHECK(bad.results[0].code == errc::internal);
    CHECK_THAT(bad.results[0].message, Catch::Contains("poison hazard"));
    CHECK(p.reloads >= 1);

    std::vector<event> good{hazard_named("HZ-1")};
    auto ok = rb.client.publish(good);
    REQUIRE(ok.results.size() == 1);
    CHECK(ok.results[0].what == wire::outcome::stored);
    CHECK(ok.results[0].offset == 1);
}

TEST_CASE("a poison event in a batch is refused alone and the rest are stored", "[writer]") {
    temp_dir d;
    poison_processor p;
    running_broker rb(options_in(d, GENERATE(true, false)), &p);
    std::vector<event> batch{hazard_named("HZ-1"), hazard_named("POISON"), hazard_named("HZ-2")};
    auto r = rb.client.publish(batch);
    REQUIRE(r.results.size() == 3);
    CHECK(r.results[0].what == wire::outcome::stored);
    CHECK(r.results[1].what == wire::outcome::rejected);
    CHECK(r.results[1].code == errc::internal);
    CHECK(r.results[2].what == wire::outcome::stored);
    CHECK(r.results[0].offset == 1);
    CHECK(r.results[2].offset == 2);
}

TEST_CASE("a failed commit is nacked as store_failure and the next publish is stored", "[writer]") {
    temp_dir d;
    auto o = options_in(d, GENERATE(true, false));
    o.faults = std::make_shared<store_faults>();
    running_broker rb(o, nullptr);
    o.faults->fail_at(store_faults::point::commit, 1);
    std::vector<event> ev{sample_reading("420502K001", 1), sample_reading("420502K001", 2)};
    auto bad = rb.client.publish(ev);
    REQUIRE(bad.results.size() == 2);
    for (const auto& r : bad.results) {
        CHECK(r.what == wire::outcome::rejected);
        CHECK(r.code == errc::store_failure);
    }
    // The resend of the same ids is stored, from offset 1: nothing of the failed batch remains.
    auto ok = rb.client.publish(ev);
    REQUIRE(ok.results.size() == 2);
    CHECK(ok.results[0].what == wire::outcome::stored);
    CHECK(ok.results[0].offset == 1);
    CHECK(ok.results[1].offset == 2);
}

TEST_CASE("a timer that keeps failing does not hold up event batches", "[writer]") {
    temp_dir d;
    poison_processor p;
    p.timer_always_due = true;
    running_broker rb(options_in(d, GENERATE(true, false)), &p);
    // Ten publishes one after the other. Before, each waited out a one-second
    // pause after the failed timer; the bound is generous for a loaded machine.
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) {
        std::vector<event> one{sample_reading("420502K001", static_cast<std::uint64_t>(i))};
        auto r = rb.client.publish(one);
        REQUIRE(r.results.size() == 1);
        CHECK(r.results[0].what == wire::outcome::stored);
    }
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < 3s);
    CHECK(p.fire_attempts >= 1);
}

TEST_CASE("a clock move whose effects are not all stored in time is refused, naming the offset",
          "[writer]") {
    temp_dir d;
    poison_processor p;
    // Something is always due and never stored: the writer never settles.
    p.timer_always_due = true;
    manual_clock clk(at("2026-11-02T01:00:00Z"));
    auto o = options_in(d, GENERATE(true, false));
    o.clock_settle_limit = 200ms;
    broker b(o, clk, yichang(), &p, &clk);
    b.start();
    zmq::context_t ctx{1};
    query_client q(ctx, b.bound().query);
    std::string message;
    try {
        q.clock({{"advance", "10m"}});
    } catch (const error& e) {
        CHECK(e.code() == errc::store_failure);
        message = e.detail();
    }
    INFO(message);
    CHECK(message.find("the clock moved to 2026-11-02T01:10:00.000000Z") != std::string::npos);
    CHECK(message.find("not all stored within 200ms") != std::string::npos);
    CHECK(message.find("stored up to offset ") != std::string::npos);
    // The move itself happened: reading the clock shows it.
    CHECK(q.clock(json::object())["now"] == "2026-11-02T01:10:00.000000Z");
    b.stop();
    b.wait();
}
