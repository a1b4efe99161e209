// The accept loop, with a connection cap and a pause when out of descriptors.
#include "listener.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>

namespace pingan::svc {

listener::listener(net::io_context& ioc, tcp::endpoint at, std::size_t max_connections,
                   std::shared_ptr<spdlog::logger> log, start_fn start)
    : ioc_(ioc), acceptor_(net::make_strand(ioc)), pause_(acceptor_.get_executor()),
      max_connections_(max_connections), log_(log ? std::move(log) : spdlog::default_logger()),
      start_(std::move(start)), open_(std::make_shared<std::atomic<std::size_t>>(0)),
      refusing_open_(std::make_shared<std::atomic<std::size_t>>(0)) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(net::socket_base::max_listen_connections);
}

namespace {

// Starts an HTTP session (HTTPS if `tls`) with handler `h` on each connection.
listener::start_fn http_sessions(std::shared_ptr<const handler> h, std::size_t max_body,
                                 std::shared_ptr<ssl::context> tls,
                                 std::shared_ptr<intake_counters> counters,
                                 std::shared_ptr<const body_limit_fn> limits) {
    return [h = std::move(h), max_body, tls = std::move(tls), counters = std::move(counters),
            limits = std::move(limits)](tcp::socket&& s, std::shared_ptr<void> slot) {
        if (tls)
            std::make_shared<tls_session>(
                beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(s)), *tls), h,
                max_body, std::move(slot), counters, limits)
                ->run();
        else
            std::make_shared<plain_session>(beast::tcp_stream(std::move(s)), h, max_body,
                                            std::move(slot), counters, limits)
                ->run();
    };
}

// Over the cap, a client is told so, in the same form as the services' other
// refusals, rather than finding its connection closed.
std::shared_ptr<const handler> busy_handler(std::size_t max_connections) {
    return std::make_shared<const handler>([max_connections](const request& req,
                                                             connection_state&) {
        nlohmann::json j = {
            {"errors", nlohmann::json::array(
                           {{{"field", ""},
                             {"code", "unavailable"},
                             {"message", "the service has " + std::to_string(max_connections) +
                                             " connections open, the most it allows "
                                             "(--max-connections); try again shortly"}}})}};
        auto res = json_response(http::status::service_unavailable, j.dump(), req.version(), false);
        res.set(http::field::retry_after, "1");
        return res;
    });
}

} // namespace

listener::listener(net::io_context& ioc, tcp::endpoint at, std::shared_ptr<const handler> h,
                   std::size_t max_body, std::size_t max_connections,
                   std::shared_ptr<spdlog::logger> log, std::shared_ptr<ssl::context> tls,
                   std::shared_ptr<intake_counters> counters,
                   std::shared_ptr<const body_limit_fn> limits)
    : listener(ioc, at, max_connections, std::move(log),
               http_sessions(std::move(h), max_body, tls, counters, limits)) {
    refuse_ = http_sessions(busy_handler(max_connections), max_body, std::move(tls), counters,
                            std::move(limits));
    counters_ = std::move(counters);
}

void listener::run() {
    do_accept();
}

void listener::stop() {
    beast::error_code ec;
    acceptor_.close(ec);
    pause_.cancel();
}

void listener::do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
                               self->on_accept(ec, std::move(s));
                           });
}

void listener::on_accept(beast::error_code ec, tcp::socket s) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec.value() == EMFILE || ec.value() == ENFILE) {
        // The connection waits in the kernel's queue; retrying now would fail
        // again at once. Pause, and say so once per episode.
        if (backoff_.count() == 0) {
            log_->warn("accept: {} with {} connections open; pausing accept until descriptors "
                       "are free (raise LimitNOFILE or lower --max-connections)",
                       ec.message(), open_->load());
            backoff_ = std::chrono::milliseconds(100);
        } else {
            backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(1000));
        }
        pause_.expires_after(backoff_);
        pause_.async_wait([self = shared_from_this()](beast::error_code e) {
            if (!e) self->do_accept();
        });
        return;
    }
    if (backoff_.count() != 0) {
        log_->info("accept: descriptors available again");
        backoff_ = std::chrono::milliseconds(0);
    }
    if (!ec) {
        if (open_->load() >= max_connections_) {
            if (!refusing_)
                log_->warn("accept: {} connections open, the most allowed (--max-connections); "
                           "closing new ones until some end",
                           max_connections_);
            refusing_ = true;
            if (counters_) ++counters_->connections_refused_service;
            if (refuse_ && refusing_open_->load() < max_refusing) {
                ++*refusing_open_;
                std::shared_ptr<void> slot(nullptr, [n = refusing_open_](void*) { --*n; });
                refuse_(std::move(s), std::move(slot));
            } else {
                beast::error_code ignored;
                s.close(ignored);
            }
        } else {
            if (refusing_) log_->info("accept: below --max-connections again");
            refusing_ = false;
            ++*open_;
            // The slot ends with the session, wherever it ends.
            std::shared_ptr<void> slot(nullptr, [open = open_](void*) { --*open; });
            start_(std::move(s), std::move(slot));
        }
    }
    do_accept();
}

std::optional<tcp::endpoint> parse_endpoint(const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    auto host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    beast::error_code ec;
    auto addr = net::ip::make_address(host, ec);
    if (ec) return std::nullopt;
    try {
        auto port = std::stoul(text.substr(colon + 1));
        if (port > 65535) return std::nullopt;
        return tcp::endpoint(addr, static_cast<unsigned short>(port));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

} // namespace pingan::svc
