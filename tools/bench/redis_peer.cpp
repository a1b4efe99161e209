// The Redis Streams peer row (redis_peer.hpp).
#include "tools/bench/redis_peer.hpp"

#include "common/errc.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#ifdef PINGAN_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;
#endif

namespace pingan::bench {

namespace fs = std::filesystem;

std::optional<std::string> find_redis_server(std::string& why) {
#ifndef PINGAN_HAVE_HIREDIS
    why = "built without hiredis";
    return std::nullopt;
#else
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "";
    std::size_t start = 0;
    while (start <= p.size()) {
        auto end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        auto candidate = fs::path(p.substr(start, end - start)) / "redis-server";
        if (!candidate.parent_path().empty() && ::access(candidate.c_str(), X_OK) == 0)
            return candidate.string();
        start = end + 1;
    }
    why = "redis-server is not on PATH";
    return std::nullopt;
#endif
}

#ifndef PINGAN_HAVE_HIREDIS

peer_result run_redis_peer(const std::string&, const std::string&, const std::vector<std::string>&,
                           std::size_t, std::size_t) {
    throw error(errc::internal, "built without hiredis");
}

#else

namespace {

using steady = std::chrono::steady_clock;

// A free TCP port on 127.0.0.1, as the kernel hands out for port 0.
int ephemeral_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        throw error(errc::io_error, "no free port for redis-server");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

// utime + stime of a process, in seconds, from /proc/<pid>/stat.
double process_cpu(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    auto close = s.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream f(s.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; f >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) {
            stime = std::stoull(field);
            break;
        }
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double self_cpu() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return sec(u.ru_utime) + sec(u.ru_stime);
}

// A redis-server of our own: started in `dir`, stopped (by its pid) when this ends.
class server {
  public:
    server(const std::string& exe, const std::string& dir) : port_(ephemeral_port()) {
        fs::create_directories(dir);
        std::vector<std::string> args{exe,
                                      "--port",
                                      std::to_string(port_),
                                      "--bind",
                                      "127.0.0.1",
                                      "--dir",
                                      dir,
                                      "--appendonly",
                                      "yes",
                                      "--appendfsync",
                                      "always",
                                      "--save",
                                      "",
                                      "--logfile",
                                      dir + "/redis.log"};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::posix_spawn(&pid_, exe.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
            throw error(errc::io_error, "cannot start " + exe);
        // Handshake: the server answers PING once it listens.
        auto until = steady::now() + std::chrono::seconds(10);
        while (steady::now() < until) {
            if (auto* c = redisConnect("127.0.0.1", port_); c && !c->err) {
                auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
                bool up = r && r->type == REDIS_REPLY_STATUS;
                if (r) freeReplyObject(r);
                redisFree(c);
                if (up) return;
            } else if (c) {
                redisFree(c);
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = 0;
                throw error(errc::io_error,
                            "redis-server exited at start; see " + dir + "/redis.log");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        stop();
        throw error(errc::io_error, "redis-server did not answer PING within 10 s");
    }
    ~server() { stop(); }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }

  private:
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = 0;
    }
    int port_;
    pid_t pid_ = 0;
};

// One connection's share: XADD its events with `depth` in flight; latencies in ms.
void drive_one(int port, const std::vector<std::string>& events, std::size_t first,
               std::size_t step, std::size_t depth, std::vector<double>& lat,
               std::string& failure) {
    auto* c = redisConnect("127.0.0.1", port);
    if (!c || c->err) {
        failure = c ? c->errstr : "cannot connect";
        if (c) redisFree(c);
        return;
    }
    std::vector<std::size_t> mine;
    for (auto i = first; i < events.size(); i += step)
        mine.push_back(i);
    std::vector<steady::time_point> sent(mine.size());
    std::size_t next = 0, done = 0;
    while (done < mine.size()) {
        while (next < mine.size() && next - done < depth) {
            const auto& e = events[mine[next]];
            sent[next] = steady::now();
            redisAppendCommand(c, "XADD bench * e %b", e.data(), e.size());
            ++next;
        }
        void* reply = nullptr;
        if (redisGetReply(c, &reply) != REDIS_OK || !reply) {
            failure = c->errstr;
            break;
        }
        auto* r = static_cast<redisReply*>(reply);
        bool ok = r->type == REDIS_REPLY_STRING;
        if (!ok) failure = r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
        freeReplyObject(r);
        if (!ok) break;
        lat.push_back(
            std::chrono::duration<double, std::milli>(steady::now() - sent[done]).count());
        ++done;
    }
    redisFree(c);
}

} // namespace

peer_result run_redis_peer(const std::string& exe, const std::string& dir,
                           const std::vector<std::string>& events, std::size_t window,
                           std::size_t clients) {
    server srv(exe, dir);
    clients = std::max<std::size_t>(1, std::min(clients, window));
    std::size_t depth = std::max<std::size_t>(1, window / clients);
    std::vector<std::vector<double>> lat(clients);
    std::vector<std::string> failures(clients);
    double cpu0 = process_cpu(srv.pid()), self0 = self_cpu();
    auto start = steady::now();
    {
        std::vector<std::jthread> threads;
        for (std::size_t i = 0; i < clients; ++i)
            threads.emplace_back(
                [&, i] { drive_one(srv.port(), events, i, clients, depth, lat[i], failures[i]); });
    }
    auto secs = std::chrono::duration<double>(steady::now() - start).count();
    double cpu1 = process_cpu(srv.pid()), self1 = self_cpu();
    for (auto& f : failures)
        if (!f.empty()) throw error(errc::internal, "redis peer: " + f);
    std::vector<double> all;
    for (auto& l : lat)
        all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    peer_result r;
    auto n = static_cast<double>(events.size());
    r.events_per_s = n / secs;
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    r.server_cpu_us = (cpu1 - cpu0) * 1e6 / n;
    r.client_cpu_us = (self1 - self0) * 1e6 / n;
    return r;
}

#endif

} // namespace pingan::bench
