// GET /metrics: the shared Prometheus text writer, then scrapes of a real
// broker and a real school service, before and after publishing.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "common/prometheus.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <thread>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}

struct answer {
    int status = 0;
    std::string content_type, body;
};

answer get(const std::string& host_port, const std::string& target,
           http::verb verb = http::verb::get, const std::string& body = {}) {
    auto colon = host_port.rfind(':');
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address(host_port.substr(0, colon)),
                            static_cast<unsigned short>(std::stoi(host_port.substr(colon + 1)))));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host_port);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(s, buf, res, ec);
    if (ec) return {0, {}, ec.message()};
    return {static_cast<int>(res.result_int()), std::string(res[http::field::content_type]),
            res.body()};
}

// A sample's value in an exposition, or -1 when it is not there.
double value(const std::string& text, const std::string& sample) {
    auto at = text.find("\n" + sample + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + sample.size() + 2));
}

// The sum of the samples whose line starts with `prefix`.
double sum_of(const std::string& text, const std::string& prefix) {
    double sum = 0;
    for (std::size_t at = text.find("\n" + prefix); at != std::string::npos;
         at = text.find("\n" + prefix, at + 1)) {
        auto end = text.find('\n', at + 1);
        auto line = text.substr(at + 1, end - at - 1);
        sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
}

std::uint64_t publish(const broker_process& b, event e) {
    zmq::context_t ctx(1);
    ingest_client in(ctx, b.ingest, nullptr);
    std::vector<event> batch{std::move(e)};
    auto r = in.publish(batch, 5s, 1);
    REQUIRE_FALSE(r.refused);
    REQUIRE(r.results.size() == 1);
    return r.results[0].what == wire::outcome::rejected ? 0 : r.results[0].offset;
}

} // namespace

TEST_CASE("the text writer gives every family HELP and TYPE, escapes labels and sums buckets",
          "[metrics]") {
    prom::histogram<3> h({0.1, 1, 10});
    h.observe(0.05);
    h.observe(0.5);
    h.observe(0.5);
    h.observe(50);
    prom::writer w;
    std::vector<prom::sample> s{{{{"code", "say \"hi\"\\\n"}}, 2}};
    w.counter("pingan_x_total", "Things.", 3)
        .family("pingan_y_total", "counter", "Labelled.", s)
        .histogram("pingan_z_seconds", "Times.", h.snapshot());
    auto t = w.str();
    CHECK(t.starts_with("# HELP pingan_x_total Things.\n# TYPE pingan_x_total counter\n"
                        "pingan_x_total 3\n"));
    CHECK(t.find("pingan_y_total{code=\"say \\\"hi\\\"\\\\\\n\"} 2\n") != std::string::npos);
    CHECK(t.find("# TYPE pingan_z_seconds histogram\n") != std::string::npos);
    CHECK(value(t, "pingan_z_seconds_bucket{le=\"0.1\"}") == 1);
    CHECK(value(t, "pingan_z_seconds_bucket{le=\"1\"}") == 3);
    CHECK(value(t, "pingan_z_seconds_bucket{le=\"10\"}") == 3);
    CHECK(value(t, "pingan_z_seconds_bucket{le=\"+Inf\"}") == 4);
    CHECK(value(t, "pingan_z_seconds_count") == 4);
    CHECK(value(t, "pingan_z_seconds_sum") == Approx(51.05));
}

TEST_CASE("the broker serves /metrics only when asked, and its counters move with the log",
          "[metrics]") {
    temp_dir d;
    {
        broker_process off(d / "off");
        CHECK(off.metrics.empty()); // off by default
    }
    broker_process b(d / "store", {"--metrics", "127.0.0.1:0", "--rules",
                                   source_path("config/rules/yichang-default.yaml")});
    REQUIRE(b.metrics.starts_with("127.0.0.1:")); // loopback
    auto before = get(b.metrics, "/metrics");
    REQUIRE(before.status == 200);
    CHECK(before.content_type.starts_with("text/plain; version=0.0.4"));
    for (const char* name :
         {"pingan_broker_events_total", "pingan_broker_acks_total", "pingan_broker_nacks_total",
          "pingan_broker_ingest_queue_events", "pingan_broker_commit_batch_events",
          "pingan_broker_commit_duration_seconds", "pingan_broker_feed_subscriptions",
          "pingan_broker_feed_drops_total", "pingan_broker_replay_streams",
          "pingan_broker_open_incidents", "pingan_broker_overdue_incidents"}) {
        INFO(name);
        CHECK(before.body.find("# TYPE " + std::string(name) + " ") != std::string::npos);
    }
    CHECK(value(before.body, "pingan_broker_events_total{type=\"hazard.reported\"}") == 0);
    CHECK(get(b.metrics, "/other").status == 404);
    CHECK(get(b.metrics, "/metrics", http::verb::post, "x").status == 405);

    auto h = sample_hazard("420502K001");
    h.occurred_at = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
    REQUIRE(publish(b, h) > 0);
    REQUIRE(publish(b, h) > 0); // a duplicate
    CHECK(publish(b, sample_hazard("999999X999")) == 0);
    std::string after;
    REQUIRE(eventually([&] {
        after = get(b.metrics, "/metrics").body;
        // The hazard opened an incident.
        return sum_of(after,
                      "pingan_broker_open_incidents{mode=\"Actual\",severity=\"Moderate\"") == 1;
    }));
    CHECK(value(after, "pingan_broker_events_total{type=\"hazard.reported\"}") == 1);
    CHECK(value(after, "pingan_broker_events_total{type=\"incident.opened\"}") >= 1);
    CHECK(value(after, "pingan_broker_acks_total{outcome=\"stored\"}") == 1);
    CHECK(value(after, "pingan_broker_acks_total{outcome=\"duplicate\"}") == 1);
    CHECK(value(after, "pingan_broker_nacks_total{code=\"unknown_school\"}") == 1);
    CHECK(value(after, "pingan_broker_commit_batch_events_count") >= 1);
    CHECK(value(after, "pingan_broker_commit_duration_seconds_count") >= 1);
    CHECK(value(after, "pingan_broker_overdue_incidents") == 0);
}

TEST_CASE("the feed's subscriptions end when their subscribers' connections close, on a "
          "secured broker",
          "[metrics][security]") {
    // Authenticated subscribers' notices of a closed connection carry no key:
    // they once were ignored, and the broker went on preparing the feed for
    // no one.
    temp_dir d;
    auto server = curve_generate(), city = curve_generate(), school = curve_generate();
    write_key(d / "server.key", server);
    std::ofstream(d / "clients.yaml")
        << "clients:\n  - identity: city:office\n    key: \"" << city.public_key
        << "\"\n    scope: city\n    may: [publish, query]\n"
           "  - identity: school:420502K001\n    key: \""
        << school.public_key << "\"\n    scope: {school: 420502K001}\n    may: [publish]\n";
    broker_process b(d / "store", {"--server-key", d / "server.key", "--clients",
                                   d / "clients.yaml", "--metrics", "127.0.0.1:0"});
    zmq::context_t ctx(1);
    curve_client as_city{city, server.public_key}, as_school{school, server.public_key};
    auto publish_as = [&](const curve_client& c, const std::string& code) {
        ingest_client pub(ctx, b.ingest, &c);
        auto e = sample_hazard(code);
        e.occurred_at = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
        std::vector<std::string> frames{encode(e)};
        pub.send(frames, false, "t");
        auto r = pub.receive(5s);
        return r && !r->refused && r->results.size() == 1 &&
               r->results[0].what == wire::outcome::stored;
    };
    auto subscriptions = [&] {
        return value(get(b.metrics, "/metrics").body, "pingan_broker_feed_subscriptions");
    };
    {
        feed_client all(ctx, b.feed, &as_city);
        all.subscribe("t/");
        feed_client place(ctx, b.feed, &as_city);
        place.subscribe("s/420502/");
        feed_client nosy(ctx, b.feed, &as_school);
        nosy.subscribe("t/"); // refused
        // The broker reads the notices when it publishes; they may reach it
        // after the first publication.
        CHECK(
            eventually([&] { return publish_as(as_city, "420502K002") && subscriptions() == 2; }));
        REQUIRE(all.receive(5s));
    }
    // The socket learns of a closed connection in steps, each taken when the
    // broker next publishes.
    CHECK(eventually([&] { return publish_as(as_school, "420502K001") && subscriptions() == 0; }));
}

TEST_CASE("a school service's /metrics counts what it accepted and what the broker answered",
          "[metrics]") {
    temp_dir d;
    broker_process b(d / "store");
    process hazard({bin("pingan-hazard"), "--http", "127.0.0.1:0", "--registry",
                    source_path("data/schools.csv"), "--data", d / "hazard", "--broker", b.ingest,
                    "--log-level", "warn", "--insecure-dev"});
    auto l = hazard.line(20s);
    REQUIRE(l);
    std::smatch m;
    static const std::regex re("listening http=(\\S+)");
    REQUIRE(std::regex_search(*l, m, re));
    std::string at = m[1];
    auto before = get(at, "/metrics");
    REQUIRE(before.status == 200);
    CHECK(before.body.find("pingan_service_info{service=\"pingan-hazard\",version=\"") !=
          std::string::npos);
    CHECK(value(before.body, "pingan_service_acks_total{outcome=\"stored\"}") == 0);
    CHECK(value(before.body, "pingan_service_outbox_events") == 0);
    CHECK(value(before.body, "pingan_service_dead_letters") == 0);

    json report = {{"school", "420502K001"},   {"area", "building"},
                   {"grade", "general"},       {"description", "护栏松动"},
                   {"location", "教学楼二楼"}, {"found_by", "safety_officer"}};
    REQUIRE(get(at, "/hazard/report", http::verb::post, report.dump()).status == 202);
    std::string after;
    REQUIRE(eventually([&] {
        after = get(at, "/metrics").body;
        return value(after, "pingan_service_acks_total{outcome=\"stored\"}") == 1;
    }));
    CHECK(value(after, "pingan_service_events_total{type=\"hazard.reported\"}") == 1);
    CHECK(value(after, "pingan_service_outbox_events") == 0);
    CHECK(value(after, "pingan_service_broker_connected") == 1);
}
