// Tests of the services' accept loop (services/common/listener.hpp) and of the
// descriptor limit every program raises at start (common/fd_limit.hpp), on
// real service and broker processes started with a low RLIMIT_NOFILE.
#include "broker_process.hpp"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

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

// pingan-hazard under `prlimit --nofile=SOFT:HARD`; its HTTP port from its first line.
struct limited_service {
    std::unique_ptr<process> proc;
    unsigned short port = 0;

    limited_service(const temp_dir& d, const std::string& nofile, std::vector<std::string> extra) {
        std::vector<std::string> argv{"/usr/bin/prlimit",
                                      "--nofile=" + nofile,
                                      "--",
                                      bin("pingan-hazard"),
                                      "--http",
                                      "127.0.0.1:0",
                                      "--registry",
                                      std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv",
                                      "--data",
                                      d / "hazard",
                                      "--broker",
                                      "tcp://127.0.0.1:9", // none: events wait in the outbox
                                      "--log-level",
                                      "warn",
                                      "--insecure-dev"};
        for (auto& e : extra)
            argv.push_back(e);
        proc = std::make_unique<process>(argv);
        auto l = proc->line(20s);
        std::smatch m;
        static const std::regex re("http=127\\.0\\.0\\.1:(\\d+)");
        if (!l || !std::regex_search(*l, m, re))
            throw std::runtime_error("pingan-hazard did not start: " + l.value_or("(no output)"));
        port = static_cast<unsigned short>(std::stoul(m[1]));
    }
};

// CPU time (user + system) the process has used, in seconds.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream rest(s.substr(s.rfind(')') + 2));
    std::string field;
    unsigned long utime = 0, stime = 0;
    // Fields 3..13 come first; utime and stime are fields 14 and 15.
    for (int i = 3; i <= 13; ++i)
        rest >> field;
    rest >> utime >> stime;
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::size_t open_descriptors(pid_t pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        ++n;
    return n;
}

std::string limit_line(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    std::string l;
    while (std::getline(in, l))
        if (l.rfind("Max open files", 0) == 0) return l;
    return {};
}

int get_health(unsigned short port) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::empty_body> req{http::verb::get, "/health", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return static_cast<int>(res.result_int());
}

std::vector<tcp::socket> idle_connections(net::io_context& ioc, unsigned short port,
                                          std::size_t n) {
    std::vector<tcp::socket> v;
    for (std::size_t i = 0; i < n; ++i) {
        v.emplace_back(ioc);
        v.back().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    }
    return v;
}

} // namespace

TEST_CASE("a service out of descriptors does not spin and serves again once they are free",
          "[listener]") {
#if defined(__SANITIZE_ADDRESS__)
    // The sanitizers' runtime needs descriptors of its own (it probes memory
    // through a pipe), so under ASan+UBSan a process with none left is
    // reported as broken by the runtime itself: this case runs in the normal
    // build only.
    WARN("skipped under the sanitizers: their runtime needs free descriptors");
    return;
#endif
    temp_dir d;
    limited_service svc(d, "64:64", {"--max-connections", "10000"});
    auto pid = svc.proc->pid();
    net::io_context ioc;
    // More idle connections than the service has descriptors: the kernel
    // queues the rest, and accept fails with EMFILE while they wait.
    auto idle = idle_connections(ioc, svc.port, 150);
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (open_descriptors(pid) < 60 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    REQUIRE(open_descriptors(pid) >= 60);

    // A spinning accept loop burns a whole core; a paused one almost nothing.
    auto before = cpu_seconds(pid);
    std::this_thread::sleep_for(
        1s); // the window the CPU is measured over, not a wait for the service
    auto used = cpu_seconds(pid) - before;
    CHECK(used < 0.3);

    idle.clear(); // closes them
    CHECK(get_health(svc.port) == 200);
}

TEST_CASE("connections over --max-connections are answered 503 and closed, and the service keeps "
          "serving",
          "[listener]") {
    temp_dir d;
    limited_service svc(d, "1024:1024", {"--max-connections", "8"});
    net::io_context ioc;
    auto idle = idle_connections(ioc, svc.port, 8);
    // Each connection past the cap is answered 503 with Retry-After and closed.
    for (int i = 0; i < 5; ++i) {
        tcp::socket extra(ioc);
        extra.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), svc.port));
        http::request<http::empty_body> req{http::verb::get, "/health", 11};
        req.set(http::field::host, "127.0.0.1");
        http::write(extra, req);
        beast::flat_buffer buf;
        http::response<http::string_body> res;
        boost::system::error_code ec;
        http::read(extra, buf, res, ec);
        REQUIRE_FALSE(ec);
        CHECK(res.result() == http::status::service_unavailable);
        CHECK(res[http::field::retry_after] == "1");
        CHECK(res.body().find("--max-connections") != std::string::npos);
        CHECK_FALSE(res.keep_alive());
        char c;
        extra.read_some(net::buffer(&c, 1), ec);
        CHECK((ec == net::error::eof || ec == net::error::connection_reset));
    }
    idle.clear();
    // The slots are free again once the idle connections have gone.
    int status = 0;
    for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
        try {
            status = get_health(svc.port);
        } catch (const boost::system::system_error&) {
            std::this_thread::sleep_for(20ms); // the service has not seen the closes yet
        }
    }
    CHECK(status == 200);
}

TEST_CASE("services and the broker raise their soft descriptor limit to the hard limit",
          "[listener]") {
    temp_dir d;
    limited_service svc(d, "64:4096", {});
    CHECK_THAT(limit_line(svc.proc->pid()), Catch::Matches(".*\\b4096\\s+4096\\b.*"));

    process broker({"/usr/bin/prlimit", "--nofile=64:4096", "--", bin("pingan-broker"), "--data",
                    d / "store", "--ingest", "tcp://127.0.0.1:*", "--feed", "tcp://127.0.0.1:*",
                    "--query", "tcp://127.0.0.1:*", "--registry",
                    std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv", "--districts",
                    std::string(PINGAN_SOURCE_DIR) + "/data/districts.csv", "--log-level",
                    "error"});
    auto l = broker.line(20s);
    REQUIRE(l);
    CHECK_THAT(*l, Catch::StartsWith("listening"));
    CHECK_THAT(limit_line(broker.pid()), Catch::Matches(".*\\b4096\\s+4096\\b.*"));
}
