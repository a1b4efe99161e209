// Tests of common/publisher.hpp against a fake ingest ROUTER on 127.0.0.1.
#include "common/publisher.hpp"
#include "common/endpoints.hpp"
#include "fake_broker.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/null_sink.h>

using namespace pingan;
using namespace std::chrono_literals;

namespace {

namespace net = boost::asio;

std::shared_ptr<spdlog::logger> quiet() {
    return std::make_shared<spdlog::logger>("test",
                                            std::make_shared<spdlog::sinks::null_sink_mt>());
}

// Runs the io_context until `done` holds or `limit` passes. Returns: done().
template <class F> bool run_until(net::io_context& ioc, F done, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
        ioc.restart();
        ioc.run_for(20ms);
    }
    return done();
}

// A port that was free a moment ago, for a broker that starts later.
std::string free_endpoint() {
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::router);
    s.set(zmq::sockopt::linger, 0);
    s.bind("tcp://127.0.0.1:*");
    return s.get(zmq::sockopt::last_endpoint);
}

} // namespace

TEST_CASE("every outbox event is stored and the outbox ends empty", "[publisher]") {
    test::temp_dir dir;
    test::fake_broker broker;
    net::io_context ioc;
    outbox box(dir.path());
    for (int i = 0; i < 300; ++i)
        box.add(test::sample_reading("420502K001", i));
    publisher pub(ioc, box, {.endpoint = broker.endpoint(), .max_batch = 16}, quiet());
    pub.start();
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    CHECK(broker.stored() == 300);
    CHECK(broker.duplicates() == 0);
    auto h = pub.health();
    CHECK(h.stored == 300);
    CHECK(h.connected);
    CHECK(h.last_answer_at.has_value());
    // Pipelined: far fewer requests than events, as batches of 16 at most.
    CHECK(broker.requests() >= 300 / 16);
    CHECK(broker.requests() < 300);
    pub.stop();
}

TEST_CASE("events made while the broker is down are delivered once it starts", "[publisher]") {
    test::temp_dir dir;
    auto endpoint = free_endpoint();
    net::io_context ioc;
    outbox box(dir.path());
    publisher pub(ioc, box, {.endpoint = endpoint, .backoff_max = 200ms}, quiet());
    pub.start();
    for (int i = 0; i < 20; ++i) {
        box.add(test::sample_hazard());
        pub.notify();
    }
    run_until(
        ioc, [] { return false; }, 500ms);
    CHECK(box.depth() == 20);
    CHECK_FALSE(pub.health().connected);

    test::fake_broker broker(endpoint);
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    CHECK(broker.stored() == 20);
    CHECK(pub.health().connected);
}

TEST_CASE("a lost reply is resent with the same id and stored once", "[publisher]") {
    test::temp_dir dir;
    test::fake_broker broker;
    broker.drop_next(1);
    net::io_context ioc;
    outbox box(dir.path());
    for (int i = 0; i < 5; ++i)
        box.add(test::sample_hazard());
    publisher pub(ioc, box,
                  {.endpoint = broker.endpoint(), .resend_timeout = 300ms, .backoff_initial = 50ms},
                  quiet());
    pub.start();
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    // The first request was stored by the broker but its answer lost: the
    // resend comes back as duplicates, and the broker holds each id once.
    CHECK(broker.stored() == 5);
    CHECK(broker.received() == 10);
    CHECK(broker.duplicates() == 5);
    CHECK(pub.health().duplicates == 5);
    CHECK(pub.health().reconnects >= 1);
}

TEST_CASE("a rejected event goes to the dead-letter table and is not retried", "[publisher]") {
    test::temp_dir dir;
    test::fake_broker broker;
    broker.reject_school("420502K002");
    net::io_context ioc;
    outbox box(dir.path());
    box.add(test::sample_hazard("420502K001"));
    auto bad = test::sample_hazard("420502K002");
    box.add(bad);
    box.add(test::sample_hazard("420502K001"));
    publisher pub(ioc, box, {.endpoint = broker.endpoint()}, quiet());
    std::vector<wire::outcome> seen;
    pub.on_result([&](const outbox::entry&, const wire::result& r) { seen.push_back(r.what); });
    pub.start();
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    run_until(
        ioc, [] { return false; }, 300ms);
    CHECK(broker.received() == 3);
    CHECK(broker.stored() == 2);
    REQUIRE(box.dead_count() == 1);
    CHECK(box.dead_letters(1)[0].id == bad.id);
    CHECK(box.dead_letters(1)[0].code == errc::unknown_school);
    CHECK(seen ==
          std::vector{wire::outcome::stored, wire::outcome::rejected, wire::outcome::stored});
    CHECK(pub.health().rejected == 1);
}

TEST_CASE("a publisher restarted over the same outbox sends what was left", "[publisher]") {
    test::temp_dir dir;
    test::fake_broker broker;
    {
        broker.drop_next(1000); // nothing is answered
        net::io_context ioc;
        outbox box(dir.path());
        for (int i = 0; i < 7; ++i)
            box.add(test::sample_hazard());
        publisher pub(ioc, box, {.endpoint = broker.endpoint()}, quiet());
        pub.start();
        REQUIRE(run_until(
            ioc, [&] { return broker.requests() > 0; }, 5s));
        pub.stop();
        CHECK(box.depth() == 7);
    }
    broker.drop_next(0);
    net::io_context ioc;
    outbox box(dir.path());
    publisher pub(ioc, box, {.endpoint = broker.endpoint()}, quiet());
    pub.start();
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    CHECK(broker.stored() == 7);
}

TEST_CASE("nacks that a resend may cure are transient and all others are permanent",
          "[publisher]") {
    struct row {
        errc code;
        nack_kind kind;
    };
    const row table[] = {
        {errc::malformed_json, nack_kind::permanent},
        {errc::missing_field, nack_kind::permanent},
        {errc::wrong_type, nack_kind::permanent},
        {errc::unknown_enum, nack_kind::permanent},
        {errc::unknown_type, nack_kind::permanent},
        {errc::invalid_utf8, nack_kind::permanent},
        {errc::too_long, nack_kind::permanent},
        {errc::unknown_school, nack_kind::permanent},
        {errc::bad_value, nack_kind::permanent},
        {errc::bad_id, nack_kind::permanent},
        {errc::undecodable, nack_kind::permanent},
        {errc::unsupported_version, nack_kind::permanent},
        {errc::message_too_large, nack_kind::permanent},
        {errc::batch_too_large, nack_kind::permanent},
        {errc::bad_command, nack_kind::permanent},
        {errc::not_found, nack_kind::permanent},
        {errc::unauthorized, nack_kind::transient},
        {errc::forbidden, nack_kind::permanent},
        {errc::shutting_down, nack_kind::transient},
        {errc::store_failure, nack_kind::transient},
        {errc::internal, nack_kind::permanent},
        {errc::bad_config, nack_kind::permanent},
        {errc::io_error, nack_kind::permanent},
        {errc::tampered, nack_kind::permanent},
        {static_cast<errc>(999), nack_kind::permanent}, // a code from a newer broker
    };
    for (const auto& r : table) {
        INFO(std::string(errc_name(r.code)) << " (" << static_cast<int>(r.code) << ")");
        CHECK(classify_nack(r.code) == r.kind);
    }
}

TEST_CASE("an event nacked with store_failure stays in the outbox and is stored on a resend",
          "[publisher]") {
    test::temp_dir dir;
    test::fake_broker broker;
    broker.nack_next(1, errc::store_failure);
    net::io_context ioc;
    outbox box(dir.path());
    auto ev = test::sample_hazard();
    box.add(ev);
    publisher pub(ioc, box,
                  {.endpoint = broker.endpoint(), .backoff_initial = 50ms, .backoff_max = 200ms},
                  quiet());
    std::vector<wire::outcome> seen;
    pub.on_result([&](const outbox::entry&, const wire::result& r) { seen.push_back(r.what); });
    pub.start();
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    CHECK(box.dead_count() == 0);
    CHECK(broker.received() == 2); // the nacked send and the resend
    CHECK(broker.stored() == 1);
    CHECK(broker.duplicates() == 0);
    CHECK(seen == std::vector{wire::outcome::stored}); // only the settlement is reported
    auto h = pub.health();
    CHECK(h.nacks_retried == 1);
    CHECK(h.rejected == 0);
    CHECK(h.stored == 1);
    CHECK(h.reconnects == 0); // resent on the same connection, not by the no-answer timeout
}

TEST_CASE("an event nacked with a permanent code such as internal is dead-lettered at once",
          "[publisher]") {
    auto code = GENERATE(errc::internal, errc::forbidden, errc::bad_value);
    test::temp_dir dir;
    test::fake_broker broker;
    broker.nack_next(1, code);
    net::io_context ioc;
    outbox box(dir.path());
    auto bad = test::sample_hazard();
    box.add(bad);
    auto good = test::sample_hazard();
    box.add(good);
    publisher pub(ioc, box, {.endpoint = broker.endpoint(), .backoff_initial = 50ms}, quiet());
    pub.start();
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    // A probe sent afterwards: had the refused event been kept for a resend,
    // it would go out again before or with the probe.
    box.add(test::sample_hazard());
    pub.notify();
    REQUIRE(run_until(
        ioc, [&] { return broker.stored() == 2 && box.depth() == 0; }, 10s));
    CHECK(broker.received() == 3);
    CHECK(broker.duplicates() == 0);
    REQUIRE(box.dead_count() == 1);
    CHECK(box.dead_letters(1)[0].id == bad.id);
    CHECK(box.dead_letters(1)[0].code == code);
    CHECK(pub.health().rejected == 1);
    CHECK(pub.health().nacks_retried == 0);
}

TEST_CASE("with a leader and a standby named, events go to whichever broker listens",
          "[publisher]") {
    test::temp_dir dir;
    auto standby_endpoint = free_endpoint();
    net::io_context ioc;
    outbox box(dir.path());
    auto leader = std::make_unique<test::fake_broker>();
    publisher pub(ioc, box,
                  {.endpoint = leader->endpoint() + "," + standby_endpoint,
                   .resend_timeout = 300ms,
                   .backoff_initial = 50ms,
                   .backoff_max = 200ms},
                  quiet());
    pub.start();
    for (int i = 0; i < 10; ++i)
        box.add(test::sample_reading("420502K001", i));
    pub.notify();
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    CHECK(leader->stored() == 10);

    // The leader goes; the standby starts listening where the list names it.
    leader.reset();
    for (int i = 10; i < 20; ++i)
        box.add(test::sample_reading("420502K001", i));
    pub.notify();
    test::fake_broker standby(standby_endpoint);
    REQUIRE(run_until(
        ioc, [&] { return box.depth() == 0; }, 10s));
    CHECK(standby.stored() == 10);
    pub.stop();
}

TEST_CASE("a broker list is split at commas, empty items left out", "[publisher]") {
    CHECK(split_endpoints("tcp://a:1") == std::vector<std::string>{"tcp://a:1"});
    CHECK(split_endpoints("tcp://a:1,tcp://b:2") ==
          std::vector<std::string>{"tcp://a:1", "tcp://b:2"});
    CHECK(split_endpoints(",tcp://a:1,,") == std::vector<std::string>{"tcp://a:1"});
    CHECK(split_endpoints("").empty());
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    CHECK_THROWS_AS(connect_each(s, ","), error);
}
