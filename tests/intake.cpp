// End-to-end tests of the school services' secured intake: real pingan-hazard
// and pingan-broker processes, credentials issued and revoked with the real
// `pingan credentials` tool, HTTP and HTTPS on 127.0.0.1 with ephemeral ports.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/codec.hpp"

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}
std::string source(const std::string& rel) {
    return std::string(PINGAN_SOURCE_DIR) + "/" + rel;
}

// Runs a command to its end. Returns: exit code and standard output.
std::pair<int, std::string> run(std::vector<std::string> argv, const std::string& err = {}) {
    process p(std::move(argv), std::string(), err);
    std::string out;
    for (auto& l : p.lines(20s))
        out += l + "\n";
    return {p.wait(), out};
}

// Issues a credential with `pingan credentials issue`. Returns: its token.
std::string issue(const std::string& file, const std::string& name, std::vector<std::string> more) {
    std::vector<std::string> argv{
        bin("pingan"), "credentials", "issue",      name,
        "--file",      file,          "--registry", source("data/schools.csv")};
    argv.insert(argv.end(), more.begin(), more.end());
    auto [code, out] = run(argv);
    REQUIRE(code == 0);
    while (!out.empty() && out.back() == '\n')
        out.pop_back();
    REQUIRE(out.rfind("pgn_", 0) == 0);
    return out;
}

struct hazard_service {
    std::unique_ptr<process> proc;
    unsigned short port = 0;

    explicit hazard_service(std::vector<std::string> args) {
        std::vector<std::string> argv{
            bin("pingan-hazard"),       "--http",      "127.0.0.1:0", "--registry",
            source("data/schools.csv"), "--log-level", "warn"};
        argv.insert(argv.end(), args.begin(), args.end());
        proc = std::make_unique<process>(argv);
        auto l = proc->line(20s);
        std::smatch m;
        static const std::regex re("listening http=\\S+:(\\d+)");
        if (!l || !std::regex_search(*l, m, re))
            throw std::runtime_error("pingan-hazard did not start: " + l.value_or("(no output)"));
        port = static_cast<unsigned short>(std::stoul(m[1]));
    }
};

struct answer {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;
    json j() const {
        json out;
        (void)parse_json(body, out);
        return out;
    }
};

using headers = std::vector<std::pair<std::string, std::string>>;

http::request<http::string_body> make_request(http::verb verb, const std::string& target,
                                              const std::string& body, const headers& h,
                                              unsigned short port) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (auto& [k, v] : h)
        req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    return req;
}

template <class Stream> answer exchange(Stream& s, http::request<http::string_body>& req) {
    beast::error_code ec;
    http::write(s, req, ec);
    if (ec) return {0, ec.message(), {}};
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    http::read(s, buf, p, ec);
    if (ec) return {0, ec.message(), {}};
    answer a{static_cast<int>(p.get().result_int()), p.get().body(), {}};
    for (const auto& f : p.get())
        a.headers[std::string(f.name_string())] = std::string(f.value());
    return a;
}

// A keep-alive connection, for several requests in a row.
struct connection {
    net::io_context ioc;
    tcp::socket s{ioc};
    unsigned short port;
    explicit connection(unsigned short p) : port(p) {
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    }
    // From another loopback address (127.0.0.2, ...): the limits per address
    // count it apart.
    connection(unsigned short p, const std::string& from) : port(p) {
        s.open(tcp::v4());
        s.bind(tcp::endpoint(net::ip::make_address(from), 0));
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    }
    answer post(const std::string& target, const json& body, const headers& h) {
        auto req = make_request(http::verb::post, target, body.dump(), h, port);
        return exchange(s, req);
    }
    answer get(const std::string& target) {
        auto req = make_request(http::verb::get, target, "", {}, port);
        return exchange(s, req);
    }
};

// The value of one sample of a Prometheus text page ("name{labels}"), or -1 if absent.
double metric(const std::string& page, const std::string& sample) {
    std::istringstream in(page);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
    return -1;
}

double refused(const std::string& page, const std::string& reason) {
    return metric(page, "pingan_service_intake_refused_total{reason=\"" + reason + "\"}");
}

answer post(unsigned short port, const std::string& target, const std::string& body,
            const headers& h) {
    connection c(port);
    auto req = make_request(http::verb::post, target, body, h, port);
    return exchange(c.s, req);
}

headers with_token(const std::string& token) {
    return {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}};
}

json hazard(const std::string& school, int n) {
    return {{"school", school},
            {"area", "building"},
            {"grade", "general"},
            {"description", "护栏松动 #" + std::to_string(n)},
            {"location", "教学楼二楼"}};
}

json health(unsigned short port) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    auto req = make_request(http::verb::get, "/health", "", {}, port);
    return exchange(s, req).j();
}

std::vector<event> stored(const std::string& query, const std::string& type) {
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

template <class F> bool eventually(F done, std::chrono::milliseconds limit = 20s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

} // namespace

TEST_CASE("unknown, revoked and expired credentials get 401 and nothing is stored", "[intake]") {
    temp_dir d;
    broker_process b(d / "store");
    auto creds = d / "credentials.json";
    auto good =
        issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    auto revoked = issue(creds, "kiosk-1", {"--scope", "school:420502K001", "--role", "device"});
    auto expired = issue(
        creds, "old.phone",
        {"--scope", "school:420502K001", "--role", "teacher", "--expires", "2020-01-01T00:00:00Z"});
    REQUIRE(run({bin("pingan"), "credentials", "revoke", "kiosk-1", "--file", creds}).first == 0);
    hazard_service h({"--data", d / "hazard", "--broker", b.ingest, "--credentials", creds});

    auto body = hazard("420502K001", 1).dump();
    auto none = post(h.port, "/hazard/report", body, {{"Content-Type", "application/json"}});
    CHECK(none.status == 401);
    CHECK(none.headers["WWW-Authenticate"].rfind("Bearer", 0) == 0);
    CHECK(none.j()["errors"][0]["code"] == "unauthorized");
    auto unknown_token = good.substr(0, good.size() - 4) + "0000";
    if (unknown_token == good) unknown_token = good.substr(0, good.size() - 4) + "1111";
    auto u = post(h.port, "/hazard/report", body, with_token(unknown_token));
    CHECK(u.status == 401);
    CHECK(u.j()["errors"][0]["message"] == "unknown credential");
    auto r = post(h.port, "/hazard/report", body, with_token(revoked));
    CHECK(r.status == 401);
    CHECK(r.j()["errors"][0]["message"] == "this credential has been revoked");
    auto e = post(h.port, "/hazard/report", body, with_token(expired));
    CHECK(e.status == 401);
    CHECK(e.j()["errors"][0]["message"] == "this credential has expired");
    CHECK(health(h.port)["intake"]["unauthenticated"] == 4);

    // Only the authenticated report reaches the broker, with its reporter.
    auto ok = post(h.port, "/hazard/report", hazard("420502K001", 2).dump(), with_token(good));
    REQUIRE(ok.status == 202);
    std::vector<event> got;
    REQUIRE(eventually([&] {
        got = stored(b.query, "hazard.reported");
        return !got.empty();
    }));
    REQUIRE(eventually([&] { return health(h.port)["outbox_depth"] == 0; }));
    got = stored(b.query, "hazard.reported");
    REQUIRE(got.size() == 1);
    CHECK(got[0].id.str() == ok.j()["id"]);
    CHECK(got[0].source == "pingan-hazard/default/zhang.wei");
    CHECK(std::get<hazard_reported>(got[0].body).found_by == "zhang.wei");
}

TEST_CASE("a token of school A posting for school B gets 403 at once", "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto a =
        issue(creds, "officer.a", {"--scope", "school:420502K001", "--role", "safety_officer"});
    auto district =
        issue(creds, "bureau.tablet", {"--scope", "district:420502", "--role", "safety_officer"});
    // No broker at all: the refusal cannot depend on a later dead letter.
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    auto other = post(h.port, "/hazard/report", hazard("420502K002", 1).dump(), with_token(a));
    CHECK(other.status == 403);
    CHECK(other.j()["errors"][0]["field"] == "school");
    CHECK_THAT(other.j()["errors"][0]["message"].get<std::string>(),
               Catch::Contains("school:420502K001"));
    auto far = post(h.port, "/hazard/report", hazard("420503K001", 1).dump(), with_token(district));
    CHECK(far.status == 403);
    CHECK(post(h.port, "/hazard/report", hazard("420502K002", 2).dump(), with_token(district))
              .status == 202);
    auto hl = health(h.port);
    CHECK(hl["outbox_depth"] == 1);
    CHECK(hl["intake"]["out_of_scope"] == 2);
}

TEST_CASE("a cross-origin form post is refused and only JSON is taken", "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto t =
        issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    // What a malicious page's <form> sends: its own Origin and a form body.
    auto form = post(h.port, "/hazard/report",
                     "school=420502K001&area=building&grade=general&description=x&location=y",
                     {{"Origin", "https://evil.example"},
                      {"Content-Type", "application/x-www-form-urlencoded"}});
    CHECK(form.status == 403);
    CHECK_THAT(form.j()["errors"][0]["message"].get<std::string>(),
               Catch::Contains("cross-origin"));
    // Even with a stolen token, a foreign page is refused.
    auto h2 = with_token(t);
    h2.emplace_back("Origin", "https://evil.example");
    CHECK(post(h.port, "/hazard/report", hazard("420502K001", 1).dump(), h2).status == 403);
    // text/plain (a "simple" request a page may send without asking) is not JSON.
    auto plain = post(h.port, "/hazard/report", hazard("420502K001", 1).dump(),
                      {{"Content-Type", "text/plain"}, {"Authorization", "Bearer " + t}});
    CHECK(plain.status == 415);
    CHECK(plain.j()["errors"][0]["code"] == "unsupported_media_type");
    // The intake's own origin may post.
    auto own = with_token(t);
    own.emplace_back("Origin", "http://127.0.0.1:" + std::to_string(h.port));
    CHECK(post(h.port, "/hazard/report", hazard("420502K001", 2).dump(), own).status == 202);
    auto hl = health(h.port);
    CHECK(hl["outbox_depth"] == 1);
    CHECK(hl["intake"]["cross_origin"] == 2);
    CHECK(hl["intake"]["wrong_media_type"] == 1);
}

TEST_CASE("a body naming another reporter is refused naming the field", "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto t =
        issue(creds, "wang.fang", {"--scope", "school:420502K001", "--role", "facilities_manager"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    auto j = hazard("420502K001", 1);
    j["found_by"] = "principal";
    auto a = post(h.port, "/hazard/report", j.dump(), with_token(t));
    CHECK(a.status == 403);
    CHECK(a.j()["errors"][0]["field"] == "found_by");
    CHECK_THAT(a.j()["errors"][0]["message"].get<std::string>(), Catch::Contains("wang.fang"));
    j["found_by"] = "facilities_manager"; // one of its roles
    CHECK(post(h.port, "/hazard/report", j.dump(), with_token(t)).status == 202);
    auto v = post(h.port, "/hazard/verify",
                  json{{"school", "420502K001"},
                       {"hazard_id", "HZ-1"},
                       {"verifier", "safety_vp"},
                       {"result", "pass"},
                       {"evidence", "已修复"}}
                      .dump(),
                  with_token(t));
    CHECK(v.status == 403);
    CHECK(v.j()["errors"][0]["field"] == "verifier");
}

TEST_CASE("a revoked token is refused from the next request, on the same connection, without a "
          "restart",
          "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto t =
        issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    connection c(h.port);
    CHECK(c.post("/hazard/report", hazard("420502K001", 1), with_token(t)).status == 202);
    REQUIRE(run({bin("pingan"), "credentials", "revoke", "zhang.wei", "--file", creds}).first == 0);
    auto after = c.post("/hazard/report", hazard("420502K001", 2), with_token(t));
    CHECK(after.status == 401);
    CHECK(after.j()["errors"][0]["message"] == "this credential has been revoked");
    // The report, and the revocation's credential.changed event (no broker here).
    CHECK(eventually([&] { return health(h.port)["outbox_depth"] == 2; }));

    // SIGHUP re-reads the file too.
    auto before = health(h.port)["intake"]["credential_reloads"].get<int>();
    h.proc->signal(SIGHUP);
    CHECK(eventually(
        [&] { return health(h.port)["intake"]["credential_reloads"].get<int>() > before; }));
}

TEST_CASE("each change of the credentials is an event in the log, per school and district, "
          "even when no request comes",
          "[intake]") {
    temp_dir d;
    broker_process b(d / "store");
    auto creds = d / "credentials.json";
    issue(creds, "zhang.wei",
          {"--scope", "school:420502K001", "--scope", "school:420502K002", "--role",
           "safety_officer"});
    issue(creds, "district.inspector", {"--scope", "district:420503", "--role", "safety_vp"});
    hazard_service h({"--data", d / "hazard", "--broker", b.ingest, "--credentials", creds});

    // Revoked while the service is idle: it looks at the file by itself.
    REQUIRE(run({bin("pingan"), "credentials", "revoke", "zhang.wei", "--file", creds}).first == 0);
    std::vector<event> got;
    REQUIRE(eventually([&] {
        got = stored(b.query, "credential.changed");
        return got.size() >= 2;
    }));
    REQUIRE(got.size() == 2);
    std::set<std::string> schools;
    for (const auto& e : got) {
        const auto& c = std::get<credential_changed>(e.body);
        CHECK(c.credential == "zhang.wei");
        CHECK(c.change == credential_change::revoked);
        CHECK(c.trigger == "file changed");
        CHECK(c.file == creds);
        CHECK(c.roles == std::vector<std::string>{"safety_officer"});
        CHECK(e.source == "pingan-hazard/default");
        schools.insert(e.school);
    }
    CHECK(schools == std::set<std::string>{"420502K001", "420502K002"});

    // A district's credential revoked, then SIGHUP: one event for the
    // district, with no school; a new credential is recorded as issued.
    REQUIRE(run({bin("pingan"), "credentials", "revoke", "district.inspector", "--file", creds})
                .first == 0);
    issue(creds, "li.na", {"--scope", "school:420502K001", "--role", "teacher"});
    h.proc->signal(SIGHUP);
    REQUIRE(eventually([&] {
        got = stored(b.query, "credential.changed");
        return got.size() >= 4;
    }));
    REQUIRE(got.size() == 4);
    std::map<std::string, event> by_name;
    for (std::size_t i = 2; i < got.size(); ++i)
        by_name[std::get<credential_changed>(got[i].body).credential] = got[i];
    REQUIRE(by_name.count("district.inspector") == 1);
    const auto& dist = by_name["district.inspector"];
    CHECK(dist.school.empty());
    CHECK(dist.district == "420503");
    CHECK(std::get<credential_changed>(dist.body).change == credential_change::revoked);
    REQUIRE(by_name.count("li.na") == 1);
    CHECK(by_name["li.na"].school == "420502K001");
    CHECK(std::get<credential_changed>(by_name["li.na"].body).change == credential_change::issued);
    // Nothing else changed, so nothing else was recorded.
    h.proc->signal(SIGHUP);
    auto before = health(h.port)["intake"]["credential_reloads"].get<int>();
    h.proc->signal(SIGHUP);
    REQUIRE(eventually(
        [&] { return health(h.port)["intake"]["credential_reloads"].get<int>() > before; }));
    REQUIRE(eventually([&] { return health(h.port)["outbox_depth"] == 0; }));
    CHECK(stored(b.query, "credential.changed").size() == 4);
}

TEST_CASE("an intake without credentials, or off loopback without TLS, refuses to start",
          "[intake]") {
    temp_dir d;
    auto [code, out] = run({bin("pingan-hazard"), "--data", d / "h1", "--http", "127.0.0.1:0",
                            "--registry", source("data/schools.csv")},
                           d / "err1");
    CHECK(code != 0);
    std::ifstream e1(d / "err1");
    std::string text((std::istreambuf_iterator<char>(e1)), {});
    CHECK_THAT(text, Catch::Contains("no --credentials FILE"));

    auto creds = d / "credentials.json";
    issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    std::tie(code, out) = run({bin("pingan-hazard"), "--data", d / "h2", "--http", "0.0.0.0:0",
                               "--registry", source("data/schools.csv"), "--credentials", creds},
                              d / "err2");
    CHECK(code != 0);
    std::ifstream e2(d / "err2");
    text.assign((std::istreambuf_iterator<char>(e2)), {});
    CHECK_THAT(text, Catch::Contains("--tls-cert"));
}

TEST_CASE("the intake speaks HTTPS with a certificate and key from files", "[intake]") {
    temp_dir d;
    auto cert = d / "cert.pem", key = d / "key.pem";
    // A self-signed certificate for 127.0.0.1, made by the openssl tool.
    auto [code, out] =
        run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert},
            d / "openssl.err");
    REQUIRE(code == 0);
    std::filesystem::permissions(
        key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        std::filesystem::perm_options::replace);
    auto creds = d / "credentials.json";
    auto t =
        issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials",
                      creds, "--tls-cert", cert, "--tls-key", key});

    net::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(cert);
    ctx.set_verify_mode(ssl::verify_peer);
    beast::ssl_stream<tcp::socket> s(ioc, ctx);
    s.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), h.port));
    s.handshake(ssl::stream_base::client);
    auto req = make_request(http::verb::post, "/hazard/report", hazard("420502K001", 1).dump(),
                            with_token(t), h.port);
    auto a = exchange(s, req);
    CHECK(a.status == 202);
    CHECK(a.j()["type"] == "hazard.reported");

    // Plain HTTP to the TLS port gets no answer, and the failed handshake is counted.
    auto plain = post(h.port, "/hazard/report", hazard("420502K001", 2).dump(), with_token(t));
    CHECK(plain.status == 0);
    auto hs = make_request(http::verb::get, "/health", "", {}, h.port);
    beast::ssl_stream<tcp::socket> s2(ioc, ctx);
    s2.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), h.port));
    s2.handshake(ssl::stream_base::client);
    auto hl = exchange(s2, hs).j();
    CHECK(hl["outbox_depth"] == 1);
    CHECK(hl["intake"]["tls"] == true);
    CHECK(hl["intake"]["tls_handshake_failures"] == 1);
}

TEST_CASE("requests over the rate of a credential or an address get 429 and are counted",
          "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto t =
        issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials",
                      creds, "--rate-per-credential", "0.01", "--burst-per-credential", "2"});
    connection c(h.port);
    CHECK(c.post("/hazard/report", hazard("420502K001", 1), with_token(t)).status == 202);
    CHECK(c.post("/hazard/report", hazard("420502K001", 2), with_token(t)).status == 202);
    auto third = c.post("/hazard/report", hazard("420502K001", 3), with_token(t));
    CHECK(third.status == 429);
    CHECK(third.headers["Retry-After"] == "1");
    CHECK_THAT(third.j()["errors"][0]["message"].get<std::string>(), Catch::Contains("zhang.wei"));
    auto hl = health(h.port);
    CHECK(hl["outbox_depth"] == 2);
    CHECK(hl["intake"]["rate_limited_credential"] == 1);

    hazard_service g({"--data", d / "hazard2", "--broker", "tcp://127.0.0.1:1", "--credentials",
                      creds, "--rate-per-address", "0.01", "--burst-per-address", "1"});
    CHECK(post(g.port, "/hazard/report", hazard("420502K001", 4).dump(), with_token(t)).status ==
          202);
    auto over = post(g.port, "/hazard/report", hazard("420502K001", 5).dump(), with_token(t));
    CHECK(over.status == 429);
    CHECK_THAT(over.j()["errors"][0]["message"].get<std::string>(),
               Catch::Contains("this address"));
}

TEST_CASE("connections over the limit of an address or a credential are refused with a reason",
          "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto t =
        issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials",
                      creds, "--connections-per-address", "2", "--connections-per-credential",
                      "1"});
    connection first(h.port);
    CHECK(first.post("/hazard/report", hazard("420502K001", 1), with_token(t)).status == 202);
    // A second connection of the same credential: refused, and closed.
    {
        connection second(h.port);
        auto by_cred = second.post("/hazard/report", hazard("420502K001", 2), with_token(t));
        CHECK(by_cred.status == 429);
        CHECK_THAT(by_cred.j()["errors"][0]["message"].get<std::string>(),
                   Catch::Contains("open connections for the credential zhang.wei"));
    }
    // Its address slot comes back once the service has closed it: hold it.
    std::unique_ptr<connection> held;
    REQUIRE(eventually([&] {
        held = std::make_unique<connection>(h.port);
        return held->get("/health").status == 200;
    }));
    connection third(h.port);
    auto by_addr = third.post("/hazard/report", hazard("420502K001", 3), with_token(t));
    CHECK(by_addr.status == 429);
    CHECK_THAT(by_addr.j()["errors"][0]["message"].get<std::string>(),
               Catch::Contains("open connections from this address"));
    auto hl = held->get("/health").j();
    CHECK(hl["intake"]["connections_refused_credential"] == 1);
    CHECK(hl["intake"]["connections_refused_address"] >= 1);
    CHECK(hl["outbox_depth"] == 1);
}

TEST_CASE("every limit of the intake refuses clearly and counts the refusal in /metrics",
          "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto rated =
        issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
    auto held_by_one =
        issue(creds, "kiosk-2", {"--scope", "school:420502K001", "--role", "safety_officer"});
    // Every limit small; each is reached from an address of its own, so that
    // one limit's requests do not count against another's.
    hazard_service h({"--data",
                      d / "hazard",
                      "--broker",
                      "tcp://127.0.0.1:1",
                      "--credentials",
                      creds,
                      "--rate-per-address",
                      "0.01",
                      "--burst-per-address",
                      "3",
                      "--rate-per-credential",
                      "0.01",
                      "--burst-per-credential",
                      "2",
                      "--connections-per-address",
                      "2",
                      "--connections-per-credential",
                      "1",
                      "--max-body",
                      "2048"});
    auto message = [](const answer& a) { return a.j()["errors"][0]["message"].get<std::string>(); };

    // Requests per address: the fourth of a burst of three.
    connection by_address(h.port, "127.0.0.2");
    for (int i = 0; i < 3; ++i)
        CHECK(by_address.get("/health").status == 200);
    auto over_address = by_address.get("/health");
    CHECK(over_address.status == 429);
    CHECK_THAT(message(over_address), Catch::Contains("too many requests from this address"));

    // Requests per credential: the third of a burst of two.
    connection by_credential(h.port, "127.0.0.3");
    CHECK(by_credential.post("/hazard/report", hazard("420502K001", 1), with_token(rated)).status ==
          202);
    CHECK(by_credential.post("/hazard/report", hazard("420502K001", 2), with_token(rated)).status ==
          202);
    auto over_credential =
        by_credential.post("/hazard/report", hazard("420502K001", 3), with_token(rated));
    CHECK(over_credential.status == 429);
    CHECK_THAT(message(over_credential),
               Catch::Contains("too many requests for the credential zhang.wei"));

    // Open connections per credential: a second one while the first is open.
    connection first_of_credential(h.port, "127.0.0.4");
    CHECK(
        first_of_credential.post("/hazard/report", hazard("420502K001", 4), with_token(held_by_one))
            .status == 202);
    connection second_of_credential(h.port, "127.0.0.5");
    auto over_credential_connections = second_of_credential.post(
        "/hazard/report", hazard("420502K001", 5), with_token(held_by_one));
    CHECK(over_credential_connections.status == 429);
    CHECK_THAT(message(over_credential_connections),
               Catch::Contains("too many open connections for the credential kiosk-2"));

    // Open connections per address: a third one while two are open.
    connection one(h.port, "127.0.0.6"), two(h.port, "127.0.0.6"), three(h.port, "127.0.0.6");
    CHECK(one.get("/health").status == 200);
    CHECK(two.get("/health").status == 200);
    auto over_address_connections = three.get("/health");
    CHECK(over_address_connections.status == 429);
    CHECK_THAT(message(over_address_connections),
               Catch::Contains("too many open connections from this address (at most 2)"));

    // A body over --max-body, and a header over 8 KiB.
    connection large(h.port, "127.0.0.7");
    json big = hazard("420502K001", 6);
    big["description"] = std::string(3000, 'x');
    auto too_large = large.post("/hazard/report", big, with_token(rated));
    CHECK(too_large.status == 413);
    CHECK_THAT(message(too_large), Catch::Contains("the limit is 2048 bytes"));
    connection long_header(h.port, "127.0.0.8");
    auto req = make_request(http::verb::get, "/health", "", {{"X-Padding", std::string(9000, 'p')}},
                            h.port);
    auto header = exchange(long_header.s, req);
    CHECK(header.status == 431);
    CHECK_THAT(message(header), Catch::Contains("header is over 8192 bytes"));

    // Read from an address no limit has seen.
    connection scrape(h.port, "127.0.0.9");
    auto m = scrape.get("/metrics");
    REQUIRE(m.status == 200);
    CHECK(refused(m.body, "rate_limited_address") == 1);
    CHECK(refused(m.body, "rate_limited_credential") == 1);
    CHECK(refused(m.body, "connections_refused_credential") == 1);
    CHECK(refused(m.body, "connections_refused_address") == 1);
    CHECK(refused(m.body, "body_too_large") == 1);
    CHECK(refused(m.body, "header_too_large") == 1);
    CHECK(refused(m.body, "connections_refused_service") == 0);
    CHECK(refused(m.body, "unauthenticated") == 0);
    CHECK(refused(m.body, "tls_handshake_failures") == 0);
    // /health names the same counters.
    auto hl = scrape.get("/health").j();
    CHECK(hl["intake"]["rate_limited_address"] == 1);
    CHECK(hl["intake"]["body_too_large"] == 1);
    CHECK(hl["intake"]["header_too_large"] == 1);
    CHECK(hl["outbox_depth"] == 3);

    // The service's own cap, --max-connections: one more connection is
    // answered 503 and closed.
    hazard_service g({"--data", d / "hazard2", "--broker", "tcp://127.0.0.1:1", "--credentials",
                      creds, "--max-connections", "2"});
    connection a(g.port), b(g.port);
    CHECK(a.get("/health").status == 200);
    CHECK(b.get("/health").status == 200);
    {
        connection c(g.port);
        auto busy = c.get("/health");
        CHECK(busy.status == 503);
        CHECK(busy.body.find("--max-connections") != std::string::npos);
    }
    auto capped = a.get("/metrics");
    REQUIRE(capped.status == 200);
    CHECK(refused(capped.body, "connections_refused_service") == 1);
    CHECK(refused(capped.body, "connections_refused_address") == 0);
    CHECK(metric(capped.body, "pingan_service_intake_requests_total") == 3);
}

TEST_CASE("a broker without keys starts only in insecure development mode and says so loudly",
          "[intake]") {
    temp_dir d;
    auto argv = broker_argv(d / "store");
    // The test runner sets PINGAN_INSECURE_DEV for every program; not here.
    ::unsetenv("PINGAN_INSECURE_DEV");
    auto [code, out] = run(argv, d / "refused.err");
    ::setenv("PINGAN_INSECURE_DEV", "1", 1);
    CHECK(code != 0);
    CHECK(out.empty());
    std::ifstream e1(d / "refused.err");
    std::string text((std::istreambuf_iterator<char>(e1)), {});
    CHECK_THAT(text, Catch::Contains("--insecure-dev"));

    argv.push_back("--insecure-dev");
    ::unsetenv("PINGAN_INSECURE_DEV");
    process b(argv, std::string(), d / "insecure.err");
    ::setenv("PINGAN_INSECURE_DEV", "1", 1);
    auto l = b.line(20s);
    REQUIRE(l);
    CHECK(l->rfind("listening ingest=", 0) == 0);
    // Its signal handlers may not be set yet: only its log matters here.
    b.signal(SIGTERM);
    b.wait();
    std::ifstream e2(d / "insecure.err");
    text.assign((std::istreambuf_iterator<char>(e2)), {});
    CHECK_THAT(text, Catch::Contains("INSECURE (--insecure-dev)"));
}

TEST_CASE("a remediation plan needs a principal or safety VP; an appeal names its filer",
          "[intake]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto staff =
        issue(creds, "wang.fang", {"--scope", "school:420502K001", "--role", "facilities_manager"});
    auto leader = issue(creds, "li.ming", {"--scope", "school:420502K001", "--role", "principal"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    json plan{{"school", "420502K001"},
              {"hazard_id", "HZ-1"},
              {"plan_id", "P-1"},
              {"due", "2099-01-01T00:00:00Z"},
              {"responsible", "facilities_manager"},
              {"measures", {"更换护栏"}}};
    auto refused = post(h.port, "/hazard/plan", plan.dump(), with_token(staff));
    CHECK(refused.status == 403);
    CHECK_THAT(refused.j()["errors"][0]["message"].get<std::string>(),
               Catch::Contains("principal, safety_vp"));
    auto ok = post(h.port, "/hazard/plan", plan.dump(), with_token(leader));
    CHECK(ok.status == 202);
    json appeal{{"school", "420502K001"}, {"hazard_id", "HZ-1"}, {"appeal_id", "AP-1"},
                {"appellant", "school"},  {"disputed", "fail"},  {"grounds", "已整改"},
                {"filed_by", "principal"}};
    CHECK(post(h.port, "/hazard/appeal", appeal.dump(), with_token(leader)).status == 202);
    // Another person's name in filed_by is refused, naming the field.
    appeal["filed_by"] = "zhao.lei";
    auto other = post(h.port, "/hazard/appeal", appeal.dump(), with_token(leader));
    CHECK(other.status == 403);
    CHECK(other.j()["errors"][0]["field"] == "filed_by");
}
