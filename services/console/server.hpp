// pingan-console's HTTP and WebSocket server: the page, login and sessions,
// the actions, and the live stream of what each user may see.
//
// One io_context thread owns every piece of state here (the view, sessions,
// users, WebSocket sessions); the broker threads hand events in by posting.
// Every message that leaves is built per user: the server decides what a
// user sees (scope, Test traffic, minors' details) and what a user may do.
#pragma once

#include "auth.hpp"
#include "broker_link.hpp"
#include "photos.hpp"
#include "replicator.hpp"
#include "services/common/listener.hpp"
#include "users.hpp"
#include "view.hpp"

#include <boost/asio.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/logger.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace pingan::console {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

struct console_config {
    std::string http = "127.0.0.1:8090"; // loopback by default
    std::string users_file = "var/console/users.json";
    std::string sessions_file;      // where sessions outlive a restart; empty: memory only
    std::string registry;           // schools.csv (districts.csv beside it)
    std::string device = "default"; // source suffix: pingan-console/<device>
    bool https = false;             // reached over HTTPS (a TLS proxy in front): Secure cookies
    std::size_t history = 200000;   // events kept for resuming pages
    std::size_t max_body = 16 * 1024;
    std::size_t max_connections = 1000; // HTTP and WebSocket connections open at once
    session_limits sessions;
    rate_limits logins;
    photo_sources photos;                 // the school services that keep the photos events name
    std::string data_dir = "var/console"; // the replicated photos, when there are sources
};

class ws_session;

class console_server {
  public:
    console_server(net::io_context& ioc, console_config cfg, registry reg, actor& act,
                   std::shared_ptr<spdlog::logger> log);

    // Binds and starts accepting. Returns: the bound endpoint.
    tcp::endpoint start();
    void stop();

    // From the follower (on the io thread).
    void on_event(event e);
    void on_caught_up();

    // One HTTP request; `send` may be called later (actions wait for the broker).
    void handle(request&& req, const std::string& peer, std::function<void(response&&)> send);
    // Takes over a socket whose request asked for a WebSocket upgrade.
    void upgrade(tcp::socket&& s, request&& req, const std::string& peer,
                 std::shared_ptr<void> slot);

    // For WebSocket sessions.
    void on_ws_message(const std::shared_ptr<ws_session>& ws, const std::string& text);
    void forget(ws_session* ws);
    const console_view& view() const { return view_; }
    // GET /metrics: the Prometheus text.
    std::string metrics() const;
    // SIGHUP (systemctl reload): reads the users file now, changed or not.
    // Returns: false if it could not be read (the users loaded before stay).
    bool reload();

  private:
    void login(request&& req, const std::string& peer, std::function<void(response&&)> send);
    bool reload_users();
    void save_sessions();
    void schedule_reload();
    void schedule_clock();
    const user* user_of(const session* s) const;
    const session* session_of(const request& req);
    void resume(const std::shared_ptr<ws_session>& ws, std::uint64_t from);
    void send_timeline(const std::shared_ptr<ws_session>& ws, const std::string& id);
    void log_minors_view(const user& u, const std::vector<const event*>& shown);
    void act(request&& req, const session& s, const user& u, const std::string& id, action what,
             std::function<void(response&&)> send);
    // GET /photos/HASH: a photo an event the user may see names (photos.hpp).
    void photo(const request& req, const user& u, const std::string& hash,
               std::function<void(response&&)> send);

    net::io_context& ioc_;
    console_config cfg_;
    registry reg_;
    actor& actor_;
    std::shared_ptr<spdlog::logger> log_;
    console_view view_;
    user_store users_;
    std::int64_t users_mtime_ = -1;
    session_table sessions_;
    login_limiter limiter_;
    std::string dummy_hash_; // checked for unknown names, so they take as long as known ones
    std::shared_ptr<svc::listener> listener_;
    bool running_ = false;
    net::steady_timer reload_timer_;
    net::steady_timer clock_timer_;
    std::string broker_clock_; // the broker's time as last read, RFC 3339
    std::set<std::shared_ptr<ws_session>> sockets_;
    std::vector<std::weak_ptr<ws_session>> waiting_; // asked to resume before catch-up ended
    bool caught_up_ = false;
    // For /metrics (io thread).
    std::map<std::string, std::uint64_t> logins_;  // ok, failed, limited
    std::map<std::string, std::uint64_t> actions_; // event type published, or "failed"
    std::uint64_t views_logged_ = 0;               // access.viewed published
    // Photos fetched lately (hash -> bytes, type), at most `photo_cache_max`.
    std::map<std::string, std::pair<std::string, std::string>> photo_cache_;
    std::deque<std::string> photo_order_;
    static constexpr std::size_t photo_cache_max = 64;
    // The bureau's copy of the photos events name (with --photo-source).
    std::unique_ptr<photo_replicator> replica_;
    net::thread_pool fetch_pool_{2}; // photo fetches, off the io thread
    // Password hashing (crypto_pwhash takes tens of milliseconds and much
    // memory): off the io thread, which keeps serving pages meanwhile. Last
    // member: joined first when the server goes.
    net::thread_pool hash_pool_{1};
};

// The embedded page (generated at build time from services/console/web/index.html).
extern const char* const console_page;
extern const std::size_t console_page_size;

} // namespace pingan::console
