// Sessions, CSRF, login rate limit and permissions: decisions without I/O.
#include "auth.hpp"

#include "common/hex.hpp"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>

namespace pingan::console {

const session& session_table::create(std::string user, std::string token, std::string csrf,
                                     std::int64_t now_us) {
    session s{token, std::move(csrf), std::move(user), now_us, now_us};
    auto [it, _] = by_token_.insert_or_assign(std::move(token), std::move(s));
    return it->second;
}

const session* session_table::find(std::string_view token, std::int64_t now_us) {
    auto it = by_token_.find(token);
    if (it == by_token_.end()) return nullptr;
    auto& s = it->second;
    if (now_us - s.seen_us > limits_.idle_us || now_us - s.created_us > limits_.absolute_us) {
        by_token_.erase(it);
        return nullptr;
    }
    s.seen_us = std::max(s.seen_us, now_us);
    return &s;
}

void session_table::erase(std::string_view token) {
    if (auto it = by_token_.find(token); it != by_token_.end()) by_token_.erase(it);
}

std::string session_table::dump() const {
    auto all = nlohmann::json::array();
    for (const auto& [k, s] : by_token_)
        all.push_back({{"key", s.token},
                       {"csrf", s.csrf},
                       {"user", s.user},
                       {"created_us", s.created_us},
                       {"seen_us", s.seen_us}});
    return nlohmann::json{{"sessions", all}}.dump(1) + "\n";
}

void session_table::load(std::string_view text, std::int64_t now_us) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("sessions") || !j["sessions"].is_array())
        throw error(errc::bad_config, "not a sessions file");
    by_token_.clear();
    try {
        for (const auto& s : j["sessions"]) {
            session x{s.at("key").get<std::string>(), s.at("csrf").get<std::string>(),
                      s.at("user").get<std::string>(), s.at("created_us").get<std::int64_t>(),
                      now_us};
            if (now_us - x.created_us > limits_.absolute_us || x.token.empty()) continue;
            by_token_.insert_or_assign(x.token, x);
        }
    } catch (const nlohmann::json::exception& e) {
        by_token_.clear();
        throw error(errc::bad_config, std::string("sessions file: ") + e.what());
    }
}

std::string session_key(std::string_view cookie) {
    unsigned char h[32];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(cookie.data()),
                       cookie.size(), nullptr, 0);
    return to_hex(h, sizeof h);
}

void session_table::erase_user(std::string_view user) {
    std::erase_if(by_token_, [&](const auto& kv) { return kv.second.user == user; });
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        auto semi = header.find(';');
        auto part = header.substr(0, semi);
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
        while (!part.empty() && part.front() == ' ')
            part.remove_prefix(1);
        auto eq = part.find('=');
        if (eq == std::string_view::npos) continue;
        if (part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
    }
    return std::nullopt;
}

std::string session_cookie(std::string_view token, bool secure) {
    return std::string(session_cookie_name) + "=" + std::string(token) +
           "; Path=/; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
}

std::string clear_session_cookie(bool secure) {
    return std::string(session_cookie_name) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" +
           (secure ? "; Secure" : "");
}

bool csrf_matches(const session& s, std::string_view sent) noexcept {
    if (s.csrf.empty() || sent.size() != s.csrf.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < sent.size(); ++i)
        diff |= static_cast<unsigned char>(sent[i] ^ s.csrf[i]);
    return diff == 0;
}

std::int64_t login_limiter::wait(counter& c, int limit, std::int64_t now_us) const {
    if (now_us - c.window_start >= limits_.window_us) c = counter{now_us, 0};
    if (c.failures < limit) return 0;
    auto left = c.window_start + limits_.window_us - now_us;
    return std::max<std::int64_t>(1, (left + 999999) / 1000000);
}

std::int64_t login_limiter::retry_after(std::string_view address, std::string_view user,
                                        std::int64_t now_us) {
    std::int64_t w = 0;
    if (auto a = by_address_.find(address); a != by_address_.end())
        w = wait(a->second, limits_.per_address, now_us);
    if (auto u = by_user_.find(user); u != by_user_.end())
        w = std::max(w, wait(u->second, limits_.per_user, now_us));
    return w;
}

void login_limiter::failed(std::string_view address, std::string_view user, std::int64_t now_us) {
    // Many made-up names or addresses must not grow the tables without end.
    for (auto* m : {&by_address_, &by_user_})
        if (m->size() > 10000)
            std::erase_if(*m, [&](const auto& kv) {
                return now_us - kv.second.window_start >= limits_.window_us;
            });
    for (auto* c : {&by_address_[std::string(address)], &by_user_[std::string(user)]}) {
        if (c->failures == 0 || now_us - c->window_start >= limits_.window_us)
            *c = counter{now_us, 0};
        ++c->failures;
    }
}

void login_limiter::succeeded(std::string_view user) {
    if (auto it = by_user_.find(user); it != by_user_.end()) by_user_.erase(it);
}

std::optional<action> parse_action(std::string_view name) {
    if (name == "ack") return action::acknowledge;
    if (name == "note") return action::note;
    if (name == "resolve") return action::resolve;
    if (name == "verify") return action::verify;
    return std::nullopt;
}

std::string_view action_name(action a) noexcept {
    switch (a) {
    case action::view:
        return "view";
    case action::acknowledge:
        return "ack";
    case action::note:
        return "note";
    case action::resolve:
        return "resolve";
    case action::verify:
        return "verify";
    }
    return "view";
}

bool in_scope(const user& u, std::string_view school, std::string_view district,
              const std::set<std::string>* member_districts) noexcept {
    switch (u.scope.at) {
    case user_scope::level::city:
        return true;
    case user_scope::level::district:
        if (school.empty())
            return member_districts &&
                   member_districts->find(u.scope.code) != member_districts->end();
        return district == u.scope.code;
    case user_scope::level::school:
        return !school.empty() && school == u.scope.code;
    }
    return false;
}

bool same_origin(std::string_view origin, std::string_view host) noexcept {
    if (origin.empty()) return true; // same-origin GETs and some browsers send none
    for (std::string_view scheme : {"http://", "https://"})
        if (origin.starts_with(scheme)) return origin.substr(scheme.size()) == host;
    return false;
}

decision decide_action(const action_request& r, const session* s, const user* u) {
    if (!s || !u) return {401, "not logged in"};
    if (u->disabled) return {401, "this user is disabled"};
    if (r.method != "POST") return {405, "use POST"};
    if (!same_origin(r.origin, r.host)) return {403, "the request comes from another site"};
    if (!csrf_matches(*s, r.csrf_header)) return {403, "missing or wrong CSRF token"};
    std::string_view need = "viewer";
    switch (r.what) {
    case action::view:
        need = "viewer";
        break;
    case action::acknowledge:
    case action::note:
        need = "responder";
        break;
    case action::resolve:
    case action::verify:
        need = "supervisor";
        break;
    }
    if (!u->has_role(need))
        return {403, "the role " + std::string(need) + " is needed to " +
                         std::string(action_name(r.what))};
    if (!r.incident_known) return {404, "no such incident"};
    // Out of scope looks the same as unknown: nothing is revealed about it.
    if (!in_scope(*u, r.school, r.district, r.member_districts)) return {404, "no such incident"};
    if (r.incident_closed && r.what != action::note && r.what != action::view)
        return {409, "the incident is closed"};
    return {};
}

} // namespace pingan::console
