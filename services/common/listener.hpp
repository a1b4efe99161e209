// Accepts TCP connections and starts a session for each.
//
// Two limits keep a flood of connections from taking the service down. At
// most `max_connections` are open at once: one more is closed as soon as it
// is accepted, with a log line; an HTTP listener first answers it 503 with
// Retry-After (at most `max_refusing` such answers at once, beyond which a
// connection is closed unanswered). And when accept fails because the process or
// the system is out of descriptors (EMFILE, ENFILE), the pending connection
// stays in the kernel's queue and every retry would fail at once: the loop
// pauses (100 ms, doubling to 1 s) instead of spinning a core, logs once per
// episode, and resumes when descriptors are free again.
#pragma once

#include "http_session.hpp"
#include "net.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

namespace pingan::svc {

class listener : public std::enable_shared_from_this<listener> {
  public:
    // Starts a session on an accepted socket. The session keeps `slot` for as
    // long as the connection is open: it counts against max_connections.
    using start_fn = std::function<void(tcp::socket&&, std::shared_ptr<void> slot)>;

    // Binds at once, so that the bound port is known before run(). `log` may
    // be null (spdlog's default logger).
    // Throws: boost::system::system_error if the address cannot be bound.
    listener(net::io_context& ioc, tcp::endpoint at, std::size_t max_connections,
             std::shared_ptr<spdlog::logger> log, start_fn start);
    // HTTP sessions with the service's handler; HTTPS if `tls` is given;
    // `limits` gives some routes a body limit of their own. `counters`, if
    // given, count connections closed over max_connections, failed TLS
    // handshakes, and bodies and headers over their limits.
    listener(net::io_context& ioc, tcp::endpoint at, std::shared_ptr<const handler> h,
             std::size_t max_body, std::size_t max_connections = 1000,
             std::shared_ptr<spdlog::logger> log = nullptr,
             std::shared_ptr<ssl::context> tls = nullptr,
             std::shared_ptr<intake_counters> counters = nullptr,
             std::shared_ptr<const body_limit_fn> limits = nullptr);

    // Connections over max_connections being answered at once, at most; more are closed unanswered.
    static constexpr std::size_t max_refusing = 64;

    void run();
    void stop();
    tcp::endpoint local() const { return acceptor_.local_endpoint(); }
    // Connections open now.
    std::size_t open_connections() const noexcept { return open_->load(); }

  private:
    void do_accept();
    void on_accept(beast::error_code ec, tcp::socket s);

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    net::steady_timer pause_;
    std::size_t max_connections_;
    std::shared_ptr<spdlog::logger> log_;
    start_fn start_;
    start_fn refuse_; // answers a connection over max_connections (HTTP: 503), or none
    std::shared_ptr<std::atomic<std::size_t>> open_;
    std::shared_ptr<std::atomic<std::size_t>> refusing_open_;
    std::chrono::milliseconds backoff_{0}; // > 0 while out of descriptors
    bool refusing_ = false;                // over max_connections: logged once
    std::shared_ptr<intake_counters> counters_;
};

// Parses "host:port" ("127.0.0.1:8081", "[::1]:0"). Returns: nothing if malformed.
std::optional<tcp::endpoint> parse_endpoint(const std::string& text);

} // namespace pingan::svc
