// pingan-notify against real processes: a broker with the default rule pack
// and a manual clock, a real pingan-notify, and receivers written here (an
// HTTP server on an ephemeral port, a shell script). Retries, give-up and the
// escalation it causes, timeouts, kill -9 and restart, the command channel,
// exercise routing, acknowledgement links and directory reloads.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/codec.hpp"
#include "nats_server.hpp"
#include "pingan_run.hpp"
#include "services/notify/channels.hpp"
#include "support.hpp"

#include <filesystem>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr const char* the_school = "420502P001"; // primary school with a canteen
constexpr const char* secret = "test-secret-0123456789";

std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}

unsigned short free_port() {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// A webhook receiver: answers each request as `decide` says, and keeps what came.
class receiver_server {
  public:
    enum class answer { ok, fail, hang };
    struct hit {
        std::string path, key, signature, body;
        answer what = answer::ok;
    };
    using decide_fn = std::function<answer(std::size_t nth, const std::string& key)>;

    explicit receiver_server(decide_fn decide = {})
        : decide_(std::move(decide)),
          acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
        thread_ = std::thread([this] { accept_loop(); });
    }
    ~receiver_server() {
        stop_ = true;
        release();
        beast::error_code ec;
        {
            // Wake the blocking accept.
            net::io_context ioc;
            tcp::socket s(ioc);
            s.connect(acceptor_.local_endpoint(), ec);
        }
        thread_.join();
        for (auto& t : sessions_)
            t.join();
    }
    std::string url(const std::string& path = "/hook") const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
    }
    std::vector<hit> hits() {
        std::lock_guard l(mu_);
        return hits_;
    }
    // Ends every hanging request (the client may be gone by then).
    void release() {
        std::lock_guard l(mu_);
        released_ = true;
        cv_.notify_all();
    }

  private:
    void accept_loop() {
        while (!stop_) {
            tcp::socket s(ioc_);
            beast::error_code ec;
            acceptor_.accept(s, ec);
            if (ec || stop_) break;
            sessions_.emplace_back([this, s = std::move(s)]() mutable { serve(std::move(s)); });
        }
    }
    void serve(tcp::socket s) {
        beast::flat_buffer buf;
        http::request<http::string_body> req;
        beast::error_code ec;
        http::read(s, buf, req, ec);
        if (ec) return;
        hit h;
        h.path = std::string(req.target());
        h.key = std::string(req["Idempotency-Key"]);
        h.signature = std::string(req["X-Pingan-Signature"]);
        h.body = req.body();
        std::size_t nth;
        {
            std::lock_guard l(mu_);
            nth = hits_.size() + 1;
        }
        h.what = decide_ ? decide_(nth, h.key) : answer::ok;
        {
            std::lock_guard l(mu_);
            hits_.push_back(h);
        }
        if (h.what == answer::hang) {
            std::unique_lock l(mu_);
            cv_.wait(l, [&] { return released_; });
            return; // close without an answer
        }
        http::response<http::string_body> res{
            h.what == answer::ok ? http::status::ok : http::status::internal_server_error, 11};
        res.body() = h.what == answer::ok ? "ok" : "broken";
        res.prepare_payload();
        http::write(s, res, ec);
    }

    decide_fn decide_;
    net::io_context ioc_;
    tcp::acceptor acceptor_;
    std::thread thread_;
    std::vector<std::thread> sessions_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<hit> hits_;
    bool released_ = false;
    std::atomic<bool> stop_{false};
};

// A broker with the default rule pack on a manual clock, and its clients.
struct live_broker {
    zmq::context_t ctx{1};
    broker_process b;
    ingest_client pub;
    query_client q;

    explicit live_broker(const std::string& data, std::vector<std::string> extra = {})
        : b(data, with_rules(std::move(extra))), pub(ctx, b.ingest), q(ctx, b.query) {}

    static std::vector<std::string> with_rules(std::vector<std::string> extra) {
        extra.insert(extra.begin(),
                     {"--rules",
                      std::string(PINGAN_SOURCE_DIR) + "/config/rules/yichang-default.yaml",
                      "--clock", "manual:2026-09-01T08:00:00+08:00"});
        return extra;
    }

    // A food illness at one canteen: the rule pack pages the school at once.
    std::uint64_t illness(const std::string& canteen, const std::string& status = "Actual") {
        auto t = *parse_utc(q.clock(json::object())["now"].get<std::string>());
        json j = {{"type", "food.alert"},
                  {"school", the_school},
                  {"status", status},
                  {"severity", "Severe"},
                  {"occurred_at", format_utc(t)},
                  {"source", "pingan-test/notify"},
                  {"body",
                   {{"canteen_id", canteen},
                    {"kind", "illness"},
                    {"meal_id", "lunch"},
                    {"cases", 2},
                    {"samples_sealed", true},
                    {"service_stopped", true},
                    {"description", "腹痛"}}}};
        event e;
        auto p = from_json(j, e);
        INFO(p.text());
        REQUIRE_FALSE(p);
        e.id = new_event_id(t);
        std::vector<event> batch{e};
        auto r = pub.publish(batch);
        REQUIRE(r.results.size() == 1);
        INFO(r.results[0].message);
        REQUIRE(r.results[0].what == wire::outcome::stored);
        return r.results[0].offset;
    }

    std::vector<json> of_type(const std::string& type) {
        std::vector<json> v;
        replay_request r;
        r.json = true;
        r.type = type;
        q.replay(r, [&](std::uint64_t, std::string_view line) {
            v.push_back(json::parse(line));
            return true;
        });
        return v;
    }
    // The school-tier pages of the food illness rule.
    std::vector<json> school_pages() {
        std::vector<json> out;
        for (auto& p : of_type("notification.requested"))
            if (p["body"]["tier"] == "school") out.push_back(p);
        return out;
    }
};

struct notify_process {
    std::unique_ptr<process> proc;
    unsigned short port = 0;
    std::uint64_t position = 0;

    notify_process(const live_broker& lb, const std::string& data, const std::string& dir,
                   std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{bin("pingan-notify"),
                                      "--data",
                                      data,
                                      "--broker",
                                      lb.b.ingest,
                                      "--feed",
                                      lb.b.feed,
                                      "--query",
                                      lb.b.query,
                                      "--http",
                                      "127.0.0.1:0",
                                      "--directory",
                                      dir,
                                      "--registry",
                                      std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv",
                                      "--retry-initial",
                                      "100ms",
                                      "--retry-max",
                                      "400ms",
                                      "--webhook-timeout",
                                      "2s",
                                      "--resend-timeout",
                                      "1s",
                                      "--metrics",
                                      "--clock",
                                      "manual:2026-09-01T08:00:00+08:00",
                                      "--log-level",
                                      "warn"};
        // A flag given in `extra` replaces the default above.
        for (std::size_t i = 0; i + 1 < extra.size(); i += 2) {
            auto it = std::find(argv.begin(), argv.end(), extra[i]);
            if (it != argv.end()) {
                *(it + 1) = extra[i + 1];
            } else {
                argv.push_back(extra[i]);
                argv.push_back(extra[i + 1]);
            }
        }
        proc = std::make_unique<process>(argv);
        auto l = proc->line(20s);
        std::smatch m;
        static const std::regex re("listening http=127\\.0\\.0\\.1:(\\d+) position=(\\d+)");
        if (!l || !std::regex_search(*l, m, re))
            throw std::runtime_error("pingan-notify did not start: " + l.value_or("(nothing)"));
        port = static_cast<unsigned short>(std::stoul(m[1]));
        position = std::stoull(m[2]);
    }
};

struct http_answer {
    int status = 0;
    std::string body;
};

http_answer request(unsigned short port, http::verb verb, const std::string& target) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(s, buf, res, ec);
    if (ec) return {0, ec.message()};
    return {static_cast<int>(res.result_int()), res.body()};
}

std::string write_file(const temp_dir& t, const std::string& name, const std::string& text) {
    auto p = t / name;
    std::ofstream(p) << text;
    return p;
}

std::string webhook_receiver(const std::string& id, const std::string& url, bool exercises = false,
                             const std::string& role = "principal") {
    return "  - id: " + id + "\n    role: " + role +
           "\n    tier: school\n    school: " + the_school +
           "\n    channel: webhook\n    url: " + url + "\n    secret: " + secret +
           "\n    exercises: " + (exercises ? "true" : "false") + "\n";
}

std::vector<json> for_page(const std::vector<json>& receipts, const std::string& page_id) {
    std::vector<json> out;
    for (const auto& r : receipts)
        if (r["body"]["notification_id"] == page_id) out.push_back(r);
    return out;
}

} // namespace

TEST_CASE("a receiver that fails twice gets the page once, after two failed receipts",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    receiver_server rx([](std::size_t nth, const std::string&) {
        return nth <= 2 ? receiver_server::answer::fail : receiver_server::answer::ok;
    });
    auto dir =
        write_file(t, "dir.yaml", "receivers:\n" + webhook_receiver("p-principal", rx.url()));
    notify_process n(lb, t / "notify", dir);
    lb.illness("c1");

    REQUIRE(eventually([&] { return !lb.of_type("notification.delivered").empty(); }));
    auto page = lb.school_pages().at(0);
    auto page_id = page["id"].get<std::string>();
    auto failed = for_page(lb.of_type("notification.failed"), page_id);
    auto delivered = for_page(lb.of_type("notification.delivered"), page_id);
    REQUIRE(failed.size() == 2);
    REQUIRE(delivered.size() == 1);
    CHECK(failed[0]["body"]["attempt"] == 1);
    CHECK(failed[1]["body"]["attempt"] == 2);
    CHECK(failed[0]["body"]["error"] == "HTTP 500");
    CHECK(failed[0]["body"]["final"] == false);
    const auto& d = delivered[0];
    CHECK(d["body"]["attempt"] == 3);
    CHECK(d["body"]["receiver"] == "p-principal");
    CHECK(d["body"]["channel"] == "webhook");
    CHECK(d["body"]["incident_id"] == page["body"]["incident_id"]);
    CHECK(d["references"] == json::array({page_id}));
    CHECK(d["school"] == the_school);
    CHECK(d["status"] == "Actual");
    CHECK_FALSE(d["body"].contains("text")); // receipts carry no message text

    // Downstream: three requests with one idempotency key, one accepted, each signed.
    auto hits = rx.hits();
    REQUIRE(hits.size() == 3);
    std::set<std::string> keys, accepted;
    for (const auto& h : hits) {
        keys.insert(h.key);
        if (h.what == receiver_server::answer::ok) accepted.insert(h.key);
        CHECK(h.signature == notify::sign_body(secret, h.body));
    }
    CHECK(keys == std::set<std::string>{page_id + "/p-principal"});
    CHECK(accepted.size() == 1);
    auto body = json::parse(hits.back().body);
    CHECK(body["text"] == page["body"]["text"]);
    CHECK(body["ack_url"].get<std::string>().find("/ack/") != std::string::npos);

    auto m = request(n.port, http::verb::get, "/metrics");
    CHECK(m.status == 200);
    CHECK(m.body.find("pingan_notify_deliveries_total{channel=\"webhook\"} 1") !=
          std::string::npos);
    CHECK(m.body.find("pingan_notify_failures_total{channel=\"webhook\"} 2") != std::string::npos);
    CHECK(m.body.find("pingan_notify_retries_total{channel=\"webhook\"} 2") != std::string::npos);
    CHECK(m.body.find("pingan_notify_lag_events") != std::string::npos);
}

TEST_CASE("a receiver that is down ends in a final failure and the next tier is paged",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    auto down = "http://127.0.0.1:" + std::to_string(free_port()) + "/hook";
    auto dir = write_file(t, "dir.yaml", "receivers:\n" + webhook_receiver("p-principal", down));
    notify_process n(lb, t / "notify", dir, {"--give-up-after", "1s"});
    lb.illness("c1");

    auto final_failure = [&] {
        for (const auto& f : lb.of_type("notification.failed"))
            if (f["body"]["final"] == true && f["body"]["tier"] == "school") return f;
        return json();
    };
    REQUIRE(eventually([&] { return !final_failure().is_null(); }));
    auto f = final_failure();
    auto page = lb.school_pages().at(0);
    CHECK(f["body"]["notification_id"] == page["id"]);
    CHECK(f["body"]["tier"] == "school");
    CHECK(f["body"]["receiver"] == "");
    CHECK(f["body"]["attempt"].get<int>() >= 2);
    CHECK(f["references"] == json::array({page["id"]}));
    CHECK(lb.of_type("notification.delivered").empty());

    // The rule pack takes an undeliverable school page to the county.
    auto escalated = [&] {
        for (const auto& p : lb.of_type("notification.requested"))
            if (p["body"]["rule_id"] == "notify.undeliverable") return p;
        return json();
    };
    REQUIRE(eventually([&] { return !escalated().is_null(); }));
    auto e = escalated();
    CHECK(e["body"]["tier"] == "district");
    CHECK(e["body"]["roles"] == json::array({"county_bureau"}));
    auto incident = page["body"]["incident_id"].get<std::string>();
    CHECK(e["body"]["text"].get<std::string>().find(incident) != std::string::npos);
    // Nobody is in the directory for the county: that page fails at once, naming whom it sought.
    auto county_final = [&] {
        for (const auto& f : lb.of_type("notification.failed"))
            if (f["body"]["final"] == true && f["body"]["tier"] == "district") return f;
        return json();
    };
    REQUIRE(eventually([&] { return !county_final().is_null(); }));
    CHECK(county_final()["body"]["error"] ==
          "no receiver in the directory for tier district roles county_bureau");
}

TEST_CASE("a receiver that hangs is recorded as a timeout failure", "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    receiver_server rx(
        [](std::size_t, const std::string&) { return receiver_server::answer::hang; });
    auto dir =
        write_file(t, "dir.yaml", "receivers:\n" + webhook_receiver("p-principal", rx.url()));
    notify_process n(lb, t / "notify", dir,
                     {"--webhook-timeout", "300ms", "--give-up-after", "500ms"});
    lb.illness("c1");
    auto final_seen = [&] {
        for (const auto& f : lb.of_type("notification.failed"))
            if (f["body"]["final"] == true) return true;
        return false;
    };
    REQUIRE(eventually(final_seen));
    std::vector<json> failed;
    for (const auto& f : lb.of_type("notification.failed"))
        if (f["body"]["receiver"] == "p-principal") failed.push_back(f);
    REQUIRE(failed.size() >= 1);
    CHECK(failed[0]["body"]["error"].get<std::string>().starts_with("timeout after 300 ms"));
    CHECK(failed[0]["body"]["latency_ms"].get<int>() >= 300);
    rx.release();
}

TEST_CASE("kill -9 mid-delivery neither repeats a confirmed delivery nor skips a page",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    // The second request hangs until notify is killed; everything else is accepted.
    receiver_server rx([](std::size_t nth, const std::string&) {
        return nth == 2 ? receiver_server::answer::hang : receiver_server::answer::ok;
    });
    auto dir =
        write_file(t, "dir.yaml", "receivers:\n" + webhook_receiver("p-principal", rx.url()));
    auto n = std::make_unique<notify_process>(lb, t / "notify", dir);
    lb.illness("c1");
    REQUIRE(eventually([&] { return lb.of_type("notification.delivered").size() == 1; }));
    lb.illness("c2");
    REQUIRE(eventually([&] { return rx.hits().size() == 2; }));
    n->proc->signal(SIGKILL);
    n->proc->wait();
    rx.release();
    lb.illness("c3"); // while notify is down

    n = std::make_unique<notify_process>(lb, t / "notify", dir);
    CHECK(n->position >= lb.school_pages().at(0)["offset"].get<std::uint64_t>());
    auto pages = lb.school_pages();
    REQUIRE(pages.size() == 3);
    REQUIRE(eventually([&] { return lb.of_type("notification.delivered").size() == 3; }));

    std::map<std::string, int> accepted, requests;
    for (const auto& h : rx.hits()) {
        ++requests[h.key];
        if (h.what == receiver_server::answer::ok) ++accepted[h.key];
    }
    auto key = [&](int i) { return pages[i]["id"].get<std::string>() + "/p-principal"; };
    CHECK(requests[key(0)] == 1); // confirmed before the kill: never sent again
    CHECK(requests[key(1)] == 2); // unconfirmed at the kill: sent again, same key
    CHECK(requests[key(2)] == 1);
    for (int i = 0; i < 3; ++i)
        CHECK(accepted[key(i)] == 1);
    auto delivered = lb.of_type("notification.delivered");
    std::set<std::string> ids;
    for (const auto& d : delivered)
        ids.insert(d["body"]["notification_id"].get<std::string>());
    CHECK(ids.size() == 3);
    // Nothing more arrives: a last page after the restart goes through once.
    lb.illness("c4");
    REQUIRE(eventually([&] { return lb.of_type("notification.delivered").size() == 4; }));
    CHECK(rx.hits().size() == 5);
}

TEST_CASE("a command channel gets the message on stdin and the receiver in its arguments",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    auto script =
        write_file(t, "sms.sh",
                   "#!/bin/sh\n"
                   "out='" +
                       t.path() +
                       "'\n"
                       "if [ ! -f \"$out/failed-once\" ]; then touch \"$out/failed-once\"; "
                       "exit 3; fi\n"
                       "cat > \"$out/message.txt\"\n"
                       "echo \"$1 $2 $PINGAN_IDEMPOTENCY_KEY\" > \"$out/args.txt\"\n");
    ::chmod(script.c_str(), 0755);
    auto dir = write_file(t, "dir.yaml",
                          "receivers:\n  - id: p-sms\n    role: principal\n    school: " +
                              std::string(the_school) + "\n    channel: command\n    command: [" +
                              script + "]\n    address: \"+8613800000001\"\n");
    notify_process n(lb, t / "notify", dir);
    lb.illness("c1");
    REQUIRE(eventually([&] { return !lb.of_type("notification.delivered").empty(); }));
    auto page = lb.school_pages().at(0);
    auto failed = lb.of_type("notification.failed");
    REQUIRE(failed.size() == 1);
    CHECK(failed[0]["body"]["error"] == "exit status 3");
    CHECK(failed[0]["body"]["channel"] == "command");
    auto d = lb.of_type("notification.delivered").at(0);
    CHECK(d["body"]["attempt"] == 2);
    CHECK(d["body"]["channel"] == "command");
    auto message = read_file(t / "message.txt");
    CHECK(message.starts_with(page["body"]["text"].get<std::string>()));
    CHECK(message.find("/ack/") != std::string::npos);
    CHECK(read_file(t / "args.txt") ==
          "p-sms +8613800000001 " + page["id"].get<std::string>() + "/p-sms\n");
}

TEST_CASE("a gateway command runs with a minimal environment and a timeout ends its whole group",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    // notify's own environment holds something no gateway should see.
    ::setenv("PINGAN_NOT_FOR_GATEWAYS", "secret-value", 1);
    auto script = write_file(t, "hang.sh",
                             "#!/bin/sh\n"
                             "out='" +
                                 t.path() +
                                 "'\n"
                                 "env > \"$out/env.txt\"\n"
                                 "sleep 60 &\n"
                                 "echo $! > \"$out/grandchild.pid\"\n"
                                 "wait\n");
    ::chmod(script.c_str(), 0755);
    auto dir = write_file(t, "dir.yaml",
                          "receivers:\n  - id: p-sms\n    role: principal\n    school: " +
                              std::string(the_school) + "\n    channel: command\n    command: [" +
                              script + "]\n    address: \"+8613800000001\"\n");
    notify_process n(lb, t / "notify", dir, {"--command-timeout", "500ms"});
    ::unsetenv("PINGAN_NOT_FOR_GATEWAYS");
    lb.illness("c1");
    REQUIRE(eventually([&] { return !lb.of_type("notification.failed").empty(); }));
    CHECK(lb.of_type("notification.failed")
              .at(0)["body"]["error"]
              .get<std::string>()
              .starts_with("timeout after 500 ms"));
    auto env = read_file(t / "env.txt");
    CHECK(env.find("PINGAN_NOT_FOR_GATEWAYS") == std::string::npos);
    CHECK(env.find("PINGAN_IDEMPOTENCY_KEY=") != std::string::npos);
    CHECK(env.find("PINGAN_ACK_URL=") != std::string::npos);
    // The command's child went with it.
    auto pid = std::stoi(read_file(t / "grandchild.pid"));
    REQUIRE(pid > 1);
    auto gone = [&] { // no such process, or a zombie waiting for its new parent
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        if (!std::getline(stat, line)) return true;
        auto close = line.rfind(')');
        return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
    };
    CHECK(eventually(gone, 5s));
}

TEST_CASE("an exercise page reaches only the exercise receiver and says EXERCISE", "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    receiver_server rx;
    auto dir = write_file(t, "dir.yaml",
                          "receivers:\n" + webhook_receiver("real-only", rx.url("/real")) +
                              webhook_receiver("drills-too", rx.url("/drills"), true));
    notify_process n(lb, t / "notify", dir);
    lb.illness("c1", "Exercise");
    REQUIRE(eventually([&] { return lb.of_type("notification.delivered").size() == 1; }));
    auto hits = rx.hits();
    REQUIRE(hits.size() == 1);
    CHECK(hits[0].path == "/drills");
    auto body = json::parse(hits[0].body);
    CHECK(body["text"].get<std::string>().starts_with("【演练 EXERCISE】"));
    CHECK(body["exercise"] == true);
    auto d = lb.of_type("notification.delivered").at(0);
    CHECK(d["status"] == "Exercise");
    CHECK(d["body"]["receiver"] == "drills-too");

    // A real page goes to both.
    lb.illness("c2");
    REQUIRE(eventually([&] { return lb.of_type("notification.delivered").size() == 3; }));
    std::set<std::string> paths;
    for (const auto& h : rx.hits())
        paths.insert(h.path);
    CHECK(paths == std::set<std::string>{"/real", "/drills"});
}

TEST_CASE("a page acknowledged through its link records incident.acknowledged by the receiver",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    receiver_server rx;
    auto dir =
        write_file(t, "dir.yaml", "receivers:\n" + webhook_receiver("p-principal", rx.url()));
    notify_process n(lb, t / "notify", dir);
    lb.illness("c1");
    REQUIRE(eventually([&] { return rx.hits().size() == 1; }));
    auto url = json::parse(rx.hits()[0].body)["ack_url"].get<std::string>();
    auto path = url.substr(url.find("/ack/"));
    REQUIRE(url.starts_with("http://127.0.0.1:" + std::to_string(n.port) + "/ack/"));
    // The token derives from notify's link key: no file of notify's holds it.
    auto token = path.substr(5);
    REQUIRE(token.size() == 24);
    for (const auto& f : std::filesystem::recursive_directory_iterator(t / "notify")) {
        if (!f.is_regular_file()) continue;
        INFO(f.path().string());
        CHECK(read_file(f.path().string()).find(token) == std::string::npos);
    }

    auto confirm = request(n.port, http::verb::get, path);
    CHECK(confirm.status == 200);
    CHECK(confirm.body.find("<form method=\"post\">") != std::string::npos);
    CHECK(lb.of_type("incident.acknowledged").empty()); // GET changes nothing

    auto done = request(n.port, http::verb::post, path);
    CHECK(done.status == 200);
    REQUIRE(eventually([&] { return lb.of_type("incident.acknowledged").size() == 1; }));
    auto page = lb.school_pages().at(0);
    auto a = lb.of_type("incident.acknowledged").at(0);
    CHECK(a["body"]["incident_id"] == page["body"]["incident_id"]);
    CHECK(a["body"]["note"].get<std::string>().find("p-principal") != std::string::npos);
    CHECK(a["school"] == the_school);
    CHECK(a["references"] == json::array({page["id"]}));

    // A second press changes nothing; a made-up token is unknown.
    auto again = request(n.port, http::verb::post, path);
    CHECK(again.status == 200);
    CHECK(again.body.find("Already acknowledged") != std::string::npos);
    CHECK(request(n.port, http::verb::get, "/ack/000000000000000000000000").status == 404);
    // Handshake: whatever the service queued is stored once its outbox is empty.
    REQUIRE(eventually([&] {
        return json::parse(request(n.port, http::verb::get, "/health").body)["outbox_depth"] == 0;
    }));
    CHECK(lb.of_type("incident.acknowledged").size() == 1);
}

TEST_CASE("SIGHUP reloads the directory, a bad file leaves the old one, SIGTERM stops",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    auto one = "receivers:\n" + webhook_receiver("a", "http://127.0.0.1:9/x");
    auto dir = write_file(t, "dir.yaml", one);
    notify_process n(lb, t / "notify", dir);
    auto health = [&] { return json::parse(request(n.port, http::verb::get, "/health").body); };
    CHECK(health()["receivers"] == 1);
    write_file(t, "dir.yaml", one + "  - id: b\n    role: principle\n    channel: file\n");
    n.proc->signal(SIGHUP);
    REQUIRE(eventually([&] { return health()["directory_reloads_refused"] == 1; }));
    CHECK(health()["receivers"] == 1); // the old directory stays
    write_file(t, "dir.yaml",
               one +
                   "  - id: b\n    role: principal\n    channel: file\n"
                   "    path: " +
                   t / "pages.log" + "\n");
    n.proc->signal(SIGHUP);
    CHECK(eventually([&] { return health()["receivers"] == 2; }));
    CHECK(health()["directory_reloads"] == 1);
    n.proc->signal(SIGTERM);
    CHECK(n.proc->wait() == 0); // a clean stop
}

TEST_CASE("pingan-notify answers --version and refuses a bad directory at start", "[notify_e2e]") {
    {
        process p({bin("pingan-notify"), "--version"});
        auto l = p.line();
        REQUIRE(l);
        CHECK(l->starts_with("pingan-notify "));
        CHECK(p.wait() == 0);
    }
    temp_dir t;
    auto dir = write_file(t, "dir.yaml", "receivers:\n  - id: a\n    role: nobody\n");
    process p({bin("pingan-notify"), "--directory", dir, "--data", t / "n", "--registry",
               std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv"});
    CHECK(p.wait() == 2);
}

TEST_CASE("an expired acknowledgement link acknowledges nothing and is forgotten at restart",
          "[notify_e2e]") {
    temp_dir t;
    live_broker lb(t / "broker");
    receiver_server rx;
    auto dir =
        write_file(t, "dir.yaml", "receivers:\n" + webhook_receiver("p-principal", rx.url()));
    auto n = std::make_unique<notify_process>(lb, t / "notify", dir,
                                              std::vector<std::string>{"--ack-ttl", "1ms"});
    lb.illness("c1");
    REQUIRE(eventually([&] { return rx.hits().size() == 1; }));
    auto url = json::parse(rx.hits()[0].body)["ack_url"].get<std::string>();
    auto path = url.substr(url.find("/ack/"));
    CHECK(request(n->port, http::verb::get, path).status == 410);
    CHECK(request(n->port, http::verb::post, path).status == 410);

    n->proc->signal(SIGTERM);
    REQUIRE(n->proc->wait() == 0);
    n = std::make_unique<notify_process>(lb, t / "notify", dir);
    CHECK(request(n->port, http::verb::get, path).status == 404);
    CHECK(lb.of_type("incident.acknowledged").empty());
}

TEST_CASE("with --jetstream pages come from the broker's stream, go on while the broker is away, "
          "and records removed from the stream are read from the broker",
          "[notify_e2e][jetstream]") {
    temp_dir t;
    nats_server ns(t / "nats");
    live_broker lb(t / "broker", {"--insecure-dev", "--replication", "jetstream",
                                  "--jetstream-server", ns.url(), "--jetstream-timeout", "2s"});
    receiver_server rx([](std::size_t, const std::string&) { return receiver_server::answer::ok; });
    auto dir =
        write_file(t, "dir.yaml", "receivers:\n" + webhook_receiver("p-principal", rx.url()));
    // A page stored, then removed from the stream: only the broker has it.
    lb.illness("c1");
    REQUIRE(lb.school_pages().size() == 1);
    auto first = lb.school_pages().at(0);
    ns.purge_below("PINGAN", first["offset"].get<std::uint64_t>() + 1);
    std::vector<event> after{sample_reading(the_school, 1)};
    after[0].occurred_at = *parse_utc(lb.q.clock(json::object())["now"].get<std::string>());
    after[0].id = new_event_id(after[0].occurred_at);
    REQUIRE(lb.pub.publish(after).results.at(0).what == wire::outcome::stored);

    // No live feed to read: pages come from the stream (or, for the gap, the broker's replay).
    notify_process n(
        lb, t / "notify", dir,
        {"--jetstream", ns.url(), "--feed", "tcp://127.0.0.1:" + std::to_string(free_port())});
    auto delivered_to = [&](const json& page) {
        for (const auto& h : rx.hits())
            if (h.key == page["id"].get<std::string>() + "/p-principal") return true;
        return false;
    };
    REQUIRE(eventually([&] { return delivered_to(first); }));

    // A page stored and confirmed by the stream, then the broker is gone: it is delivered.
    lb.illness("c2");
    auto pages = lb.school_pages();
    REQUIRE(pages.size() == 2);
    lb.b.proc->signal(SIGKILL);
    lb.b.proc->wait();
    REQUIRE(eventually([&] { return delivered_to(pages.at(1)); }));
    CHECK(rx.hits().size() == 2); // each page once
}
