// systemd readiness (Type=notify units): the broker, the console and a school
// service tell the manager READY=1 once they listen, RELOADING=1 then READY=1
// on SIGHUP (systemctl reload) while they go on serving, and STOPPING=1 on
// SIGTERM. The test is the manager: a datagram socket named by NOTIFY_SOCKET,
// as systemd passes it, and real processes.
#include "broker_process.hpp"
#include "process.hpp"
#include "support.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <fstream>
#include <regex>

using namespace pingan::test;
using namespace std::chrono_literals;

namespace {

std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}

// The manager's end of sd_notify: a bound datagram socket, exported in
// NOTIFY_SOCKET to every process started while it lives.
class notify_socket {
  public:
    explicit notify_socket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof a.sun_path);
        std::memcpy(a.sun_path, path.c_str(), path.size());
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    }
    notify_socket(const notify_socket&) = delete;
    ~notify_socket() {
        ::unsetenv("NOTIFY_SOCKET");
        ::close(fd_);
        ::unlink(path_.c_str());
    }

    // Returns: the next message, or "" after `timeout`.
    std::string next(std::chrono::milliseconds timeout = 20s) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
        char buf[4096];
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }

  private:
    std::string path_;
    int fd_ = -1;
};

bool alive(pid_t pid) {
    int st;
    return ::waitpid(pid, &st, WNOHANG) == 0;
}

// Reload and stop as systemd does them, and what the process must say.
void reload_then_stop(notify_socket& n, pid_t pid, process* p) {
    ::kill(pid, SIGHUP);
    CHECK(n.next() == "RELOADING=1");
    auto ready = n.next();
    CHECK(ready.starts_with("READY=1\n"));
    CHECK(ready.find("STATUS=reloaded") != std::string::npos);
    CHECK(alive(pid));
    ::kill(pid, SIGTERM);
    CHECK(n.next() == "STOPPING=1");
    if (p) CHECK(p->wait() == 0);
}

} // namespace

TEST_CASE("readiness: the broker says READY=1 when it listens, reloads on SIGHUP and says "
          "STOPPING=1 on SIGTERM") {
    temp_dir d;
    notify_socket n(d / "notify");
    broker_process b(d / "store");
    auto ready = n.next();
    CHECK(ready.starts_with("READY=1\n"));
    CHECK(ready.find("STATUS=listening ingest=") != std::string::npos);
    reload_then_stop(n, b.proc->pid(), b.proc.get());
}

TEST_CASE("readiness: the console says READY=1 when it listens, re-reads its users on SIGHUP "
          "and goes on serving") {
    temp_dir d;
    broker_process b(d / "store");
    {
        std::ofstream(d / "pw") << "chen-password-1\n";
        process add({bin("pingan"), "users", "add", "chen", "--file", d / "users.json", "--scope",
                     "city", "--role", "supervisor", "--password-stdin"},
                    d / "pw");
        REQUIRE(add.wait() == 0);
    }
    notify_socket n(d / "notify");
    auto log = d / "console.log";
    process con({bin("pingan-console"), "--http", "127.0.0.1:0", "--users", d / "users.json",
                 "--registry", source_path("data/schools.csv"), "--ingest", b.ingest, "--feed",
                 b.feed, "--query", b.query, "--log-level", "info"},
                {}, log);
    auto ready = n.next();
    CHECK(ready.starts_with("READY=1\n"));
    CHECK(ready.find("STATUS=listening http=127.0.0.1:") != std::string::npos);
    reload_then_stop(n, con.pid(), &con);
    // The users file was read again on SIGHUP, though it had not changed.
    auto text = read_file(log);
    CHECK(text.find("users file reloaded: 1 users") != std::string::npos);
}

TEST_CASE("readiness: a school service without credentials (development) survives SIGHUP with "
          "nothing to reload") {
    temp_dir d;
    broker_process b(d / "store");
    notify_socket n(d / "notify");
    auto log = d / "hazard.log";
    process hazard({bin("pingan-hazard"), "--http", "127.0.0.1:0", "--registry",
                    source_path("data/schools.csv"), "--data", d / "hazard", "--broker", b.ingest,
                    "--insecure-dev", "--log-level", "info"},
                   {}, log);
    auto ready = n.next();
    CHECK(ready.starts_with("READY=1\n"));
    CHECK(ready.find("STATUS=listening http=127.0.0.1:") != std::string::npos);
    reload_then_stop(n, hazard.pid(), &hazard);
    CHECK(read_file(log).find("nothing to reload") != std::string::npos);
}

TEST_CASE("readiness: notify says READY=1 when it listens, re-reads its directory on SIGHUP, "
          "says when it refused one, and says STOPPING=1 on SIGTERM") {
    temp_dir d;
    broker_process b(d / "store");
    // One file receiver: the smallest directory notify starts with.
    auto directory = d / "directory.yaml";
    std::ofstream(directory) << "receivers:\n  - id: duty-office\n    role: principal\n"
                                "    channel: file\n    path: "
                             << (d / "pages.log") << "\n";
    notify_socket n(d / "notify");
    auto log = d / "notify.log";
    process notify({bin("pingan-notify"), "--data", d / "notify-data", "--broker", b.ingest,
                    "--feed", b.feed, "--query", b.query, "--http", "127.0.0.1:0", "--directory",
                    directory, "--registry", source_path("data/schools.csv"), "--log-level",
                    "info"},
                   {}, log);
    auto ready = n.next();
    CHECK(ready.starts_with("READY=1\n"));
    CHECK(ready.find("STATUS=listening http=127.0.0.1:") != std::string::npos);

    // A directory with a mistake: notify reloads, refuses it, and is ready
    // again with the old one, saying so in its status.
    std::ofstream(directory) << "receivers:\n  - id: duty-office\n    role: nobody\n"
                                "    channel: file\n    path: "
                             << (d / "pages.log") << "\n";
    ::kill(notify.pid(), SIGHUP);
    CHECK(n.next() == "RELOADING=1");
    auto refused = n.next();
    CHECK(refused.starts_with("READY=1\n"));
    CHECK(refused.find("STATUS=reload refused") != std::string::npos);
    CHECK(alive(notify.pid()));

    // Put right, it is read again.
    std::ofstream(directory) << "receivers:\n  - id: duty-office\n    role: principal\n"
                                "    channel: file\n    path: "
                             << (d / "pages.log") << "\n";
    reload_then_stop(n, notify.pid(), &notify);
    auto text = read_file(log);
    CHECK(text.find("directory not reloaded, the old one stays") != std::string::npos);
    CHECK(text.find("directory " + directory + " reloaded: 1 receivers") != std::string::npos);
}
