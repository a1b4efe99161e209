// The console's HTTP and WebSocket sessions and its routes.
#include "server.hpp"

#include "common/codec.hpp"
#include "common/hex.hpp"
#include "common/privacy.hpp"
#include "common/private_file.hpp"
#include "common/prometheus.hpp"
#include "common/time.hpp"
#include "common/version.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <deque>
#include <fstream>
#include <sstream>

namespace pingan::console {
namespace {

std::int64_t now_us() {
    return to_us(std::chrono::time_point_cast<micros>(std::chrono::system_clock::now()));
}

// The string member `key` of a request body: `dflt` when absent, nullopt when
// it is there but not a string (answered 400, never thrown).
std::optional<std::string> string_member(const json& j, const char* key, std::string dflt) {
    auto it = j.find(key);
    if (it == j.end()) return dflt;
    if (!it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

response answer(http::status st, const json& body, unsigned version = 11) {
    response r{st, version};
    r.set(http::field::server, "pingan-console");
    r.set(http::field::content_type, "application/json; charset=utf-8");
    r.set(http::field::cache_control, "no-store");
    r.set("X-Content-Type-Options", "nosniff");
    r.body() = dump(body);
    r.prepare_payload();
    return r;
}

response refuse(int status, const std::string& why) {
    return answer(static_cast<http::status>(status), json{{"error", why}});
}

std::string header(const request& r, http::field f) {
    auto it = r.find(f);
    return it == r.end() ? std::string() : std::string(it->value());
}

std::string header(const request& r, std::string_view name) {
    auto it = r.find(beast::string_view(name.data(), name.size()));
    return it == r.end() ? std::string() : std::string(it->value());
}

std::int64_t mtime_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(errc::io_error, "cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// One HTTP/1.1 connection, handing each request to the server.
class http_session : public std::enable_shared_from_this<http_session> {
  public:
    // `slot` counts the connection against --max-connections while it is open.
    http_session(tcp::socket&& s, console_server& srv, std::size_t max_body,
                 std::shared_ptr<void> slot)
        : stream_(std::move(s)), srv_(srv), max_body_(max_body), slot_(std::move(slot)) {
        beast::error_code ec;
        auto ep = stream_.socket().remote_endpoint(ec);
        peer_ = ec ? "?" : ep.address().to_string();
    }
    void run() {
        net::dispatch(stream_.get_executor(),
                      beast::bind_front_handler(&http_session::read, shared_from_this()));
    }

  private:
    void read() {
        parser_.emplace();
        parser_->body_limit(max_body_);
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&http_session::on_read, shared_from_this()));
    }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec == http::error::body_limit) return write(refuse(413, "the body is too large"), true);
        if (ec) {
            beast::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
            return;
        }
        auto req = parser_->release();
        if (websocket::is_upgrade(req)) {
            stream_.expires_never();
            return srv_.upgrade(stream_.release_socket(), std::move(req), peer_, slot_);
        }
        auto version = req.version();
        bool keep = req.keep_alive();
        auto self = shared_from_this();
        srv_.handle(std::move(req), peer_, [self, version, keep](response&& res) {
            res.version(version);
            res.keep_alive(keep && res.keep_alive());
            net::post(self->stream_.get_executor(), [self, r = std::move(res)]() mutable {
                self->write(std::move(r), !r.keep_alive());
            });
        });
    }
    void write(response&& r, bool close) {
        res_ = std::make_shared<response>(std::move(r));
        http::async_write(
            stream_, *res_, [self = shared_from_this(), close](beast::error_code ec, std::size_t) {
                if (ec || close) {
                    beast::error_code ignored;
                    self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                    return;
                }
                self->res_.reset();
                self->read();
            });
    }

    beast::tcp_stream stream_;
    console_server& srv_;
    std::size_t max_body_;
    std::string peer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<response> res_;
    std::shared_ptr<void> slot_;
};

} // namespace

// One page's WebSocket: the server's messages out, the page's requests in.
class ws_session : public std::enable_shared_from_this<ws_session> {
  public:
    ws_session(tcp::socket&& s, console_server& srv, std::string token, std::string user,
               std::shared_ptr<void> slot)
        : token(std::move(token)), user(std::move(user)), ws_(std::move(s)), srv_(srv),
          slot_(std::move(slot)) {}

    void accept(request&& req) {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.read_message_max(64 * 1024);
        ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
            if (ec) return self->srv_.forget(self.get());
            self->read();
        });
    }
    void send(std::string text) {
        if (closed_) return;
        out_.push_back(std::move(text));
        if (out_.size() == 1) write();
    }
    void close() {
        if (closed_) return;
        closed_ = true;
        ws_.async_close(websocket::close_code::policy_error,
                        [self = shared_from_this()](beast::error_code) {});
    }

    std::string token, user;
    bool test = false;             // the page asked for Test traffic
    bool resumed = false;          // live events flow only after the page's resume
    std::uint64_t resume_from = 1; // asked while the console was catching up

  private:
    void read() {
        ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) {
                self->closed_ = true;
                return self->srv_.forget(self.get());
            }
            auto text = beast::buffers_to_string(self->in_.data());
            self->in_.consume(self->in_.size());
            self->srv_.on_ws_message(self, text);
            self->read();
        });
    }
    void write() {
        ws_.text(true);
        ws_.async_write(net::buffer(out_.front()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            if (ec) {
                                self->closed_ = true;
                                self->out_.clear();
                                return;
                            }
                            self->out_.pop_front();
                            if (!self->out_.empty()) self->write();
                        });
    }

    websocket::stream<beast::tcp_stream> ws_;
    console_server& srv_;
    beast::flat_buffer in_;
    std::deque<std::string> out_;
    bool closed_ = false;
    std::shared_ptr<void> slot_;
};

console_server::console_server(net::io_context& ioc, console_config cfg, registry reg, actor& act,
                               std::shared_ptr<spdlog::logger> log)
    : ioc_(ioc), cfg_(std::move(cfg)), reg_(std::move(reg)), actor_(act), log_(std::move(log)),
      view_(reg_, cfg_.history), sessions_(cfg_.sessions), limiter_(cfg_.logins),
      reload_timer_(ioc), clock_timer_(ioc) {
    users_ = load_users(cfg_.users_file);
    if (!cfg_.photos.empty())
        replica_ = std::make_unique<photo_replicator>(cfg_.data_dir, cfg_.photos, log_);
    users_mtime_ = mtime_of(cfg_.users_file);
    dummy_hash_ = hash_password("not-a-real-password-" + random_hex(8));
    if (!cfg_.sessions_file.empty() && mtime_of(cfg_.sessions_file) >= 0) {
        try {
            sessions_.load(read_file(cfg_.sessions_file), now_us());
        } catch (const error& e) {
            log_->warn("{}: {}; everyone logs in again", cfg_.sessions_file, e.detail());
        }
    }
}

// Sessions are written on login and logout only (rarely), 0600, atomically.
void console_server::save_sessions() {
    if (cfg_.sessions_file.empty()) return;
    try {
        write_private_file(cfg_.sessions_file, sessions_.dump());
    } catch (const error& e) {
        log_->error("{}", e.what());
    }
}

tcp::endpoint console_server::start() {
    auto at = svc::parse_endpoint(cfg_.http);
    if (!at) throw error(errc::bad_config, "--http \"" + cfg_.http + "\" is not HOST:PORT");
    // The services' accept loop: a connection cap, and a pause instead of a
    // spinning core when descriptors run out.
    listener_ = std::make_shared<svc::listener>(
        ioc_, *at, cfg_.max_connections, log_, [this](tcp::socket&& s, std::shared_ptr<void> slot) {
            std::make_shared<http_session>(std::move(s), *this, cfg_.max_body, std::move(slot))
                ->run();
        });
    listener_->run();
    running_ = true;
    if (replica_) replica_->start();
    schedule_reload();
    schedule_clock();
    return listener_->local();
}

void console_server::stop() {
    running_ = false;
    if (listener_) listener_->stop();
    reload_timer_.cancel();
    clock_timer_.cancel();
    if (replica_) replica_->stop();
    for (auto& s : sockets_)
        s->close();
    sockets_.clear();
}

// The users file is re-read when it changes: a disabled user or a new
// password ends that user's sessions and pages at once.
bool console_server::reload_users() {
    auto m = mtime_of(cfg_.users_file);
    if (m == users_mtime_) return true;
    try {
        auto fresh = load_users(cfg_.users_file);
        for (const auto& old : users_.users()) {
            auto* n = fresh.find(old.name);
            if (!n || n->disabled || n->password_hash != old.password_hash ||
                scope_text(n->scope) != scope_text(old.scope) || n->roles != old.roles ||
                n->minors_clearance != old.minors_clearance) {
                sessions_.erase_user(old.name);
                save_sessions();
                for (auto& s : sockets_)
                    if (s->user == old.name) s->close();
            }
        }
        users_ = std::move(fresh);
        users_mtime_ = m;
        log_->info("users file reloaded: {} users", users_.users().size());
        return true;
    } catch (const error& e) {
        users_mtime_ = m; // say it once; keep the users we had
        log_->error("{} (keeping the users loaded before)", e.what());
        return false;
    }
}

bool console_server::reload() {
    users_mtime_ = -1;
    return reload_users();
}

void console_server::schedule_reload() {
    reload_timer_.expires_after(std::chrono::seconds(2));
    reload_timer_.async_wait([this](beast::error_code ec) {
        if (ec) return;
        reload_users();
        schedule_reload();
    });
}

// Pages count down to deadlines on the broker's clock, which in tests and
// simulations is not the browser's: tell them its time now and then.
void console_server::schedule_clock() {
    clock_timer_.expires_after(std::chrono::seconds(broker_clock_.empty() ? 0 : 5));
    clock_timer_.async_wait([this](beast::error_code ec) {
        if (ec) return;
        actor_.read_clock([this](timestamp now) {
            broker_clock_ = format_utc(now);
            auto msg = dump(json{{"t", "clock"}, {"now", broker_clock_}});
            for (auto& ws : sockets_)
                if (ws->resumed) ws->send(msg);
            if (running_) schedule_clock();
        });
    });
}

const user* console_server::user_of(const session* s) const {
    if (!s) return nullptr;
    auto* u = users_.find(s->user);
    return u && !u->disabled ? u : nullptr;
}

const session* console_server::session_of(const request& req) {
    auto token = cookie_value(header(req, http::field::cookie), session_cookie_name);
    if (!token) return nullptr;
    return sessions_.find(session_key(*token), now_us());
}

void console_server::handle(request&& req, const std::string& peer,
                            std::function<void(response&&)> send) {
    std::string target(req.target());
    if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
    auto method = std::string(req.method_string());
    auto host = header(req, http::field::host);
    auto origin = header(req, http::field::origin);
    auto csrf = header(req, "X-CSRF-Token");

    if (target == "/" || target == "/index.html") {
        if (req.method() != http::verb::get) return send(refuse(405, "use GET"));
        response r{http::status::ok, req.version()};
        r.set(http::field::server, "pingan-console");
        r.set(http::field::content_type, "text/html; charset=utf-8");
        r.set(http::field::cache_control, "no-store");
        r.set("Content-Security-Policy",
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'");
        r.set("X-Frame-Options", "DENY");
        r.set("X-Content-Type-Options", "nosniff");
        r.set("Referrer-Policy", "no-referrer");
        r.body().assign(console_page, console_page_size);
        r.prepare_payload();
        return send(std::move(r));
    }
    if (target == "/favicon.ico") {
        response r{http::status::no_content, req.version()};
        r.prepare_payload();
        return send(std::move(r));
    }
    if (target == "/health") {
        json h{
            {"caught_up", caught_up_}, {"offset", view_.last_offset()}, {"pages", sockets_.size()}};
        if (replica_) {
            auto c = replica_->counts();
            h["photos"] = {{"held", c.held},
                           {"pending", c.pending},
                           {"failures", c.failures},
                           {"offset", c.offset}};
        }
        return send(answer(http::status::ok, h));
    }
    if (target == "/metrics") {
        if (req.method() != http::verb::get) return send(refuse(405, "use GET"));
        response r{http::status::ok, req.version()};
        r.set(http::field::server, "pingan-console");
        r.set(http::field::content_type, prom::content_type);
        r.set(http::field::cache_control, "no-store");
        r.body() = metrics();
        r.prepare_payload();
        return send(std::move(r));
    }
    if (target == "/api/login") return login(std::move(req), peer, std::move(send));

    const auto* s = session_of(req);
    const auto* u = user_of(s);
    if (target == "/api/me") {
        if (!u) return send(refuse(401, "not logged in"));
        return send(answer(http::status::ok, json{{"user", u->name},
                                                  {"scope", scope_text(u->scope)},
                                                  {"roles", u->roles},
                                                  {"clearance", u->minors_clearance},
                                                  {"csrf", s->csrf}}));
    }
    if (target == "/api/logout") {
        action_request ar{method, csrf, origin, host, action::view, "", "", true, false};
        auto d = decide_action(ar, s, u);
        if (!d.allowed() && d.status != 404) return send(refuse(d.status, d.reason));
        for (auto& w : sockets_)
            if (w->token == s->token) w->close();
        sessions_.erase(s->token);
        save_sessions();
        auto r = answer(http::status::ok, json{{"ok", true}});
        r.set(http::field::set_cookie, clear_session_cookie(cfg_.https));
        return send(std::move(r));
    }
    if (target == "/api/places") {
        if (!u) return send(refuse(401, "not logged in"));
        return send(answer(http::status::ok, view_.places_for(*u)));
    }
    if (target.starts_with("/photos/")) {
        if (req.method() != http::verb::get) return send(refuse(405, "use GET"));
        if (!u) return send(refuse(401, "not logged in"));
        return photo(req, *u, target.substr(8), std::move(send));
    }
    // /api/incidents/<id>/<action>
    if (target.starts_with("/api/incidents/")) {
        auto rest = target.substr(15);
        auto slash = rest.find('/');
        auto what =
            slash == std::string::npos ? std::nullopt : parse_action(rest.substr(slash + 1));
        if (!what) return send(refuse(404, "no such path"));
        auto id = rest.substr(0, slash);
        const auto* inc = view_.incident(id);
        action_request ar{method,
                          csrf,
                          origin,
                          host,
                          *what,
                          inc ? std::string_view(inc->school) : std::string_view(),
                          inc ? std::string_view(inc->district) : std::string_view(),
                          inc != nullptr,
                          inc && inc->closed,
                          inc ? &inc->member_districts : nullptr};
        auto d = decide_action(ar, s, u);
        if (d.allowed() && inc->mode == status::test) d = {404, "no such incident"};
        if (!d.allowed()) {
            if (u) log_->warn("{} may not {} {}: {}", u->name, action_name(*what), id, d.reason);
            return send(refuse(d.status, d.reason));
        }
        return act(std::move(req), *s, *u, id, *what, std::move(send));
    }
    return send(refuse(404, "no such path"));
}

// A login: the checks that need no hash at once, the hash on the worker,
// and the answer back on the io thread (which serves other pages meanwhile).
void console_server::login(request&& req, const std::string& peer,
                           std::function<void(response&&)> send) {
    if (req.method() != http::verb::post) return send(refuse(405, "use POST"));
    if (!same_origin(header(req, http::field::origin), header(req, http::field::host)))
        return send(refuse(403, "the request comes from another site"));
    json body = json::parse(req.body(), nullptr, false);
    if (!body.is_object() || !body.contains("user") || !body["user"].is_string() ||
        !body.contains("password") || !body["password"].is_string())
        return send(refuse(400, "send {\"user\": ..., \"password\": ...}"));
    auto name = body["user"].get<std::string>();
    auto pw = body["password"].get<std::string>();
    auto now = now_us();
    if (auto wait = limiter_.retry_after(peer, name, now)) {
        auto r = refuse(429, "too many failed logins; try again later");
        r.set(http::field::retry_after, std::to_string(wait));
        log_->warn("login of \"{}\" from {} refused: rate limit", name, peer);
        ++logins_["limited"];
        return send(std::move(r));
    }
    reload_users();
    const auto* known = users_.find(name);
    // Unknown names are checked against a dummy hash, so they take as long.
    auto hash = known ? known->password_hash : dummy_hash_;
    net::post(hash_pool_, [this, hash = std::move(hash), pw = std::move(pw), name, peer,
                           send = std::move(send)]() mutable {
        bool matches = check_password(hash, pw);
        sodium_memzero(pw.data(), pw.size());
        net::post(ioc_, [this, matches, hash = std::move(hash), name = std::move(name),
                         peer = std::move(peer), send = std::move(send)] {
            auto now = now_us();
            // The users file may have changed while the hash ran: the user
            // must still exist, be enabled, and have the hash just checked.
            const auto* u = users_.find(name);
            bool good = matches && u && !u->disabled && u->password_hash == hash;
            if (!good) {
                limiter_.failed(peer, name, now);
                log_->warn("failed login of \"{}\" from {}", name, peer);
                ++logins_["failed"];
                return send(refuse(401, "wrong user name or password"));
            }
            limiter_.succeeded(name);
            auto cookie = random_hex(32);
            const auto& s = sessions_.create(u->name, session_key(cookie), random_hex(32), now);
            log_->info("{} logged in from {}", u->name, peer);
            ++logins_["ok"];
            auto r = answer(http::status::ok, json{{"user", u->name}, {"csrf", s.csrf}});
            r.set(http::field::set_cookie, session_cookie(cookie, cfg_.https));
            save_sessions();
            send(std::move(r));
        });
    });
}

std::string console_server::metrics() const {
    prom::writer w;
    std::vector<prom::sample> info{{{{"version", std::string(version)}}, 1}};
    w.family("pingan_console_info", "gauge", "The console's version.", info);
    std::vector<prom::sample> s;
    for (const char* o : {"ok", "failed", "limited"}) {
        auto it = logins_.find(o);
        s.push_back({{{"outcome", o}}, static_cast<double>(it == logins_.end() ? 0 : it->second)});
    }
    w.family("pingan_console_logins_total", "counter",
             "Login attempts: ok, failed (wrong name or password) or limited (rate limit).", s);
    s.clear();
    for (const auto& [type, n] : actions_)
        s.push_back({{{"type", type}}, static_cast<double>(n)});
    w.family("pingan_console_actions_total", "counter",
             "Actions published for people (by event type; failed: not stored).", s);
    w.counter("pingan_console_access_viewed_total",
              "Records of a person seeing minors' details (access.viewed) published.",
              static_cast<double>(views_logged_));
    w.gauge("pingan_console_sessions", "Login sessions alive.",
            static_cast<double>(sessions_.size()));
    w.gauge("pingan_console_pages", "Pages (WebSockets) connected.",
            static_cast<double>(sockets_.size()));
    w.gauge("pingan_console_connections", "HTTP and WebSocket connections open.",
            static_cast<double>(listener_ ? listener_->open_connections() : 0));
    w.gauge("pingan_console_log_offset", "The last log offset the console has read.",
            static_cast<double>(view_.last_offset()));
    w.gauge("pingan_console_caught_up", "1 once the console has read the log to its head.",
            caught_up_ ? 1 : 0);
    if (replica_) {
        auto c = replica_->counts();
        w.gauge("pingan_console_photos_held", "Photos in the console's photo store.",
                static_cast<double>(c.held));
        w.gauge("pingan_console_photos_pending",
                "Photos named by events and not fetched yet (retried while their sources fail).",
                static_cast<double>(c.pending));
        w.counter("pingan_console_photos_fetched_total",
                  "Photos fetched from the school services and stored.",
                  static_cast<double>(c.fetched));
        w.counter("pingan_console_photo_fetch_failures_total",
                  "Photo fetches that failed (no source answered with the photo).",
                  static_cast<double>(c.failures));
        w.counter("pingan_console_photos_refused_total",
                  "Fetched bytes refused: not the hash, size or type the event names.",
                  static_cast<double>(c.refused));
    }
    w.gauge("pingan_console_open_incidents", "Incidents not closed, as the console sees them.",
            static_cast<double>(std::count_if(view_.incidents().begin(), view_.incidents().end(),
                                              [](const auto& kv) { return !kv.second.closed; })));
    return w.str();
}

void console_server::act(request&& req, const session&, const user& u, const std::string& id,
                         action what, std::function<void(response&&)> send) {
    const auto& inc = *view_.incident(id);
    json body = json::parse(req.body().empty() ? std::string("{}") : req.body(), nullptr, false);
    if (!body.is_object()) return send(refuse(400, "the body must be a JSON object"));
    auto text_member = string_member(body, "text", "");
    if (!text_member) return send(refuse(400, "text must be a string"));
    const auto& text = *text_member;
    // A cross-school incident is acted on for one of its member schools in
    // the user's scope (the engine takes actions on it only from those); an
    // acknowledgement of one with no member known, for no school (the city).
    std::string school = inc.school;
    if (school.empty()) {
        for (const auto& [code, district] : inc.member_schools)
            if (in_scope(u, code, district)) {
                school = code;
                break;
            }
        if (school.empty() && (what != action::acknowledge || !inc.member_schools.empty() ||
                               u.scope.at != user_scope::level::city))
            return send(refuse(409, "no school of this cross-school incident is known to the "
                                    "console within your scope: use pingan incidents"));
    }
    // The event model has no field for the person: the recorded actor is the
    // console's key; the note or resolution names the logged-in user.
    auto by = "console user " + u.name;
    event e;
    e.school = school;
    e.status = inc.mode;
    e.source = "pingan-console/" + cfg_.device;
    e.scope = scope::restricted;
    auto clip = [](std::string s, std::size_t n) {
        if (s.size() <= n) return s;
        s.resize(n);
        while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80)
            s.pop_back(); // do not cut a character in two
        if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
        return s;
    };
    switch (what) {
    case action::acknowledge: {
        incident_acknowledged b;
        b.incident_id = id;
        b.note = clip(by + (text.empty() ? "" : ": " + text), 500);
        e.body = std::move(b);
        break;
    }
    case action::note: {
        if (text.empty()) return send(refuse(400, "write the note (text)"));
        incident_note b;
        b.incident_id = id;
        b.text = clip(by + ": " + text, 2000);
        e.body = std::move(b);
        break;
    }
    case action::resolve: {
        if (text.empty()) return send(refuse(400, "say what was done (text)"));
        incident_resolved b;
        b.incident_id = id;
        b.resolution = clip(by + ": " + text, 2000);
        e.body = std::move(b);
        break;
    }
    case action::verify: {
        if (inc.kind != "hazard") return send(refuse(409, "only hazards are verified"));
        hazard_verified b;
        b.hazard_id = inc.subject;
        b.verifier = u.name;
        auto result = string_member(body, "result", "pass").value_or("");
        if (result != "pass" && result != "fail")
            return send(refuse(400, "result is pass or fail"));
        b.result = result == "pass" ? verify_result::pass : verify_result::fail;
        b.evidence = clip(by + (text.empty() ? "" : ": " + text), 2000);
        e.body = std::move(b);
        break;
    }
    case action::view:
        return send(refuse(404, "no such path"));
    }
    auto who = u.name;
    auto type = std::string(e.type());
    actor_.publish(std::move(e), [this, send = std::move(send), who, id, type](publish_outcome o) {
        if (!o.ok) {
            log_->error("{} by {} on {} not stored: {}", type, who, id, o.error);
            ++actions_["failed"];
            return send(refuse(502, o.error));
        }
        ++actions_[type];
        log_->info("{} by {} on {}: offset {}", type, who, id, o.offset);
        send(answer(http::status::ok, json{{"offset", o.offset}, {"type", type}}));
    });
}

void console_server::upgrade(tcp::socket&& sock, request&& req, const std::string& peer,
                             std::shared_ptr<void> slot) {
    std::string target(req.target());
    const auto* s = session_of(req);
    const auto* u = user_of(s);
    // A WebSocket is not covered by the same-origin policy: check the Origin
    // here, or another site could read the feed with the user's cookie.
    if (target != "/ws" || !u ||
        !same_origin(header(req, http::field::origin), header(req, http::field::host))) {
        log_->warn("WebSocket from {} refused", peer);
        response r = refuse(u ? 403 : 401, u ? "forbidden" : "not logged in");
        r.version(req.version());
        r.keep_alive(false);
        auto stream = std::make_shared<beast::tcp_stream>(std::move(sock));
        auto res = std::make_shared<response>(std::move(r));
        http::async_write(*stream, *res, [stream, res](beast::error_code, std::size_t) {
            beast::error_code ignored;
            stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
        return;
    }
    auto ws =
        std::make_shared<ws_session>(std::move(sock), *this, s->token, u->name, std::move(slot));
    sockets_.insert(ws);
    ws->accept(std::move(req));
}

void console_server::forget(ws_session* ws) {
    for (auto it = sockets_.begin(); it != sockets_.end(); ++it)
        if (it->get() == ws) {
            sockets_.erase(it);
            return;
        }
}

void console_server::on_ws_message(const std::shared_ptr<ws_session>& ws, const std::string& text) {
    auto* s = sessions_.find(ws->token, now_us());
    if (!s || !user_of(s)) return ws->close();
    json m = json::parse(text, nullptr, false);
    if (!m.is_object() || !m.contains("op") || !m["op"].is_string()) {
        ws->send(dump(json{{"t", "error"}, {"error", "send {\"op\": ...}"}}));
        return;
    }
    auto op = m["op"].get<std::string>();
    if (op == "resume") {
        std::uint64_t from = 1;
        if (m.contains("from") && m["from"].is_number_unsigned())
            from = m["from"].get<std::uint64_t>();
        ws->test = m.contains("test") && m["test"].is_boolean() && m["test"].get<bool>();
        if (!caught_up_) {
            // Answer once the console has read the log to its head.
            ws->send(dump(json{{"t", "wait"}}));
            ws->resume_from = from;
            waiting_.push_back(ws);
            return;
        }
        return resume(ws, std::max<std::uint64_t>(from, 1));
    }
    if (op == "timeline" && m.contains("id") && m["id"].is_string())
        return send_timeline(ws, m["id"].get<std::string>());
    ws->send(dump(json{{"t", "error"}, {"error", "unknown op " + op}}));
}

void console_server::resume(const std::shared_ptr<ws_session>& ws, std::uint64_t from) {
    const auto* u = users_.find(ws->user);
    if (!u || u->disabled) return ws->close();
    ws->send(dump(json{{"t", "hello"},
                       {"user", u->name},
                       {"scope", scope_text(u->scope)},
                       {"roles", u->roles},
                       {"clearance", u->minors_clearance},
                       {"head", view_.last_offset()},
                       {"broker_now", broker_clock_}}));
    json list = json::array();
    for (const auto& [id, inc] : view_.incidents())
        if (auto j = view_.incident_for_user(inc, *u, ws->test)) list.push_back(std::move(*j));
    ws->send(dump(json{{"t", "incidents"}, {"list", std::move(list)}}));
    if (from < view_.oldest_kept() && view_.last_offset() >= from)
        ws->send(dump(json{{"t", "trimmed"}, {"oldest", view_.oldest_kept()}}));
    // The view of minors' details is recorded before any of it is sent.
    std::vector<const event*> minors;
    std::vector<std::string> batches;
    json batch = json::array();
    auto flush = [&] {
        if (!batch.empty())
            batches.push_back(dump(json{{"t", "events"}, {"list", std::move(batch)}}));
        batch = json::array();
    };
    for (const auto* e : view_.since(from)) {
        bool shown = false;
        if (auto j = view_.for_user(*e, *u, ws->test, shown)) {
            batch.push_back(std::move(*j));
            if (shown) minors.push_back(e);
            if (batch.size() >= 500) flush();
        }
    }
    flush();
    log_minors_view(*u, minors);
    for (auto& b : batches)
        ws->send(std::move(b));
    ws->send(dump(json{{"t", "at"}, {"o", view_.last_offset()}}));
    ws->resumed = true;
}

namespace {

std::optional<photo_ref> names_photo(const event& e, std::string_view hash) {
    for (auto& r : svc::photo_refs_of(e))
        if (r.hash == hash) return r;
    return std::nullopt;
}

response photo_response(const std::string& bytes, const std::string& type, unsigned version) {
    response r{http::status::ok, version};
    r.set(http::field::server, "pingan-console");
    r.set(http::field::content_type, type);
    r.set(http::field::cache_control, "private, max-age=86400");
    r.set("X-Content-Type-Options", "nosniff");
    r.set("Content-Security-Policy", "default-src 'none'; sandbox");
    r.body() = bytes;
    r.prepare_payload();
    return r;
}

} // namespace

void console_server::photo(const request& req, const user& u, const std::string& hash,
                           std::function<void(response&&)> send) {
    // Only a photo that an event this user may see names: the console is not
    // a way into every school's photos.
    std::optional<photo_ref> ref;
    std::string school;
    for (const auto* e : view_.since(view_.oldest_kept())) {
        auto r = names_photo(*e, hash);
        if (!r) continue;
        bool minors = false;
        if (view_.for_user(*e, u, true, minors)) {
            ref = std::move(r);
            school = e->school;
            break;
        }
    }
    if (!ref) return send(refuse(404, "no event you may see names this photo"));
    auto version = req.version();
    // The console's own copy first: it is there while the school is offline.
    if (replica_)
        if (auto held = replica_->get(hash))
            return send(photo_response(held->bytes, held->type, version));
    if (auto it = photo_cache_.find(hash); it != photo_cache_.end())
        return send(photo_response(it->second.first, it->second.second, version));
    if (cfg_.photos.empty())
        return send(refuse(503, "this console fetches no photos (no --photo-source)"));
    net::post(fetch_pool_, [this, hash, version, named = *ref, school,
                            send = std::move(send)]() mutable {
        auto got = fetch_photo(cfg_.photos, hash);
        // Kept only if it is the photo the event names (hash, size and type).
        if (got.ok() && replica_ && !replica_->keep(named, school, got.bytes, got.type))
            got.error = "the answer is not the size or type the event names";
        net::post(ioc_, [this, hash, version, got = std::move(got), send = std::move(send)] {
            if (!got.ok()) {
                log_->warn("photo {}: {}", hash, got.error);
                return send(refuse(
                    502, "the photo could not be fetched from the school services: " + got.error));
            }
            if (photo_cache_.size() >= photo_cache_max && !photo_order_.empty()) {
                photo_cache_.erase(photo_order_.front());
                photo_order_.pop_front();
            }
            if (photo_cache_.emplace(hash, std::pair{got.bytes, got.type}).second)
                photo_order_.push_back(hash);
            send(photo_response(got.bytes, got.type, version));
        });
    });
}

void console_server::send_timeline(const std::shared_ptr<ws_session>& ws, const std::string& id) {
    const auto* u = users_.find(ws->user);
    const auto* inc = view_.incident(id);
    std::optional<json> ij;
    if (u && inc) ij = view_.incident_for_user(*inc, *u, ws->test);
    if (!ij) {
        ws->send(dump(json{{"t", "timeline"}, {"id", id}, {"error", "no such incident"}}));
        return;
    }
    json entries = json::array();
    std::vector<const event*> minors;
    for (auto off : inc->timeline) {
        const auto* e = view_.at(off);
        if (!e) continue;
        bool shown = false;
        if (auto j = view_.for_user(*e, *u, ws->test, shown)) {
            entries.push_back(std::move(*j));
            if (shown) minors.push_back(e);
        }
    }
    log_minors_view(*u, minors); // recorded before it is sent
    ws->send(dump(json{{"t", "timeline"}, {"id", id}, {"incident", *ij}, {"entries", entries}}));
}

// Every view of minors' details by a cleared user is a fact in the log.
void console_server::log_minors_view(const user& u, const std::vector<const event*>& shown) {
    if (shown.empty()) return;
    access_viewed v;
    v.viewer = "console user " + u.name;
    v.what = "minors_details";
    v.first_offset = shown.front()->offset;
    v.last_offset = shown.back()->offset;
    v.count = static_cast<std::uint32_t>(shown.size());
    for (const auto* e : shown)
        if (std::find(v.schools.begin(), v.schools.end(), e->school) == v.schools.end())
            v.schools.push_back(e->school);
    event e;
    e.school = shown.front()->school;
    e.status = status::actual;
    e.source = "pingan-console/" + cfg_.device;
    e.scope = scope::restricted;
    e.body = std::move(v);
    ++views_logged_;
    actor_.publish(std::move(e), [this, name = u.name](publish_outcome o) {
        if (!o.ok) log_->error("access.viewed for {} not stored: {}", name, o.error);
    });
}

void console_server::on_caught_up() {
    caught_up_ = true;
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting)
        if (auto ws = w.lock())
            if (sockets_.count(ws)) resume(ws, std::max<std::uint64_t>(ws->resume_from, 1));
}

void console_server::on_event(event e) {
    if (replica_) replica_->on_event(e);
    view_.apply(e);
    const auto* stored = view_.at(e.offset);
    if (!stored || !caught_up_) return;
    const auto* inc = view_.incident_of(*stored);
    if (!inc)
        if (const auto* o = std::get_if<incident_opened>(&stored->body))
            inc = view_.incident(o->incident_id);
    auto now = now_us();
    for (const auto& ws :
         std::vector<std::shared_ptr<ws_session>>(sockets_.begin(), sockets_.end())) {
        if (!ws->resumed) continue;
        // An open page keeps its session alive, until its absolute lifetime.
        const auto* u = users_.find(ws->user);
        if (!u || u->disabled || !sessions_.find(ws->token, now)) {
            ws->close();
            continue;
        }
        bool shown = false;
        if (auto j = view_.for_user(*stored, *u, ws->test, shown)) {
            if (shown) log_minors_view(*u, {stored}); // recorded before it is sent
            ws->send(dump(json{{"t", "events"}, {"list", json::array({std::move(*j)})}}));
            if (inc)
                if (auto ij = view_.incident_for_user(*inc, *u, ws->test))
                    ws->send(dump(json{{"t", "incident"}, {"incident", std::move(*ij)}}));
        } else {
            ws->send(dump(json{{"t", "at"}, {"o", stored->offset}}));
        }
    }
}

} // namespace pingan::console
