// Accepts TCP connections and starts an http_session for each.
#pragma once

#include "http_session.hpp"
#include "net.hpp"

#include <memory>

namespace pingan::svc {

class listener : public std::enable_shared_from_this<listener> {
  public:
    // Binds at once, so that the bound port is known before run().
    // Throws: boost::system::system_error if the address cannot be bound.
    listener(net::io_context& ioc, tcp::endpoint at, std::shared_ptr<const handler> h,
             std::size_t max_body);
    void run();
    void stop();
    tcp::endpoint local() const { return acceptor_.local_endpoint(); }

  private:
    void do_accept();

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    std::shared_ptr<const handler> handler_;
    std::size_t max_body_;
};

// Parses "host:port" ("127.0.0.1:8081", "[::1]:0"). Returns: nothing if malformed.
std::optional<tcp::endpoint> parse_endpoint(const std::string& text);

} // namespace pingan::svc
