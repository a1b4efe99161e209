// The mobile page's assets and the data its read routes answer with.
#include "mobile.hpp"

#include "guard.hpp"

#include <algorithm>
#include <cstddef>

namespace pingan::svc {

extern const char* const mobile_page;
extern const std::size_t mobile_page_size;
extern const char* const mobile_worker;
extern const std::size_t mobile_worker_size;

namespace {

response asset(const char* bytes, std::size_t size, const char* type) {
    response res{http::status::ok, 11};
    res.set(http::field::server, "pingan");
    res.set(http::field::content_type, type);
    // Always revalidated: a phone must not keep an old page after an upgrade
    // while it is online; the service worker serves it while it is not.
    res.set(http::field::cache_control, "no-cache");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    // Only this intake: no script, style or connection elsewhere; never framed.
    res.set("Content-Security-Policy",
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    res.body().assign(bytes, size);
    res.prepare_payload();
    return res;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

std::optional<response> mobile_asset(std::string_view target) {
    if (target == "/" || target == "/index.html")
        return asset(mobile_page, mobile_page_size, "text/html; charset=utf-8");
    if (target == "/sw.js")
        return asset(mobile_worker, mobile_worker_size, "text/javascript; charset=utf-8");
    return std::nullopt;
}

bool route_allowed(const credential& c, std::string_view route) {
    const auto& p = policy_of(route);
    return p.required_roles.empty() ||
           std::any_of(p.required_roles.begin(), p.required_roles.end(),
                       [&](const std::string& r) { return c.has_role(r); });
}

nlohmann::json mobile_me(const credential& c, const registry& reg, std::string_view service,
                         const std::vector<std::string>& routes, std::size_t max_schools) {
    nlohmann::json allowed = nlohmann::json::array();
    for (const auto& r : routes)
        if (route_allowed(c, r)) allowed.push_back(r);
    nlohmann::json schools = nlohmann::json::array();
    for (const auto& s : reg.schools()) {
        if (schools.size() >= max_schools) break;
        if (c.covers(reg, s.id)) schools.push_back({{"id", s.id}, {"name", s.name}});
    }
    return {{"name", c.name},
            {"roles", c.roles},
            {"service", std::string(service)},
            {"routes", allowed},
            {"schools", schools}};
}

std::optional<std::string> query_param(std::string_view target, std::string_view key) {
    auto q = target.find('?');
    if (q == std::string_view::npos) return std::nullopt;
    auto rest = target.substr(q + 1);
    while (!rest.empty()) {
        auto amp = rest.find('&');
        auto pair = rest.substr(0, amp);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == key) {
            std::string out;
            auto raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
            for (std::size_t i = 0; i < raw.size(); ++i) {
                if (raw[i] == '%' && i + 2 < raw.size() && hex_value(raw[i + 1]) >= 0 &&
                    hex_value(raw[i + 2]) >= 0) {
                    out += static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
                    i += 2;
                } else {
                    out += raw[i] == '+' ? ' ' : raw[i];
                }
            }
            return out;
        }
        if (amp == std::string_view::npos) break;
        rest = rest.substr(amp + 1);
    }
    return std::nullopt;
}

} // namespace pingan::svc
