// One HTTP/1.1 connection, plain or TLS: reads requests, hands each to the
// service's handler, writes the answer, and keeps the connection while the
// client asks.
//
// A body over the limit gets 413 and a header over 8 KiB 431, and the
// connection is closed; a request that does not parse gets 400. The handler is synchronous: it only
// writes to the local outbox, which is quick, and never waits for the broker. It sees the
// connection's state (peer address, TLS, what the guard holds for it) and may
// ask to close the connection after its answer.
#pragma once

#include "guard.hpp"
#include "net.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <functional>
#include <memory>
#include <optional>

namespace pingan::svc {

namespace ssl = net::ssl;

using handler = std::function<response(const request&, connection_state&)>;

// The most bytes of a request's header (request line and fields); 431 above.
inline constexpr std::uint32_t max_header_bytes = 8192;

// A route's own body limit (a photo upload is larger than a JSON report):
// the bytes allowed and what the body is called in the 413 answer ("the photo").
struct body_limit {
    std::size_t bytes = 0;
    std::string what = "the body";
    std::string hint; // appended to the 413 message: " (--max-photo-bytes)"
};
// Returns: the limit for a request's target, or nothing for the session's default.
using body_limit_fn = std::function<std::optional<body_limit>(std::string_view target)>;

template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
  public:
    // `slot`, if given, is kept until the session ends (the listener's connection count).
    // `counters`, if given, count failed TLS handshakes and bodies and headers over the limit.
    // `limits`, if given, sets a body limit by target once the header is read.
    http_session(Stream&& stream, std::shared_ptr<const handler> h, std::size_t max_body,
                 std::shared_ptr<void> slot = {}, std::shared_ptr<intake_counters> counters = {},
                 std::shared_ptr<const body_limit_fn> limits = {});
    void run();

  private:
    void on_handshake(beast::error_code ec);
    void do_read();
    void on_header(beast::error_code ec, std::size_t);
    void on_read(beast::error_code ec, std::size_t);
    void too_large(std::optional<std::uint64_t> length);
    void header_too_large();
    void drain();
    void send(response&& res);
    void on_write(bool close, beast::error_code ec, std::size_t);
    void do_close();
    beast::tcp_stream& tcp();

    Stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<const handler> handler_;
    std::size_t max_body_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<response> res_;
    std::shared_ptr<void> slot_;
    std::shared_ptr<intake_counters> counters_;
    std::shared_ptr<const body_limit_fn> limits_;
    body_limit limit_;                // this request's
    std::array<char, 16384> drain_{}; // a refused body's bytes, read and dropped
    std::size_t drained_ = 0;
    connection_state conn_;
};

using plain_session = http_session<beast::tcp_stream>;
using tls_session = http_session<beast::ssl_stream<beast::tcp_stream>>;

// A server TLS context from PEM files (TLS 1.2 and later).
// Throws: pingan::error(bad_config) naming the file that could not be used.
std::shared_ptr<ssl::context> make_server_tls(const std::string& cert_file,
                                              const std::string& key_file);

// A JSON answer with the given status.
response json_response(http::status s, const std::string& body, unsigned version = 11,
                       bool keep_alive = true);

} // namespace pingan::svc
