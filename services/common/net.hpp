// Namespace aliases for the services' network code, declared once.
#pragma once

// Boost 1.74 Asio uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace pingan::svc {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using udp = net::ip::udp;

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

} // namespace pingan::svc
