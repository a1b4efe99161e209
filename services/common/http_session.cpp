// HTTP/1.1 sessions over Beast, in the manner of Beast's example servers.
#include "http_session.hpp"

#include <chrono>

namespace pingan::svc {

response json_response(http::status s, const std::string& body, unsigned version, bool keep_alive) {
    response res{s, version};
    res.set(http::field::server, "pingan");
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.keep_alive(keep_alive);
    res.body() = body;
    res.prepare_payload();
    return res;
}

http_session::http_session(tcp::socket&& socket, std::shared_ptr<const handler> h,
                           std::size_t max_body, std::shared_ptr<void> slot)
    : stream_(std::move(socket)), handler_(std::move(h)), max_body_(max_body),
      slot_(std::move(slot)) {}

void http_session::run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&http_session::do_read, shared_from_this()));
}

void http_session::do_read() {
    parser_.emplace();
    parser_->body_limit(max_body_);
    // A client that stops sending must not hold the connection forever.
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
    }
    if (ec == http::error::body_limit) {
        return send(json_response(
            http::status::payload_too_large,
            R"({"errors":[{"field":"","code":"message_too_large","message":"the body is over )" +
                std::to_string(max_body_) + R"( bytes"}]})",
            11, false));
    }
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
        res = (*handler_)(req);
    } catch (const std::exception& x) {
        res = json_response(
            http::status::internal_server_error,
            R"({"errors":[{"field":"","code":"internal","message":"internal error"}]})");
    }
    res.version(req.version());
    res.keep_alive(req.keep_alive() && res.keep_alive());
    send(std::move(res));
}

void http_session::send(response&& res) {
    res_ = std::make_shared<response>(std::move(res));
    bool close = !res_->keep_alive();
    http::async_write(
        stream_, *res_,
        beast::bind_front_handler(&http_session::on_write, shared_from_this(), close));
}

void http_session::on_write(bool close, beast::error_code ec, std::size_t) {
    if (ec) return;
    if (close) {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
    }
    res_.reset();
    do_read();
}

} // namespace pingan::svc
