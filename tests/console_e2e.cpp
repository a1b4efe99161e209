// pingan-console as a real process against a real, secured broker: CURVE
// with the console's own key from the access table, logins that leave the
// io thread free, actions recorded under the console's identity, /metrics.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "nats_server.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}

struct answer {
    int status = 0;
    std::string body, cookie, retry_after;
    json j() const { return json::parse(body, nullptr, false); }
};

answer request(unsigned short port, http::verb verb, const std::string& target,
               const std::string& body = {}, const std::string& cookie = {},
               const std::string& csrf = {}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.set(http::field::content_type, "application/json");
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    if (!csrf.empty()) req.set("X-CSRF-Token", csrf);
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(s, buf, res, ec);
    if (ec) return {0, ec.message(), {}, {}};
    answer a{static_cast<int>(res.result_int()), res.body(), {}, {}};
    if (auto c = res.find(http::field::set_cookie); c != res.end()) {
        std::string v(c->value());
        a.cookie = v.substr(0, v.find(';'));
    }
    if (auto r = res.find(http::field::retry_after); r != res.end())
        a.retry_after = std::string(r->value());
    return a;
}

// A metric's value in a Prometheus exposition, or -1.
double metric(const std::string& text, const std::string& name_and_labels) {
    auto at = text.find("\n" + name_and_labels + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name_and_labels.size() + 2));
}

struct keys {
    curve_keypair server = curve_generate();
    curve_keypair console = curve_generate();
    curve_keypair school = curve_generate();
    curve_keypair auditor = curve_generate();
};

// A page's WebSocket, open once the console has answered its resume.
struct page_socket {
    net::io_context ioc;
    websocket::stream<beast::tcp_stream> ws{ioc};
    beast::flat_buffer buf;

    page_socket(unsigned short port, const std::string& cookie) {
        ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
        ws.set_option(websocket::stream_base::decorator(
            [cookie](websocket::request_type& r) { r.set(http::field::cookie, cookie); }));
        ws.handshake("127.0.0.1:" + std::to_string(port), "/ws");
        ws.write(net::buffer(std::string(R"({"op":"resume","from":1})")));
        ws.read(buf);
    }

    // The first incident sent to the page (within 50 messages) that `which`
    // accepts, or null.
    json incident(const std::function<bool(const json&)>& which) {
        for (int i = 0; i < 50; ++i) {
            auto m = json::parse(beast::buffers_to_string(buf.data()));
            if (m["t"] == "incidents")
                for (const auto& x : m["list"])
                    if (which(x)) return x;
            buf.clear();
            ws.read(buf);
        }
        return nullptr;
    }

    // Every message up to the page's position ("at"), as text.
    std::string until_at() {
        std::string all;
        for (int i = 0; i < 200; ++i) {
            auto m = beast::buffers_to_string(buf.data());
            all += m + "\n";
            if (json::parse(m)["t"] == "at") break;
            buf.clear();
            ws.read(buf);
        }
        return all;
    }

    // Reads until the console ends the connection. Returns: whether it did
    // within `limit`.
    bool ended_within(std::chrono::seconds limit) {
        bool ended = false;
        std::function<void()> next = [&] {
            buf.clear();
            ws.async_read(buf, [&](beast::error_code ec, std::size_t) {
                if (ec) {
                    ended = true;
                    return;
                }
                next();
            });
        };
        next();
        ioc.restart();
        ioc.run_for(limit);
        return ended;
    }
};

struct secured_console {
    keys k;
    temp_dir d;
    std::unique_ptr<broker_process> b;
    std::unique_ptr<process> con;
    unsigned short port = 0;

    // `broker_extra` and `console_extra` are appended to each program's flags.
    explicit secured_console(std::vector<std::string> broker_extra = {},
                             std::vector<std::string> console_extra = {}) {
        write_key(d / "server.key", k.server);
        write_key(d / "console.key", k.console);
        write_key(d / "school.key", k.school);
        write_key(d / "auditor.key", k.auditor);
        std::ofstream(d / "clients.yaml")
            << "clients:\n"
               "  - identity: console:office\n    key: \""
            << k.console.public_key
            << "\"\n    scope: city\n    may: [publish, query, act]\n"
               "  - identity: school:420502K001\n    key: \""
            << k.school.public_key
            << "\"\n    scope: {school: 420502K001}\n    may: [publish, query]\n"
               "  - identity: auditor:term1\n    key: \""
            << k.auditor.public_key << "\"\n    scope: city\n    may: [query]\n";
        std::vector<std::string> flags{
            "--server-key",     d / "server.key", "--clients",
            d / "clients.yaml", "--rules",        source_path("config/rules/yichang-default.yaml")};
        flags.insert(flags.end(), broker_extra.begin(), broker_extra.end());
        b = std::make_unique<broker_process>(d / "store", flags);
        {
            std::ofstream(d / "pw") << "chen-password-1\n";
            process add({bin("pingan"), "users", "add", "chen", "--file", d / "users.json",
                         "--scope", "city", "--role", "supervisor", "--password-stdin"},
                        d / "pw");
            REQUIRE(add.wait() == 0);
        }
        start_console(console_extra);
    }

    void start_console(const std::vector<std::string>& extra = {}) {
        std::vector<std::string> argv{bin("pingan-console"),
                                      "--http",
                                      "127.0.0.1:0",
                                      "--users",
                                      d / "users.json",
                                      "--registry",
                                      source_path("data/schools.csv"),
                                      "--ingest",
                                      b->ingest,
                                      "--feed",
                                      b->feed,
                                      "--query",
                                      b->query,
                                      "--key",
                                      d / "console.key",
                                      "--server-key",
                                      "z85:" + k.server.public_key,
                                      "--log-level",
                                      "warn"};
        // A flag given in `extra` replaces the one above.
        for (std::size_t i = 0; i + 1 < extra.size(); i += 2) {
            auto it = std::find(argv.begin(), argv.end(), extra[i]);
            if (it != argv.end())
                *(it + 1) = extra[i + 1];
            else
                argv.insert(argv.end(), {extra[i], extra[i + 1]});
        }
        con = std::make_unique<process>(argv);
        auto l = con->line(20s);
        REQUIRE(l);
        std::smatch m;
        static const std::regex re("listening http=127\\.0\\.0\\.1:(\\d+)");
        REQUIRE(std::regex_search(*l, m, re));
        port = static_cast<unsigned short>(std::stoi(m[1]));
    }

    json health() { return request(port, http::verb::get, "/health").j(); }

    answer login(const std::string& user, const std::string& password) {
        return request(port, http::verb::post, "/api/login",
                       json{{"user", user}, {"password", password}}.dump());
    }
    int me(const std::string& cookie) {
        return request(port, http::verb::get, "/api/me", {}, cookie).status;
    }

    // `pingan users ARGS --file users.json`, with `password` on standard input.
    run_result users(std::vector<std::string> args, const std::string& password = {}) {
        std::ofstream(d / "pw", std::ios::trunc) << password << "\n";
        args.insert(args.begin(), {bin("pingan"), "users"});
        args.insert(args.end(), {"--file", d / "users.json"});
        process p(args, d / "pw");
        auto lines = p.lines(30s);
        return {p.wait(), lines};
    }
    std::string metrics() { return request(port, http::verb::get, "/metrics").body; }

    // Publishes with the school's key; returns the offset.
    std::uint64_t publish_as_school(event e) { return publish_as(k.school, std::move(e)); }
    std::uint64_t publish_as(const curve_keypair& key, event e) {
        zmq::context_t ctx(1);
        curve_client c{key, k.server.public_key};
        ingest_client in(ctx, b->ingest, &c);
        std::vector<event> batch{std::move(e)};
        auto r = in.publish(batch, 5s, 1);
        REQUIRE_FALSE(r.refused);
        REQUIRE(r.results.size() == 1);
        REQUIRE(r.results[0].what == wire::outcome::stored);
        return r.results[0].offset;
    }

    // The broker's log, as the auditor reads it.
    // Waits until the console has read the log up to `offset`.
    void wait_caught_up(std::uint64_t offset) {
        REQUIRE(eventually([&] {
            auto j = health();
            return j.value("caught_up", false) && j.value("offset", std::uint64_t{0}) >= offset;
        }));
    }

    std::vector<json> replay(const std::string& type) {
        process p({bin("pingan"), "replay", "--query", b->query, "--key", d / "auditor.key",
                   "--server-key", "z85:" + k.server.public_key, "--type", type, "--json"});
        std::vector<json> out;
        while (auto l = p.line(10s))
            out.push_back(json::parse(*l));
        CHECK(p.wait() == 0);
        return out;
    }
};

} // namespace

TEST_CASE("the console follows and acts on a secured broker with its own key from the access "
          "table",
          "[console_e2e]") {
    secured_console s;
    auto h = sample_hazard("420502K001");
    h.occurred_at = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
    // It read the log through CURVE: replay, then the feed.
    s.wait_caught_up(s.publish_as_school(h));

    auto login = request(s.port, http::verb::post, "/api/login",
                         R"({"user":"chen","password":"chen-password-1"})");
    REQUIRE(login.status == 200);
    auto csrf = login.j()["csrf"].get<std::string>();

    // The hazard's incident, as the page gets it.
    page_socket page(s.port, login.cookie);
    auto seen = page.incident(
        [&](const json& x) { return x["subject"] == std::get<hazard_reported>(h.body).hazard_id; });
    REQUIRE_FALSE(seen.is_null());
    auto incident = seen["id"].get<std::string>();

    auto note = request(s.port, http::verb::post, "/api/incidents/" + incident + "/note",
                        R"({"text":"已通知校长"})", login.cookie, csrf);
    CHECK(note.status == 200);
    CHECK(note.j()["type"] == "incident.note");
    auto notes = s.replay("incident.note");
    REQUIRE(notes.size() == 1);
    CHECK(notes[0]["actor"] == "console:office"); // the console's key, from the access table
    CHECK(notes[0]["body"]["incident_id"] == incident);
    CHECK(notes[0]["body"]["text"] == "console user chen: 已通知校长");
    // A note changes nothing of the incident's state.
    auto inc = request(s.port, http::verb::post, "/api/incidents/" + incident + "/ack", "{}",
                       login.cookie, csrf);
    CHECK(inc.status == 200);
    CHECK(s.replay("incident.acknowledged").size() == 1);

    auto m = s.metrics();
    CHECK(metric(m, "pingan_console_logins_total{outcome=\"ok\"}") == 1);
    CHECK(metric(m, "pingan_console_actions_total{type=\"incident.note\"}") == 1);
    CHECK(metric(m, "pingan_console_actions_total{type=\"incident.acknowledged\"}") == 1);
    CHECK(metric(m, "pingan_console_caught_up") == 1);
    CHECK(metric(m, "pingan_console_pages") == 1);
}

TEST_CASE("a district user sees a cross-school incident of its district and acknowledges it for "
          "its own member school",
          "[console_e2e]") {
    secured_console s;
    {
        std::ofstream(s.d / "pw2") << "wang-password-1\n";
        process add({bin("pingan"), "users", "add", "wang", "--file", s.d / "users.json", "--scope",
                     "district:420503", "--role", "responder", "--password-stdin"},
                    s.d / "pw2");
        REQUIRE(add.wait() == 0);
    }
    // Illness at two schools of two districts with one supplier: a cluster.
    std::uint64_t off = 0;
    for (const char* school : {"420502K001", "420503K001"}) {
        json j = {{"type", "food.alert"},
                  {"school", school},
                  {"status", "Actual"},
                  {"occurred_at", format_utc(std::chrono::time_point_cast<micros>(
                                      std::chrono::system_clock::now()))},
                  {"body",
                   {{"canteen_id", "C1"},
                    {"kind", "illness"},
                    {"meal_id", "M1"},
                    {"cases", 2},
                    {"samples_sealed", true},
                    {"service_stopped", true},
                    {"supplier", "SUP-9"},
                    {"description", "午餐后腹痛"}}}};
        event e;
        REQUIRE_FALSE(from_json(j, e));
        e.id = new_event_id(e.occurred_at);
        off = s.publish_as(s.k.console, e);
    }
    s.wait_caught_up(off);
    auto login = request(s.port, http::verb::post, "/api/login",
                         R"({"user":"wang","password":"wang-password-1"})");
    REQUIRE(login.status == 200);
    auto csrf = login.j()["csrf"].get<std::string>();
    page_socket page(s.port, login.cookie);
    auto cluster = page.incident([](const json& x) { return x["kind"] == "supplier_cluster"; });
    REQUIRE_FALSE(cluster.is_null());
    CHECK(cluster["member_schools"].size() == 2);
    auto id = cluster["id"].get<std::string>();
    auto ack = request(s.port, http::verb::post, "/api/incidents/" + id + "/ack", "{}",
                       login.cookie, csrf);
    CHECK(ack.status == 200);
    auto acks = s.replay("incident.acknowledged");
    REQUIRE(acks.size() == 1);
    CHECK(acks[0]["school"] == "420503K001"); // the member school in wang's district
    CHECK(acks[0]["body"]["incident_id"] == id);
    // The engine took it: the cluster is acknowledged.
    REQUIRE(eventually([&] {
        for (const auto& x : s.replay("incident.acknowledged"))
            if (x["body"]["incident_id"] == id) return true;
        return false;
    }));
}

TEST_CASE("a login's password hash does not hold up other requests", "[console_e2e]") {
    secured_console s;
    // Three logins in flight (each a crypto_pwhash of tens of milliseconds),
    // then a health check on another connection: it is answered before the
    // first login is.
    net::io_context ioc;
    std::vector<tcp::socket> logins;
    for (int i = 0; i < 3; ++i) {
        auto& sock = logins.emplace_back(ioc);
        sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), s.port));
        http::request<http::string_body> req{http::verb::post, "/api/login", 11};
        req.set(http::field::host, "127.0.0.1");
        req.body() = R"({"user":"chen","password":"wrong-password"})";
        req.prepare_payload();
        http::write(sock, req);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto health = request(s.port, http::verb::get, "/health");
    auto health_at = std::chrono::steady_clock::now();
    CHECK(health.status == 200);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(logins[0], buf, res);
    auto login_at = std::chrono::steady_clock::now();
    CHECK(res.result_int() == 401);
    INFO("health after " << std::chrono::duration<double>(health_at - t0).count()
                         << " s, the first login after "
                         << std::chrono::duration<double>(login_at - t0).count() << " s");
    CHECK(health_at < login_at);
}

// The console looks at the users file's modification time every 2 seconds
// (and before every login); nothing here logs in between the change and the
// refusal of the old cookie, so the timer is what ends the sessions.
TEST_CASE("pingan users disable ends the user's sessions and pages in a running console",
          "[console_e2e]") {
    secured_console s;
    auto first = s.login("chen", "chen-password-1");
    REQUIRE(first.status == 200);
    REQUIRE(s.me(first.cookie) == 200);
    page_socket page(s.port, first.cookie);

    auto off = s.users({"disable", "chen"});
    REQUIRE(off.code == 0);
    CHECK(has(off, "disabled chen"));
    auto list = s.users({"list", "--json"});
    REQUIRE(list.lines.size() == 1);
    CHECK(json::parse(list.lines[0])["disabled"] == true);

    CHECK(eventually([&] { return s.me(first.cookie) == 401; }));
    CHECK(page.ended_within(20s));
    CHECK(s.login("chen", "chen-password-1").status == 401);

    // passwd enables the user again with a new password; the session that
    // was open before the user was disabled stays ended.
    auto pw = s.users({"passwd", "chen", "--password-stdin"}, "chen-password-2");
    REQUIRE(pw.code == 0);
    CHECK(has(pw, "password of chen changed"));
    answer second;
    REQUIRE(eventually([&] {
        second = s.login("chen", "chen-password-2");
        return second.status == 200;
    }));
    CHECK(s.me(second.cookie) == 200);
    CHECK(s.me(first.cookie) == 401);
    CHECK(s.login("chen", "chen-password-1").status == 401);

    auto m = s.metrics();
    CHECK(metric(m, "pingan_console_logins_total{outcome=\"ok\"}") == 2);
    CHECK(metric(m, "pingan_console_logins_total{outcome=\"failed\"}") == 2);
}

TEST_CASE("pingan users passwd ends that user's sessions only and the old password fails",
          "[console_e2e]") {
    secured_console s;
    auto wu_add =
        s.users({"add", "wu", "--scope", "district:420502", "--role", "viewer", "--password-stdin"},
                "wu-password-1");
    REQUIRE(wu_add.code == 0);
    answer wu;
    REQUIRE(eventually([&] {
        wu = s.login("wu", "wu-password-1");
        return wu.status == 200;
    }));
    auto chen = s.login("chen", "chen-password-1");
    REQUIRE(chen.status == 200);
    REQUIRE(s.me(chen.cookie) == 200);

    auto pw = s.users({"passwd", "chen", "--password-stdin"}, "chen-password-2");
    REQUIRE(pw.code == 0);
    CHECK(eventually([&] { return s.me(chen.cookie) == 401; }));
    CHECK(s.me(wu.cookie) == 200);

    auto old = s.login("chen", "chen-password-1");
    CHECK(old.status == 401);
    CHECK(old.j()["error"] == "wrong user name or password");
    auto fresh = s.login("chen", "chen-password-2");
    CHECK(fresh.status == 200);
    CHECK(s.me(fresh.cookie) == 200);
}

TEST_CASE("repeated failed logins are answered 429 with a message and Retry-After, per user "
          "name and per address",
          "[console_e2e]") {
    secured_console s; // the defaults: 5 failures per user name, 10 per address, in 15 minutes
    for (int i = 0; i < 5; ++i) {
        auto a = s.login("chen", "wrong-password-" + std::to_string(i));
        CHECK(a.status == 401);
        CHECK(a.j()["error"] == "wrong user name or password");
    }
    // The sixth attempt is refused before the password is looked at, even the right one.
    auto limited = s.login("chen", "chen-password-1");
    CHECK(limited.status == 429);
    CHECK(limited.j()["error"] == "too many failed logins; try again later");
    CHECK(limited.cookie.empty());
    REQUIRE_FALSE(limited.retry_after.empty());
    auto wait = std::stoll(limited.retry_after);
    CHECK(wait > 0);
    CHECK(wait <= 15 * 60);

    // Other names from the same address: five more failures fill the address's
    // ten, and then any name is refused.
    for (int i = 0; i < 5; ++i)
        CHECK(s.login("nobody" + std::to_string(i), "wrong-password").status == 401);
    auto by_address = s.login("someone-else", "any-password");
    CHECK(by_address.status == 429);
    CHECK(by_address.j()["error"] == "too many failed logins; try again later");

    auto m = s.metrics();
    CHECK(metric(m, "pingan_console_logins_total{outcome=\"failed\"}") == 10);
    CHECK(metric(m, "pingan_console_logins_total{outcome=\"limited\"}") == 2);
    CHECK(metric(m, "pingan_console_logins_total{outcome=\"ok\"}") == 0);
}

TEST_CASE("with --jetstream the console reads the log from the broker's stream, minors' details "
          "redacted, and a console started while the broker is away shows what it acknowledged",
          "[console_e2e][jetstream]") {
    temp_dir nd;
    nats_server ns(nd / "nats");
    auto no_feed = "tcp://127.0.0.1:" + std::to_string(nats_server::unused_port());
    secured_console s({"--keys", nd / "keys", "--replication", "jetstream", "--jetstream-server",
                       ns.url(), "--jetstream-timeout", "2s"},
                      {"--jetstream", ns.url(), "--feed", no_feed});
    auto h = sample_hazard("420502K001");
    h.occurred_at = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
    auto p = sample_psych("420502K001");
    p.occurred_at = h.occurred_at;
    s.publish_as_school(h);
    // No feed to read: the console has the log from the stream.
    s.wait_caught_up(s.publish_as_school(p));

    auto login = s.login("chen", "chen-password-1");
    REQUIRE(login.status == 200);
    auto hazard_incident = [&] {
        page_socket page(s.port, login.cookie);
        return page.incident([&](const json& x) {
            return x["subject"] == std::get<hazard_reported>(h.body).hazard_id;
        });
    };
    CHECK_FALSE(hazard_incident().is_null());
    // The stream holds the student's reference sealed; the page shows the alert, redacted.
    {
        page_socket page(s.port, login.cookie);
        auto text = page.until_at();
        INFO(text);
        CHECK(text.find("psych.alert") != std::string::npos);
        CHECK(text.find(std::get<psych_alert>(p.body).student_ref) == std::string::npos);
    }

    // The broker gone: a console started now reads everything from the stream.
    s.b->proc->signal(SIGKILL);
    s.b->proc->wait();
    s.con->signal(SIGTERM);
    s.con->wait();
    s.start_console({"--jetstream", ns.url(), "--feed", no_feed});
    REQUIRE(eventually([&] { return s.health().value("caught_up", false); }));
    login = s.login("chen", "chen-password-1");
    REQUIRE(login.status == 200);
    CHECK_FALSE(hazard_incident().is_null());
}
