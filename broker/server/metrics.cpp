// The broker's counters and the HTTP listener that serves them.
#include "broker/server/metrics.hpp"

#include "common/codec.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <thread>
#include <unordered_map>

namespace pingan {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

const std::unordered_map<std::string_view, std::size_t>& type_index() {
    static const auto m = [] {
        std::unordered_map<std::string_view, std::size_t> m;
        const auto& t = known_types();
        for (std::size_t i = 0; i < t.size(); ++i)
            m.emplace(t[i], i);
        return m;
    }();
    return m;
}

} // namespace

broker_metrics& broker_metrics::get() {
    static broker_metrics m;
    return m;
}

broker_metrics::broker_metrics() : types_(known_types().size()) {
    by_type_ = std::make_unique<std::atomic<std::uint64_t>[]>(types_ + 1);
    for (std::size_t i = 0; i <= types_; ++i)
        by_type_[i].store(0, relaxed);
}

void broker_metrics::answered(std::span<const wire::result> results) noexcept {
    for (const auto& r : results) {
        if (r.what == wire::outcome::stored)
            acks_stored_.fetch_add(1, relaxed);
        else if (r.what == wire::outcome::duplicate)
            acks_duplicate_.fetch_add(1, relaxed);
        else
            refused(r.code);
    }
}

void broker_metrics::refused(errc code) noexcept {
    auto i = static_cast<std::size_t>(code);
    nacks_[i < codes ? i : static_cast<std::size_t>(errc::internal)].fetch_add(1, relaxed);
}

void broker_metrics::committed(std::size_t events,
                               std::chrono::steady_clock::duration took) noexcept {
    batch_events_.observe(static_cast<double>(events));
    commit_seconds_.observe(std::chrono::duration<double>(took).count());
}

void broker_metrics::stored(const batch_output& out) noexcept {
    const auto& index = type_index();
    for (const auto& r : out.stored) {
        event_head h;
        std::size_t i = types_;
        if (peek(r.bytes(), h))
            if (auto it = index.find(h.type); it != index.end()) i = it->second;
        by_type_[i].fetch_add(1, relaxed);
    }
}

std::string broker_metrics::render(const std::function<void(prom::writer&)>& more) const {
    prom::writer w;
    std::vector<prom::sample> s;
    const auto& t = known_types();
    for (std::size_t i = 0; i <= types_; ++i)
        s.push_back({{{"type", i < types_ ? std::string(t[i]) : std::string("other")}},
                     static_cast<double>(by_type_[i].load(relaxed))});
    w.family("pingan_broker_events_total", "counter",
             "Events stored in the log (reports and derived events), by type.", s);
    s.clear();
    s.push_back({{{"outcome", "stored"}}, static_cast<double>(acks_stored_.load(relaxed))});
    s.push_back({{{"outcome", "duplicate"}}, static_cast<double>(acks_duplicate_.load(relaxed))});
    w.family("pingan_broker_acks_total", "counter",
             "Published events acknowledged after commit: stored, or a duplicate of a stored "
             "event.",
             s);
    s.clear();
    for (std::size_t i = 1; i < codes; ++i) {
        auto name = errc_name(static_cast<errc>(i));
        if (name == "unknown") continue;
        s.push_back({{{"code", std::string(name)}}, static_cast<double>(nacks_[i].load(relaxed))});
    }
    w.family("pingan_broker_nacks_total", "counter",
             "Published events (or whole requests) refused, by error code.", s);
    w.gauge("pingan_broker_ingest_queue_events",
            "Events admitted by ingest and not yet committed by the writer.",
            static_cast<double>(ingest_queue_.load(relaxed)));
    w.histogram("pingan_broker_commit_batch_events", "Events per group commit.",
                batch_events_.snapshot());
    w.histogram("pingan_broker_commit_duration_seconds",
                "Time of one group commit, the fsync included.", commit_seconds_.snapshot());
    w.gauge("pingan_broker_feed_subscriptions",
            "Live subscriptions (topic prefixes, counted per subscriber) on the feed.",
            static_cast<double>(feed_subs_.load(relaxed)));
    w.counter("pingan_broker_feed_messages_total", "Messages handed to the live feed.",
              static_cast<double>(feed_sent_.load(relaxed)));
    w.counter("pingan_broker_feed_drops_total",
              "Feed messages ZeroMQ would not take (subscribers backfill by replay).",
              static_cast<double>(feed_drops_.load(relaxed)));
    w.gauge("pingan_broker_replay_streams", "Replay streams open on the query socket.",
            static_cast<double>(replays_.load(relaxed)));
    if (more) more(w);
    return w.str();
}

// ---- the listener ----

struct metrics_server::impl {
    net::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::function<std::string()> render;
    std::thread thread;

    void accept() {
        acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
            if (ec == net::error::operation_aborted) return;
            if (!ec) serve(std::make_shared<beast::tcp_stream>(std::move(s)));
            accept();
        });
    }

    // One request per connection: a scraper connects, asks and goes.
    void serve(std::shared_ptr<beast::tcp_stream> stream) {
        auto buf = std::make_shared<beast::flat_buffer>();
        auto req = std::make_shared<http::request<http::string_body>>();
        stream->expires_after(std::chrono::seconds(10));
        http::async_read(
            *stream, *buf, *req, [this, stream, buf, req](beast::error_code ec, std::size_t) {
                if (ec) return;
                auto res = std::make_shared<http::response<http::string_body>>();
                res->version(req->version());
                res->keep_alive(false);
                res->set(http::field::server, "pingan-broker");
                auto target = std::string_view(req->target().data(), req->target().size());
                if (target.substr(0, target.find('?')) != "/metrics") {
                    res->result(http::status::not_found);
                    res->set(http::field::content_type, "text/plain");
                    res->body() = "no such path; GET /metrics\n";
                } else if (req->method() != http::verb::get) {
                    res->result(http::status::method_not_allowed);
                    res->set(http::field::content_type, "text/plain");
                    res->body() = "use GET\n";
                } else {
                    res->result(http::status::ok);
                    res->set(http::field::content_type, prom::content_type);
                    res->body() = render();
                }
                res->prepare_payload();
                http::async_write(*stream, *res, [stream, res](beast::error_code, std::size_t) {
                    beast::error_code ignored;
                    stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
                });
            });
    }
};

metrics_server::metrics_server(const std::string& host_port, std::function<std::string()> render)
    : impl_(std::make_unique<impl>()) {
    auto colon = host_port.rfind(':');
    auto fail = [&](const std::string& why) {
        throw error(errc::bad_config, "metrics \"" + host_port + "\": " + why);
    };
    if (colon == std::string::npos) fail("expected HOST:PORT");
    auto host = host_port.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "127.0.0.1";
    beast::error_code ec;
    auto addr = net::ip::make_address(host, ec);
    if (ec) fail("\"" + host + "\" is not an IP address");
    unsigned long port = 0;
    try {
        std::size_t used = 0;
        port = std::stoul(host_port.substr(colon + 1), &used);
        if (used != host_port.size() - colon - 1) port = 65536;
    } catch (const std::exception&) {
        port = 65536;
    }
    if (port > 65535) fail("the port is not a number from 0 to 65535");
    tcp::endpoint at(addr, static_cast<unsigned short>(port));
    impl_->render = std::move(render);
    impl_->acceptor.open(at.protocol(), ec);
    if (!ec) impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) impl_->acceptor.bind(at, ec);
    if (!ec) impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) fail(ec.message());
    impl_->accept();
    impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
}

metrics_server::~metrics_server() {
    stop();
}

std::string metrics_server::bound() const {
    auto ep = impl_->acceptor.local_endpoint();
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void metrics_server::stop() {
    if (!impl_->thread.joinable()) return;
    net::post(impl_->ioc, [i = impl_.get()] {
        beast::error_code ignored;
        i->acceptor.close(ignored);
        i->ioc.stop();
    });
    impl_->thread.join();
}

} // namespace pingan
