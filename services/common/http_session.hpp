// One HTTP/1.1 connection: reads requests, hands each to the service's
// handler, writes the answer, and keeps the connection while the client asks.
//
// A body over the limit gets 413 and the connection is closed; a request that
// does not parse gets 400. The handler is synchronous: it only writes to the
// local outbox, which is quick, and never waits for the broker.
#pragma once

#include "net.hpp"

#include <functional>
#include <memory>
#include <optional>

namespace pingan::svc {

using handler = std::function<response(const request&)>;

class http_session : public std::enable_shared_from_this<http_session> {
  public:
    // `slot`, if given, is kept until the session ends (the listener's connection count).
    http_session(tcp::socket&& socket, std::shared_ptr<const handler> h, std::size_t max_body,
                 std::shared_ptr<void> slot = {});
    void run();

  private:
    void do_read();
    void on_read(beast::error_code ec, std::size_t);
    void send(response&& res);
    void on_write(bool close, beast::error_code ec, std::size_t);

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<const handler> handler_;
    std::size_t max_body_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<response> res_;
    std::shared_ptr<void> slot_;
};

// A JSON answer with the given status.
response json_response(http::status s, const std::string& body, unsigned version = 11,
                       bool keep_alive = true);

} // namespace pingan::svc
