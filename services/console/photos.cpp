// Fetching photos from the school services over HTTP(S), checked by hash.
#include "photos.hpp"

#include "common/errc.hpp"
#include "services/common/photos.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <fstream>

namespace pingan::console {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct url {
    bool tls = false;
    std::string host, port;
};

std::optional<url> parse_url(const std::string& s) {
    url u;
    std::string rest;
    if (s.rfind("http://", 0) == 0) {
        rest = s.substr(7);
    } else if (s.rfind("https://", 0) == 0) {
        u.tls = true;
        rest = s.substr(8);
    } else {
        return std::nullopt;
    }
    while (!rest.empty() && rest.back() == '/')
        rest.pop_back();
    auto colon = rest.rfind(':');
    if (colon == std::string::npos || rest.find('/') != std::string::npos) {
        u.host = rest;
        u.port = u.tls ? "443" : "80";
    } else {
        u.host = rest.substr(0, colon);
        u.port = rest.substr(colon + 1);
    }
    if (u.host.size() >= 2 && u.host.front() == '[' && u.host.back() == ']')
        u.host = u.host.substr(1, u.host.size() - 2);
    if (u.host.empty() || u.port.empty()) return std::nullopt;
    return u;
}

constexpr std::size_t max_photo = 64u << 20;

// Runs the operation just started to its end; the stream's expiry bounds it,
// so a source that accepts and never answers costs `timeout`, not forever.
void finish(net::io_context& ioc, const beast::error_code& ec) {
    ioc.restart();
    ioc.run();
    if (ec) throw beast::system_error(ec);
}

template <class Stream>
http::response<http::string_body> get(net::io_context& ioc, Stream& s, const url& u,
                                      const std::string& target, const std::string& token) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, u.host + ":" + u.port);
    req.set(http::field::user_agent, "pingan-console");
    req.set(http::field::authorization, "Bearer " + token);
    beast::error_code ec;
    http::async_write(s, req, [&](beast::error_code e, std::size_t) { ec = e; });
    finish(ioc, ec);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(max_photo);
    http::async_read(s, buf, p, [&](beast::error_code e, std::size_t) { ec = e; });
    finish(ioc, ec);
    return p.release();
}

} // namespace

std::string read_token_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw error(errc::io_error, "--photo-token-file " + path + ": cannot be read");
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\n'))
        line.pop_back();
    if (line.rfind("pgn_", 0) != 0)
        throw error(errc::bad_config,
                    "--photo-token-file " + path + ": the first line is not a pgn_ token");
    return line;
}

fetched_photo fetch_photo(const photo_sources& from, const std::string& hash) {
    fetched_photo out;
    if (!svc::valid_photo_hash(hash)) {
        out.error = "not a photo hash";
        return out;
    }
    for (const auto& source : from.urls) {
        auto u = parse_url(source);
        if (!u) {
            out.error += source + ": not an http:// or https:// address; ";
            continue;
        }
        try {
            net::io_context ioc;
            tcp::resolver resolver(ioc);
            auto where = resolver.resolve(u->host, u->port);
            http::response<http::string_body> res;
            if (u->tls) {
                ssl::context ctx(ssl::context::tls_client);
                if (from.ca_file.empty())
                    ctx.set_default_verify_paths();
                else
                    ctx.load_verify_file(from.ca_file);
                beast::ssl_stream<beast::tcp_stream> s(ioc, ctx);
                s.set_verify_mode(ssl::verify_peer);
                s.set_verify_callback(ssl::host_name_verification(u->host));
                if (!SSL_set_tlsext_host_name(s.native_handle(), u->host.c_str()))
                    throw beast::system_error(beast::error_code(static_cast<int>(::ERR_get_error()),
                                                                net::error::get_ssl_category()));
                beast::error_code ec;
                beast::get_lowest_layer(s).expires_after(from.timeout);
                beast::get_lowest_layer(s).async_connect(
                    where, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
                finish(ioc, ec);
                s.async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
                finish(ioc, ec);
                res = get(ioc, s, *u, "/photos/" + hash, from.token);
            } else {
                beast::error_code ec;
                beast::tcp_stream s(ioc);
                s.expires_after(from.timeout);
                s.async_connect(where, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
                finish(ioc, ec);
                res = get(ioc, s, *u, "/photos/" + hash, from.token);
            }
            if (res.result() != http::status::ok) {
                out.error += source + ": " + std::to_string(res.result_int()) + "; ";
                continue;
            }
            // The name is the hash of the bytes: anything else is not the photo.
            if (svc::photo_hash(res.body()) != hash) {
                out.error += source + ": answered bytes that do not match the hash; ";
                continue;
            }
            out.type = std::string(res[http::field::content_type]);
            if (out.type != "image/jpeg" && out.type != "image/png") out.type = "image/jpeg";
            out.bytes = std::move(res.body());
            out.error.clear();
            return out;
        } catch (const std::exception& x) {
            out.error += source + ": " + x.what() + "; ";
        }
    }
    if (out.error.empty()) out.error = "no --photo-source is configured";
    return out;
}

} // namespace pingan::console
