// The console's security decisions as pure functions: sessions, CSRF, the
// login rate limit and permissions. Like Beast's handle_request, nothing here
// does I/O or reads a clock: the time, the random tokens and the request's
// facts are passed in, so each decision is tested on its own.
#pragma once

#include "users.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace pingan::console {

// ---- sessions ----

struct session {
    std::string token; // a hash of the cookie value (the cookie itself is kept nowhere)
    std::string csrf;  // the token the page sends back in X-CSRF-Token
    std::string user;
    std::int64_t created_us = 0, seen_us = 0;
};

struct session_limits {
    std::int64_t idle_us = 30LL * 60 * 1000000;       // 30 min without a request
    std::int64_t absolute_us = 12LL * 3600 * 1000000; // 12 h after login
};

class session_table {
  public:
    explicit session_table(session_limits l = {}) : limits_(l) {}
    // Starts a session for `user` with the given random tokens.
    const session& create(std::string user, std::string token, std::string csrf,
                          std::int64_t now_us);
    // Returns: the live session for `token` (touching it), or null if unknown
    // or expired (an expired one is removed).
    const session* find(std::string_view token, std::int64_t now_us);
    void erase(std::string_view token);
    // Ends every session of `user` (disabled, or password changed).
    void erase_user(std::string_view user);
    std::size_t size() const noexcept { return by_token_.size(); }

    // The table as JSON, and back: the console keeps it in a file so that a
    // restart does not log everyone out. Sessions expired at `now_us` are
    // dropped on load; a loaded session counts as seen at `now_us`.
    std::string dump() const;
    // Throws: pingan::error(bad_config) if the text is not such a table.
    void load(std::string_view text, std::int64_t now_us);

  private:
    session_limits limits_;
    std::map<std::string, session, std::less<>> by_token_;
};

// The key a session is kept under: a BLAKE2b hash of the cookie's value, hex.
std::string session_key(std::string_view cookie);

// The value of cookie `name` in a Cookie header. Returns: nothing if absent.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);

inline constexpr std::string_view session_cookie_name = "pingan_session";

// Set-Cookie for a session: HttpOnly, SameSite=Strict, Path=/, and Secure
// when the console is reached over HTTPS.
std::string session_cookie(std::string_view token, bool secure);
// Set-Cookie that removes the session cookie.
std::string clear_session_cookie(bool secure);

// True if `sent` equals the session's CSRF token (compared in constant time).
bool csrf_matches(const session& s, std::string_view sent) noexcept;

// ---- login rate limit ----

struct rate_limits {
    int per_address = 10;                         // failures from one address in the window
    int per_user = 5;                             // failures for one user name in the window
    std::int64_t window_us = 15LL * 60 * 1000000; // 15 min
};

// Counts failed logins per address and per user name in a sliding window.
class login_limiter {
  public:
    explicit login_limiter(rate_limits l = {}) : limits_(l) {}
    // Returns: 0 if a login attempt may proceed now, else the seconds to wait.
    std::int64_t retry_after(std::string_view address, std::string_view user, std::int64_t now_us);
    void failed(std::string_view address, std::string_view user, std::int64_t now_us);
    // A good password clears the user's count (not the address's).
    void succeeded(std::string_view user);

  private:
    struct counter {
        std::int64_t window_start = 0;
        int failures = 0;
    };
    std::int64_t wait(counter& c, int limit, std::int64_t now_us) const;
    rate_limits limits_;
    std::map<std::string, counter, std::less<>> by_address_, by_user_;
};

// ---- permissions ----

enum class action { view, acknowledge, note, resolve, verify };
std::optional<action> parse_action(std::string_view name);
std::string_view action_name(action a) noexcept;

// True if `u` may see records of `school` in `district` (empty school: a
// city-wide record, which only city users see; or a cross-school incident,
// which district users see when one of its `member_districts` is theirs).
bool in_scope(const user& u, std::string_view school, std::string_view district,
              const std::set<std::string>* member_districts = nullptr) noexcept;

// What the server knows about an action request.
struct action_request {
    std::string_view method;      // "POST"
    std::string_view csrf_header; // X-CSRF-Token
    std::string_view origin;      // Origin header, may be empty
    std::string_view host;        // Host header
    action what = action::view;
    // The incident acted on.
    std::string_view school, district;
    bool incident_known = false;
    bool incident_closed = false;
    const std::set<std::string>* member_districts = nullptr; // of a cross-school incident
};

struct decision {
    int status = 200; // HTTP status to answer with if refused
    std::string reason;
    bool allowed() const noexcept { return status == 200; }
};

// The whole decision for an action: the session exists, the request is a
// POST from this console's own origin with the session's CSRF token, the user
// is enabled, holds the role, and the incident is within the user's scope.
decision decide_action(const action_request& r, const session* s, const user* u);

// True if an Origin header (if any) names the console's own Host.
bool same_origin(std::string_view origin, std::string_view host) noexcept;

} // namespace pingan::console
