// End-to-end tests of the services against real pingan-broker processes:
// real HTTP, TCP and ZeroMQ sockets on 127.0.0.1 with ephemeral ports, real
// LMDB outboxes and stores, kill -9 and restarts.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/codec.hpp"
#include "pingan_run.hpp"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}
std::string registry_csv() {
    return std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv";
}

// A TCP port that was free a moment ago, for a broker that starts later.
unsigned short free_port() {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

// A service process and the ports it printed on its first line.
struct service_process {
    std::unique_ptr<process> proc;
    std::map<std::string, std::string> at; // "http" → "127.0.0.1:NNNN"

    service_process(const std::string& name, std::vector<std::string> args) {
        // No credentials here: the intake's guard has its own tests (intake.cpp).
        std::vector<std::string> argv{bin(name),    "--http",        "127.0.0.1:0",
                                      "--registry", registry_csv(),  "--log-level",
                                      "warn",       "--insecure-dev"};
        for (auto& a : args)
            argv.push_back(a);
        proc = std::make_unique<process>(argv);
        auto l = proc->line(20s);
        if (!l || l->rfind("listening ", 0) != 0)
            throw std::runtime_error(name + " did not start: " + l.value_or("(no output)"));
        static const std::regex kv("(\\w+)=(\\S+)");
        for (std::sregex_iterator it(l->begin(), l->end(), kv), end; it != end; ++it)
            at[(*it)[1]] = (*it)[2];
    }
    unsigned short port(const std::string& which = "http") const {
        auto s = at.at(which);
        return static_cast<unsigned short>(std::stoul(s.substr(s.rfind(':') + 1)));
    }
};

// A broker whose ingest is at a fixed address (given before it starts).
struct fixed_broker {
    std::unique_ptr<process> proc;
    std::string query;

    fixed_broker(const std::string& data_dir, const std::string& ingest) {
        proc = std::make_unique<process>(std::vector<std::string>{
            bin("pingan-broker"), "--data", data_dir, "--ingest", ingest, "--feed",
            "tcp://127.0.0.1:*", "--query", "tcp://127.0.0.1:*", "--registry", registry_csv(),
            "--districts", std::string(PINGAN_SOURCE_DIR) + "/data/districts.csv", "--log-level",
            "warn"});
        auto l = proc->line(20s);
        std::smatch m;
        static const std::regex re("query=(\\S+)");
        if (!l || !std::regex_search(*l, m, re)) throw std::runtime_error("broker did not start");
        query = m[1];
    }
};

struct http_answer {
    int status = 0;
    std::string body;
    json j() const {
        json out;
        (void)parse_json(body, out);
        return out;
    }
};

http_answer request(unsigned short port, http::verb verb, const std::string& target,
                    const std::string& body = {}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 20);
    boost::system::error_code ec;
    http::read(s, buf, p, ec);
    if (ec) return {0, ec.message()};
    return {static_cast<int>(p.get().result_int()), p.get().body()};
}

http_answer post(unsigned short port, const std::string& target, const json& body) {
    return request(port, http::verb::post, target, body.dump());
}
json health(unsigned short port) {
    return request(port, http::verb::get, "/health").j();
}

// Polls until `done` holds, at most `limit`. Returns: done().

std::vector<event> replay_type(const std::string& query, const std::string& type) {
    zmq::context_t ctx(1);
    query_client q(ctx, query);
    replay_request r;
    r.type = type;
    std::vector<event> out;
    q.replay(r, [&](std::uint64_t, std::string_view bytes) {
        event e;
        if (!decode(bytes, e)) out.push_back(std::move(e));
        return true;
    });
    return out;
}

json hazard_report(int n) {
    return {{"school", "420502K001"},   {"area", "building"},
            {"grade", "general"},       {"description", "护栏松动 #" + std::to_string(n)},
            {"location", "教学楼二楼"}, {"found_by", "safety_officer"}};
}

} // namespace

TEST_CASE("reports made while the broker is down are stored exactly once when it comes back",
          "[services_e2e]") {
    temp_dir d;
    auto ingest = "tcp://127.0.0.1:" + std::to_string(free_port());
    service_process hazard("pingan-hazard", {"--data", d / "hazard", "--broker", ingest});
    std::set<std::string> ids;
    for (int i = 0; i < 25; ++i) {
        auto a = post(hazard.port(), "/hazard/report", hazard_report(i));
        REQUIRE(a.status == 202);
        ids.insert(a.j()["id"].get<std::string>());
    }
    REQUIRE(ids.size() == 25);
    auto h = health(hazard.port());
    CHECK(h["outbox_depth"] == 25);
    CHECK(h["broker"]["connected"] == false);

    fixed_broker b(d / "store", ingest);
    REQUIRE(eventually([&] { return health(hazard.port())["outbox_depth"] == 0; }));
    CHECK(health(hazard.port())["broker"]["connected"] == true);
    auto stored = replay_type(b.query, "hazard.reported");
    std::multiset<std::string> got;
    for (const auto& e : stored)
        got.insert(e.id.str());
    CHECK(got.size() == 25);
    CHECK(std::set<std::string>(got.begin(), got.end()) == ids);
}

TEST_CASE("a service killed with -9 while events are unacknowledged delivers them once on restart",
          "[services_e2e]") {
    temp_dir d;
    broker_process b(d / "store");
    auto ingest = "tcp://127.0.0.1:" + std::to_string(free_port());
    std::set<std::string> ids;
    {
        // The broker is unreachable at this address: nothing can be acknowledged.
        service_process hazard("pingan-hazard", {"--data", d / "hazard", "--broker", ingest});
        for (int i = 0; i < 10; ++i) {
            auto a = post(hazard.port(), "/hazard/report", hazard_report(i));
            REQUIRE(a.status == 202);
            ids.insert(a.j()["id"].get<std::string>());
        }
        // And some sent to the live broker, killed while answers may be in flight.
        service_process live("pingan-hazard", {"--data", d / "hazard-live", "--broker", b.ingest});
        for (int i = 0; i < 40; ++i) {
            auto a = post(live.port(), "/hazard/report", hazard_report(100 + i));
            REQUIRE(a.status == 202);
            ids.insert(a.j()["id"].get<std::string>());
        }
        hazard.proc->signal(SIGKILL);
        live.proc->signal(SIGKILL);
        CHECK(hazard.proc->wait() == 128 + SIGKILL);
        CHECK(live.proc->wait() == 128 + SIGKILL);
    }
    REQUIRE(ids.size() == 50);
    service_process again("pingan-hazard", {"--data", d / "hazard", "--broker", b.ingest});
    service_process live_again("pingan-hazard",
                               {"--data", d / "hazard-live", "--broker", b.ingest});
    REQUIRE(eventually([&] {
        return health(again.port())["outbox_depth"] == 0 &&
               health(live_again.port())["outbox_depth"] == 0;
    }));
    std::multiset<std::string> got;
    for (const auto& e : replay_type(b.query, "hazard.reported"))
        got.insert(e.id.str());
    CHECK(got.size() == 50);
    CHECK(std::set<std::string>(got.begin(), got.end()) == ids);
    CHECK(health(again.port())["dead_letters"] == 0);
}

TEST_CASE("a flapping canteen sensor produces one cold-chain alert in the store",
          "[services_e2e]") {
    temp_dir d;
    broker_process b(d / "store");
    service_process canteen("pingan-canteen", {"--data", d / "canteen", "--broker", b.ingest,
                                               "--udp", "", "--tcp", "127.0.0.1:0"});
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), canteen.port("tcp")));
    std::string lines;
    auto t = from_us(to_us(*parse_utc("2026-11-29T00:00:00Z")));
    for (int i = 0; i < 90; ++i) // 90 minutes hovering around 8 °C, one reading a minute
        lines += "420502K001-main fridge-1 cold_storage " + std::string(i % 2 ? "8.4" : "7.7") +
                 " " + format_utc(t + std::chrono::minutes(i)) + "\n";
    lines += "420502K001-main fridge-1 cellar 4.0\n"; // a bad line is answered, not fatal
    net::write(s, net::buffer(lines));
    std::string answers;
    std::size_t ok = 0, err = 0;
    auto until = std::chrono::steady_clock::now() + 20s;
    while (ok + err < 91 && std::chrono::steady_clock::now() < until) {
        net::read_until(s, net::dynamic_buffer(answers), '\n');
        std::size_t nl;
        while ((nl = answers.find('\n')) != std::string::npos) {
            (answers.rfind("ok ", 0) == 0 ? ok : err) += 1;
            answers.erase(0, nl + 1);
        }
    }
    CHECK(ok == 90);
    CHECK(err == 1);
    REQUIRE(eventually([&] { return health(canteen.port())["outbox_depth"] == 0; }));
    CHECK(replay_type(b.query, "food.temp_reading").size() == 90);
    auto alerts = replay_type(b.query, "food.alert");
    REQUIRE(alerts.size() == 1);
    const auto& a = std::get<food_alert>(alerts[0].body);
    CHECK(a.kind == food_alert_kind::cold_chain);
    CHECK(a.canteen_id == "420502K001-main");
}

TEST_CASE("bad HTTP bodies get 400 or 413 and the service keeps serving", "[services_e2e]") {
    temp_dir d;
    broker_process b(d / "store");
    service_process hazard("pingan-hazard",
                           {"--data", d / "hazard", "--broker", b.ingest, "--max-body", "4096"});
    auto port = hazard.port();
    CHECK(request(port, http::verb::post, "/hazard/report", "{not json").status == 400);
    CHECK(request(port, http::verb::post, "/hazard/report", "[1,2]").status == 400);
    CHECK(request(port, http::verb::post, "/hazard/report",
                  "{\"school\":\"420502K001\",\"description\":\"\xff\xfe\"}")
              .status == 400);
    auto bad = post(port, "/hazard/report", {{"school", "420502K001"}, {"area", "roof"}});
    CHECK(bad.status == 400);
    CHECK(bad.j()["errors"].size() >= 4); // area, description, location, found_by, grade
    CHECK(request(port, http::verb::post, "/hazard/report", std::string(8000, ' ')).status == 413);
    CHECK(request(port, http::verb::get, "/hazard/report").status == 405);
    CHECK(request(port, http::verb::get, "/nowhere").status == 404);
    auto good = post(port, "/hazard/report", hazard_report(1));
    CHECK(good.status == 202);
    REQUIRE(eventually([&] { return health(port)["outbox_depth"] == 0; }));
    auto stored = replay_type(b.query, "hazard.");
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].id.str() == good.j()["id"]);
}

TEST_CASE("the wellbeing service never lets the raw student id reach the broker's log",
          "[services_e2e]") {
    temp_dir d;
    broker_process b(d / "store");
    {
        process make(
            {bin("pingan-wellbeing"), "--registry", registry_csv(), "--make-keys", d / "keys"});
        REQUIRE(make.wait() == 0);
    }
    service_process wb("pingan-wellbeing",
                       {"--data", d / "wellbeing", "--broker", b.ingest, "--keys", d / "keys"});
    const std::string student = "STU-20190347-QX";
    for (const char* level : {"red", "orange", "yellow"}) {
        auto a = post(wb.port(), "/psych/alert",
                      {{"school", "420502K001"},
                       {"student_id", student},
                       {"risk_level", level},
                       {"source", "teacher"},
                       {"indicator_codes", {"SH-1", "SLEEP-2"}},
                       {"reported_by_role", "head_teacher"}});
        REQUIRE(a.status == 202);
        CHECK(a.body.find(student) == std::string::npos);
    }
    auto named = post(wb.port(), "/psych/alert",
                      {{"school", "420502K001"},
                       {"student_id", student},
                       {"student_name", "张三"},
                       {"risk_level", "red"},
                       {"source", "teacher"},
                       {"indicator_codes", {"SH-1"}},
                       {"reported_by_role", "head_teacher"}});
    CHECK(named.status == 400);
    REQUIRE(eventually([&] { return health(wb.port())["outbox_depth"] == 0; }));

    // Search everything the broker stored, as an auditor would, with `pingan replay`.
    ::setenv("PINGAN_QUERY", b.query.c_str(), 1);
    process replay({bin("pingan"), "replay", "--json", "--query", b.query});
    auto lines = replay.lines(20s);
    CHECK(replay.wait() == 0);
    REQUIRE(lines.size() == 3);
    std::set<std::string> refs;
    for (const auto& l : lines) {
        CHECK(l.find(student) == std::string::npos);
        CHECK(l.find("张三") == std::string::npos);
        json j;
        REQUIRE_FALSE(parse_json(l, j));
        CHECK(j["type"] == "psych.alert");
        CHECK(j["scope"] == "Private");
        refs.insert(j["body"]["student_ref"].get<std::string>());
    }
    CHECK(refs.size() == 1); // one student, one pseudonym
    // And the raw bytes of the store hold it nowhere either.
    std::ifstream data(d / "store/data.mdb", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(data)), std::istreambuf_iterator<char>());
    CHECK_FALSE(bytes.empty());
    CHECK(bytes.find(student) == std::string::npos);
}

TEST_CASE("a psych alert waiting in a sealed outbox is in no byte of it, and survives kill -9",
          "[services_e2e]") {
    temp_dir d;
    {
        process make(
            {bin("pingan-wellbeing"), "--registry", registry_csv(), "--make-keys", d / "keys"});
        REQUIRE(make.wait() == 0);
    }
    auto ingest = "tcp://127.0.0.1:" + std::to_string(free_port());
    std::vector<std::string> args{
        "--data", d / "wellbeing", "--broker",     ingest,
        "--keys", d / "keys",      "--outbox-key", d / "secrets/outbox.key"};
    const std::string code = "SH-OUTBOX-SEALED-9";
    std::string id;
    {
        service_process wb("pingan-wellbeing", args);
        auto a = post(wb.port(), "/psych/alert",
                      {{"school", "420502K001"},
                       {"student_id", "STU-20190347-QX"},
                       {"risk_level", "red"},
                       {"source", "teacher"},
                       {"indicator_codes", {code}},
                       {"reported_by_role", "head_teacher"}});
        REQUIRE(a.status == 202);
        id = a.j()["id"].get<std::string>();
        CHECK(health(wb.port())["outbox_depth"] == 1); // no broker yet: it waits
        wb.proc->signal(SIGKILL);
        wb.proc->wait();
    }
    CHECK(std::filesystem::status(d / "secrets/outbox.key").permissions() ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    std::ifstream data(d / "wellbeing/outbox/data.mdb", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(data)), std::istreambuf_iterator<char>());
    CHECK_FALSE(bytes.empty());
    CHECK(bytes.find(code) == std::string::npos);
    CHECK(bytes.find("head_teacher") == std::string::npos);

    // Without its key the outbox is not opened: the service says why and stops.
    {
        process without({"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh", bin("pingan-wellbeing"),
                         "--http", "127.0.0.1:0", "--registry", registry_csv(), "--insecure-dev",
                         "--data", d / "wellbeing", "--broker", ingest, "--keys", d / "keys"});
        auto lines = without.lines(20s);
        CHECK(without.wait() == 2);
        bool told = false;
        for (const auto& l : lines)
            told = told || l.find("is sealed: start with --outbox-key FILE") != std::string::npos;
        CHECK(told);
    }

    // With it, the alert reaches the broker once.
    fixed_broker b(d / "store", ingest);
    service_process again("pingan-wellbeing", args);
    REQUIRE(eventually([&] { return health(again.port())["outbox_depth"] == 0; }));
    auto stored = replay_type(b.query, "psych.alert");
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].id.str() == id);
}

TEST_CASE("a service with a school's key publishes to a secured broker as that school",
          "[services_e2e]") {
    temp_dir d;
    auto server = curve_generate(), school = curve_generate(), auditor = curve_generate();
    std::ofstream(d / "server.key") << format_keypair(server);
    std::ofstream(d / "school.key") << format_keypair(school);
    for (const char* f : {"server.key", "school.key"}) // secret keys: owner only
        std::filesystem::permissions(
            d / f, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
            std::filesystem::perm_options::replace);
    std::ofstream(d / "clients.yaml") << "clients:\n"
                                         "  - identity: school:420502K001\n    key: \""
                                      << school.public_key
                                      << "\"\n"
                                         "    scope: {school: 420502K001}\n    may: [publish]\n"
                                         "  - identity: auditor:test\n    key: \""
                                      << auditor.public_key
                                      << "\"\n"
                                         "    scope: city\n    may: [query]\n";
    broker_process b(d / "store",
                     {"--server-key", d / "server.key", "--clients", d / "clients.yaml"});
    service_process hazard("pingan-hazard",
                           {"--data", d / "hazard", "--broker", b.ingest, "--key", d / "school.key",
                            "--server-key", "z85:" + server.public_key});
    REQUIRE(post(hazard.port(), "/hazard/report", hazard_report(1)).status == 202);
    auto other = hazard_report(2);
    other["school"] = "420502K002";
    REQUIRE(post(hazard.port(), "/hazard/report", other).status == 202); // refused by the broker
    REQUIRE(eventually([&] { return health(hazard.port())["outbox_depth"] == 0; }));
    CHECK(health(hazard.port())["dead_letters"] == 1); // the other school's report

    zmq::context_t ctx(1);
    curve_client as_auditor{auditor, server.public_key};
    query_client q(ctx, b.query, &as_auditor);
    std::vector<event> stored;
    q.replay({}, [&](std::uint64_t, std::string_view bytes) {
        event e;
        if (!decode(bytes, e)) stored.push_back(std::move(e));
        return true;
    });
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].school == "420502K001");
    CHECK(stored[0].actor == "school:420502K001");
}
