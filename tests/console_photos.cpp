// The console's copy of the schools' photos (services/console/replicator.hpp):
// real pingan-broker, pingan-hazard and pingan-console processes, credentials
// issued with the real `pingan credentials`, HTTP on 127.0.0.1 with ephemeral
// ports, and a school service that answers with other bytes than it was asked
// for, on a socket of the test's own.
#include "broker_process.hpp"
#include "common/codec.hpp"
#include "photo_fixtures.hpp"
#include "pingan_run.hpp"
#include "services/common/photos.hpp"
#include "support.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
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
    std::string body, type, cookie;
    json j() const { return json::parse(body, nullptr, false); }
};

answer call(unsigned short port, http::verb verb, const std::string& target,
            const std::string& body = {}, const std::string& token = {},
            const std::string& cookie = {}, const std::string& type = "application/json") {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.set(http::field::content_type, type);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 24);
    http::read(s, buf, p);
    const auto& res = p.get();
    answer a{static_cast<int>(res.result_int()),
             res.body(),
             std::string(res[http::field::content_type]),
             {}};
    if (auto c = res.find(http::field::set_cookie); c != res.end()) {
        std::string v(c->value());
        a.cookie = v.substr(0, v.find(';'));
    }
    return a;
}

// A metric's value in a Prometheus exposition, or -1.
double metric(const std::string& text, const std::string& name) {
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
}

std::string issue(const std::string& file, const std::string& name, std::vector<std::string> more) {
    std::vector<std::string> argv{
        bin("pingan"), "credentials", "issue",      name,
        "--file",      file,          "--registry", source_path("data/schools.csv")};
    argv.insert(argv.end(), more.begin(), more.end());
    process p(argv);
    std::string out;
    for (auto& l : p.lines(20s))
        out += l;
    REQUIRE(p.wait() == 0);
    REQUIRE(out.rfind("pgn_", 0) == 0);
    return out;
}

unsigned short listening_port(process& p, const char* what) {
    auto l = p.line(20s);
    std::smatch m;
    static const std::regex re("listening http=\\S+:(\\d+)");
    if (!l || !std::regex_search(*l, m, re))
        throw std::runtime_error(std::string(what) +
                                 " did not start: " + l.value_or("(no output)"));
    return static_cast<unsigned short>(std::stoul(m[1]));
}

// A broker, a hazard service for 420502K001 whose report names one photo,
// and the credentials and users a console needs.
struct school_with_photo {
    temp_dir d;
    broker_process b{d / "store"};
    std::string officer, bureau_token_file = d / "bureau.token";
    std::unique_ptr<process> hazard;
    unsigned short hazard_port = 0;
    std::string hash, bytes; // the photo as the school service serves it

    school_with_photo() {
        auto creds = d / "credentials.json";
        officer =
            issue(creds, "zhang.wei", {"--scope", "school:420502K001", "--role", "safety_officer"});
        std::ofstream(bureau_token_file)
            << issue(creds, "xiling.bureau", {"--scope", "district:420502", "--role", "bureau"})
            << "\n";
        hazard = std::make_unique<process>(std::vector<std::string>{
            bin("pingan-hazard"), "--http", "127.0.0.1:0", "--registry",
            source_path("data/schools.csv"), "--log-level", "warn", "--data", d / "hazard",
            "--broker", b.ingest, "--credentials", creds});
        hazard_port = listening_port(*hazard, "pingan-hazard");
        auto up = call(hazard_port, http::verb::post, "/photos?school=420502K001",
                       make_jpeg(200, 150, 7), officer, {}, "image/jpeg");
        REQUIRE(up.status == 201);
        hash = up.j()["hash"].get<std::string>();
        auto got = call(hazard_port, http::verb::get, "/photos/" + hash, {}, officer);
        REQUIRE(got.status == 200);
        bytes = got.body;
        json report{
            {"school", "420502K001"},
            {"area", "building"},
            {"grade", "general"},
            {"description", "楼梯扶手断裂"},
            {"location", "教学楼二楼"},
            {"photo_refs",
             json::array({{{"hash", hash}, {"size", bytes.size()}, {"type", "image/jpeg"}}})}};
        REQUIRE(
            call(hazard_port, http::verb::post, "/hazard/report", report.dump(), officer).status ==
            202);
        std::ofstream(d / "pw") << "chen-password-1\n";
        process add({bin("pingan"), "users", "add", "chen", "--file", d / "users.json", "--scope",
                     "city", "--role", "supervisor", "--password-stdin"},
                    d / "pw");
        REQUIRE(add.wait() == 0);
    }

    struct console {
        std::unique_ptr<process> proc;
        unsigned short port = 0;
        json health() { return call(port, http::verb::get, "/health").j(); }
        // The photo is in the console's copy and nothing waits.
        bool holds_one_photo() {
            auto h = health();
            return h.contains("photos") && h["photos"]["held"] == 1 && h["photos"]["pending"] == 0;
        }
        std::string metrics() { return call(port, http::verb::get, "/metrics").body; }
        std::string login() {
            auto a = call(port, http::verb::post, "/api/login",
                          R"({"user":"chen","password":"chen-password-1"})");
            REQUIRE(a.status == 200);
            return a.cookie;
        }
        void stop() {
            proc->signal(SIGTERM);
            REQUIRE(proc->wait() == 0);
        }
    };

    console start_console(const std::vector<std::string>& sources) {
        std::vector<std::string> argv{bin("pingan-console"),
                                      "--http",
                                      "127.0.0.1:0",
                                      "--users",
                                      d / "users.json",
                                      "--registry",
                                      source_path("data/schools.csv"),
                                      "--ingest",
                                      b.ingest,
                                      "--feed",
                                      b.feed,
                                      "--query",
                                      b.query,
                                      "--data",
                                      d / "console",
                                      "--photo-token-file",
                                      bureau_token_file,
                                      "--log-level",
                                      "warn"};
        for (const auto& s : sources) {
            argv.push_back("--photo-source");
            argv.push_back(s);
        }
        console c;
        c.proc = std::make_unique<process>(argv);
        c.port = listening_port(*c.proc, "pingan-console");
        return c;
    }
    std::string source() const { return "http://127.0.0.1:" + std::to_string(hazard_port); }
};

// An HTTP server that answers every request with 200 and the same wrong photo.
struct lying_source {
    net::io_context ioc;
    tcp::acceptor acceptor{ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};
    std::string bytes = make_jpeg(200, 150, 8);
    std::atomic<int> asked{0};
    std::atomic<bool> stopping{false};
    std::thread thread;

    lying_source() {
        thread = std::thread([this] {
            for (;;) {
                beast::error_code ec;
                tcp::socket s(ioc);
                acceptor.accept(s, ec);
                if (ec || stopping) return;
                beast::flat_buffer buf;
                http::request<http::string_body> req;
                http::read(s, buf, req, ec);
                if (ec) continue;
                ++asked;
                http::response<http::string_body> res{http::status::ok, 11};
                res.set(http::field::content_type, "image/jpeg");
                res.body() = bytes;
                res.prepare_payload();
                http::write(s, res, ec);
            }
        });
    }
    ~lying_source() {
        // Wake the accept with a connection of our own.
        stopping = true;
        beast::error_code ec;
        net::io_context other;
        tcp::socket s(other);
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port()), ec);
        thread.join();
    }
    unsigned short port() { return acceptor.local_endpoint().port(); }
    std::string url() { return "http://127.0.0.1:" + std::to_string(port()); }
};

} // namespace

TEST_CASE("a reported photo is copied to the console unasked and served from its copy after the "
          "school service is killed and across a restart",
          "[console_photos]") {
    school_with_photo s;
    auto con = s.start_console({s.source()});
    // No page asks: the event alone brings the photo.
    REQUIRE(eventually([&] { return con.holds_one_photo(); }));
    CHECK(metric(con.metrics(), "pingan_console_photos_fetched_total") == 1);
    CHECK(metric(con.metrics(), "pingan_console_photos_held") == 1);

    // The school service and its disk are gone.
    s.hazard->signal(SIGKILL);
    s.hazard->wait();
    REQUIRE(call(con.port, http::verb::get, "/photos/" + s.hash).status == 401);
    auto cookie = con.login();
    auto got = call(con.port, http::verb::get, "/photos/" + s.hash, {}, {}, cookie);
    REQUIRE(got.status == 200);
    CHECK(got.type == "image/jpeg");
    CHECK(got.body == s.bytes);
    CHECK(svc::photo_hash(got.body) == s.hash);
    // A hash no visible event names is still refused.
    CHECK(
        call(con.port, http::verb::get, "/photos/" + std::string(64, '0'), {}, {}, cookie).status ==
        404);
    con.stop();

    // A restart keeps the copy and fetches nothing again (the source is dead:
    // any attempt would count as a failure).
    auto again = s.start_console({s.source()});
    REQUIRE(eventually([&] { return again.health().value("caught_up", false); }));
    auto h = again.health();
    CHECK(h["photos"]["held"] == 1);
    CHECK(h["photos"]["pending"] == 0);
    CHECK(h["photos"]["failures"] == 0);
    auto m = again.metrics();
    CHECK(metric(m, "pingan_console_photos_fetched_total") == 0);
    CHECK(metric(m, "pingan_console_photo_fetch_failures_total") == 0);
    auto cookie2 = again.login();
    auto kept = call(again.port, http::verb::get, "/photos/" + s.hash, {}, {}, cookie2);
    REQUIRE(kept.status == 200);
    CHECK(kept.body == s.bytes);
    CHECK(svc::photo_hash(kept.body) == s.hash);
    again.stop();
}

TEST_CASE("a source answering with other bytes than the photo named is refused and nothing is "
          "stored, while the feed goes on",
          "[console_photos]") {
    school_with_photo s;
    lying_source liar;
    auto con = s.start_console({liar.url()});
    REQUIRE(eventually([&] {
        auto m = con.metrics();
        return metric(m, "pingan_console_photos_refused_total") >= 1;
    }));
    auto h = con.health();
    CHECK(h["caught_up"] == true);
    CHECK(h["photos"]["held"] == 0);
    CHECK(h["photos"]["pending"] == 1);
    CHECK(h["photos"]["failures"].get<int>() >= 1);
    CHECK(liar.asked >= 1);
    auto cookie = con.login();
    // Asked for by a page: fetched again, refused again, not served.
    auto got = call(con.port, http::verb::get, "/photos/" + s.hash, {}, {}, cookie);
    CHECK(got.status == 502);
    CHECK(got.body.find("do not match the hash") != std::string::npos);
    CHECK(con.health()["photos"]["held"] == 0);
    con.stop();

    // With the true source beside the liar, the photo is the true one.
    auto fixed = s.start_console({liar.url(), s.source()});
    REQUIRE(eventually([&] {
        auto j = fixed.health();
        return j["photos"]["held"] == 1 && j["photos"]["pending"] == 0;
    }));
    auto cookie2 = fixed.login();
    s.hazard->signal(SIGKILL);
    s.hazard->wait();
    auto kept = call(fixed.port, http::verb::get, "/photos/" + s.hash, {}, {}, cookie2);
    REQUIRE(kept.status == 200);
    CHECK(kept.body == s.bytes);
    CHECK(kept.body != liar.bytes);
    fixed.stop();
}

TEST_CASE("an export carries the photos its events name from the bureau's copy, and verify "
          "--export --photos catches a photo missing or altered",
          "[console_photos]") {
    school_with_photo s;
    auto con = s.start_console({s.source()});
    REQUIRE(eventually([&] { return con.holds_one_photo(); }));
    // The school service and its disk are gone: the console's copy is what is left.
    s.hazard->signal(SIGKILL);
    s.hazard->wait();

    const std::string out = s.d / "audit.jsonl", photos = s.d / "audit-photos";
    auto r = run({"export", "--data", s.d / "store", "--out", out, "--photos", photos,
                  "--photo-store", s.d / "console/photos"});
    REQUIRE(r.code == 0);
    CHECK(has(r, "1 photos written to " + photos));
    const std::string file = photos + "/" + s.hash + ".jpg";
    std::ifstream in(file, std::ios::binary);
    REQUIRE(in);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(got == s.bytes);
    std::ifstream exported(out);
    std::string first;
    std::getline(exported, first);
    auto header = json::parse(first);
    CHECK(header["photos"]["files"] == 1);
    CHECK(header["photos"]["missing"].empty());

    auto ok = run_stdout({"verify", "--export", out, "--photos", photos});
    REQUIRE(ok.code == 0);
    REQUIRE(ok.lines.size() == 1);
    CHECK(json::parse(ok.lines[0])["photos"] == 1);

    // One byte changed: the bytes no longer hash to the name the chained event records.
    {
        std::string altered = s.bytes;
        altered[altered.size() / 2] ^= 0x01;
        std::ofstream(file, std::ios::binary | std::ios::trunc) << altered;
    }
    auto bad = run_stdout({"verify", "--export", out, "--photos", photos});
    CHECK(bad.code == 1);
    CHECK(has(bad, "does not hash to its name: the photo was altered"));
    // Another photo of another size put in its place.
    std::ofstream(file, std::ios::binary | std::ios::trunc) << make_jpeg(100, 80, 3);
    bad = run_stdout({"verify", "--export", out, "--photos", photos});
    CHECK(bad.code == 1);
    CHECK(has(bad, "bytes, the event says " + std::to_string(s.bytes.size())));
    // Gone.
    std::filesystem::remove(file);
    bad = run_stdout({"verify", "--export", out, "--photos", photos});
    CHECK(bad.code == 1);
    CHECK(has(bad, "is missing"));

    // A store that does not hold the photo: the export is written, the photo
    // is named as missing, and the exit status says so.
    { svc::photo_store empty(s.d / "empty-photos"); }
    r = run({"export", "--data", s.d / "store", "--out", s.d / "again.jsonl", "--photos",
             s.d / "again-photos", "--photo-store", s.d / "empty-photos"});
    CHECK(r.code == 1);
    CHECK(has(r, "photo " + s.hash));
    CHECK(has(r, "not written: in none of the photo stores"));
    // No store at all there: a clear refusal naming the folder.
    r = run({"export", "--data", s.d / "store", "--photos", s.d / "x", "--photo-store",
             s.d / "nowhere"});
    CHECK(r.code == 2);
    CHECK(has(r, "nowhere"));
    // --photos without a store to read from.
    r = run({"export", "--data", s.d / "store", "--photos", s.d / "x"});
    CHECK(r.code == 2);
    CHECK(has(r, "--photos needs --photo-store"));
    con.stop();
}
