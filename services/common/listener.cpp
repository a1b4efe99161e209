// The accept loop.
#include "listener.hpp"

namespace pingan::svc {

listener::listener(net::io_context& ioc, tcp::endpoint at, std::shared_ptr<const handler> h,
                   std::size_t max_body)
    : ioc_(ioc), acceptor_(net::make_strand(ioc)), handler_(std::move(h)), max_body_(max_body) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(net::socket_base::max_listen_connections);
}

void listener::run() {
    do_accept();
}

void listener::stop() {
    beast::error_code ec;
    acceptor_.close(ec);
}

void listener::do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec,
                                                                               tcp::socket s) {
        if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
        if (!ec)
            std::make_shared<http_session>(std::move(s), self->handler_, self->max_body_)->run();
        self->do_accept();
    });
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
