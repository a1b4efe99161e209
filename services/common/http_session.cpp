// HTTP/1.1 sessions over Beast, plain or TLS, in the manner of Beast's example servers.
#include "http_session.hpp"

#include "common/errc.hpp"

#include <chrono>
#include <limits>
#include <type_traits>

namespace pingan::svc {
namespace {

template <class Stream> constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

} // namespace

response json_response(http::status s, const std::string& body, unsigned version, bool keep_alive) {
    response res{s, version};
    res.set(http::field::server, "pingan");
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.keep_alive(keep_alive);
    res.body() = body;
    res.prepare_payload();
    return res;
}

std::shared_ptr<ssl::context> make_server_tls(const std::string& cert_file,
                                              const std::string& key_file) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    beast::error_code ec;
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec) throw error(errc::bad_config, "--tls-cert " + cert_file + ": " + ec.message());
    ctx->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) throw error(errc::bad_config, "--tls-key " + key_file + ": " + ec.message());
    return ctx;
}

template <class Stream>
http_session<Stream>::http_session(Stream&& stream, std::shared_ptr<const handler> h,
                                   std::size_t max_body, std::shared_ptr<void> slot,
                                   std::shared_ptr<intake_counters> counters,
                                   std::shared_ptr<const body_limit_fn> limits)
    : stream_(std::move(stream)), handler_(std::move(h)), max_body_(max_body),
      slot_(std::move(slot)), counters_(std::move(counters)), limits_(std::move(limits)) {
    beast::error_code ec;
    auto ep = tcp().socket().remote_endpoint(ec);
    if (!ec) conn_.peer = ep.address();
    conn_.tls = is_tls<Stream>;
}

template <class Stream> beast::tcp_stream& http_session<Stream>::tcp() {
    if constexpr (is_tls<Stream>)
        return stream_.next_layer();
    else
        return stream_;
}

template <class Stream> void http_session<Stream>::run() {
    auto self = this->shared_from_this();
    net::dispatch(stream_.get_executor(), [self] {
        if constexpr (is_tls<Stream>) {
            // A client that never finishes the handshake must not hold the connection.
            self->tcp().expires_after(std::chrono::seconds(30));
            self->stream_.async_handshake(
                ssl::stream_base::server,
                beast::bind_front_handler(&http_session::on_handshake, self));
        } else {
            self->do_read();
        }
    });
}

template <class Stream> void http_session<Stream>::on_handshake(beast::error_code ec) {
    if (ec) {
        if (counters_) ++counters_->tls_handshake_failures;
        beast::error_code ignored;
        tcp().socket().close(ignored);
        return;
    }
    do_read();
}

template <class Stream> void http_session<Stream>::do_read() {
    parser_.emplace();
    parser_->header_limit(max_header_bytes);
    limit_ = body_limit{max_body_, "the body", ""};
    // A client that stops sending must not hold the connection forever.
    tcp().expires_after(std::chrono::seconds(30));
    if (!limits_) {
        parser_->body_limit(max_body_);
        http::async_read(
            stream_, buffer_, *parser_,
            beast::bind_front_handler(&http_session::on_read, this->shared_from_this()));
        return;
    }
    // The header first: the target decides how large the body may be.
    // Not boost::none: Boost 1.74's parser compares a Content-Length with an
    // empty limit as if the limit were below every length.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&http_session::on_header, this->shared_from_this()));
}

template <class Stream> void http_session<Stream>::on_header(beast::error_code ec, std::size_t n) {
    if (ec) return on_read(ec, n);
    auto t = parser_->get().target();
    if (auto l = (*limits_)(std::string_view(t.data(), t.size()))) {
        limit_ = *l;
        // A large body over a phone's network takes longer than a report.
        tcp().expires_after(std::chrono::seconds(120));
    }
    if (auto len = parser_->content_length(); len && *len > limit_.bytes) return too_large(*len);
    parser_->body_limit(limit_.bytes);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, this->shared_from_this()));
}

template <class Stream> void http_session<Stream>::too_large(std::optional<std::uint64_t> length) {
    if (counters_) ++counters_->body_too_large;
    auto message = limit_.what +
                   (length ? " is " + std::to_string(*length) + " bytes" : " is over") +
                   "; the limit is " + std::to_string(limit_.bytes) + " bytes" + limit_.hint;
    send(json_response(http::status::payload_too_large,
                       R"({"errors":[{"field":"","code":"message_too_large","message":")" +
                           message + R"("}]})",
                       11, false));
}

template <class Stream> void http_session<Stream>::header_too_large() {
    if (counters_) ++counters_->header_too_large;
    send(json_response(http::status::request_header_fields_too_large,
                       R"({"errors":[{"field":"","code":"message_too_large","message":"the )"
                       R"(request's header is over )" +
                           std::to_string(max_header_bytes) + R"( bytes"}]})",
                       11, false));
}

template <class Stream> void http_session<Stream>::on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == ssl::error::stream_truncated) {
        return do_close();
    }
    if (ec == http::error::body_limit) return too_large(std::nullopt);
    if (ec == http::error::header_limit) return header_too_large();
    if (ec) {
        return send(json_response(
            http::status::bad_request,
            R"({"errors":[{"field":"","code":"malformed_json","message":"not an HTTP request: )" +
                ec.message() + R"("}]})",
            11, false));
    }
    auto req = parser_->release();
    response res;
    try {
        res = (*handler_)(req, conn_);
    } catch (const std::exception& x) {
        res = json_response(
            http::status::internal_server_error,
            R"({"errors":[{"field":"","code":"internal","message":"internal error"}]})");
    }
    res.version(req.version());
    res.keep_alive(req.keep_alive() && res.keep_alive());
    send(std::move(res));
}

template <class Stream> void http_session<Stream>::send(response&& res) {
    res_ = std::make_shared<response>(std::move(res));
    bool close = !res_->keep_alive();
    http::async_write(
        stream_, *res_,
        beast::bind_front_handler(&http_session::on_write, this->shared_from_this(), close));
}

template <class Stream>
void http_session<Stream>::on_write(bool close, beast::error_code ec, std::size_t) {
    if (ec) return;
    if (close) return do_close();
    res_.reset();
    do_read();
}

template <class Stream> void http_session<Stream>::do_close() {
    if constexpr (is_tls<Stream>) {
        tcp().expires_after(std::chrono::seconds(5));
        stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
            beast::error_code ignored;
            self->tcp().socket().close(ignored);
        });
    } else {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        // Read what the client still sends (a refused upload's body) before
        // the socket closes: closing with unread bytes resets the connection,
        // and the client could lose the answer it has not read yet.
        drain();
    }
}

template <class Stream> void http_session<Stream>::drain() {
    if (drained_ > (64u << 20)) return;
    tcp().expires_after(std::chrono::seconds(10));
    tcp().async_read_some(net::buffer(drain_),
                          [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (!ec) self->drain();
                          });
}

template class http_session<beast::tcp_stream>;
template class http_session<beast::ssl_stream<beast::tcp_stream>>;

} // namespace pingan::svc
