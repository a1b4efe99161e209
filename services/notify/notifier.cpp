// Deliveries, retries, receipts, acknowledgement links and metrics.
#include "notifier.hpp"

#include "common/markup.hpp"
#include "common/prometheus.hpp"

#include <sodium.h>

#include <algorithm>
#include <sstream>

namespace pingan::notify {
namespace {

namespace http = svc::http;

// A stable id from text, shaped like the engine's derived ids (RFC 9562 v8).
event_id stable_id(std::string_view text) {
    return stable_event_id(text);
}

std::string token_hash(std::string_view token) {
    unsigned char h[32];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(token.data()),
                       token.size(), nullptr, 0);
    return hex(h, sizeof h);
}

// The mode of a page as the status of what notify publishes about it: a
// page of a real incident is System (made by the broker); its receipts and
// acknowledgements are Actual.
pingan::status mode_of(const event& page) {
    if (page.status == pingan::status::exercise) return pingan::status::exercise;
    if (page.status == pingan::status::test) return pingan::status::test;
    return pingan::status::actual;
}

svc::response text_response(http::status s, std::string content_type, std::string body) {
    svc::response res{s, 11};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

svc::response html(http::status s, const std::string& title, const std::string& inner) {
    return text_response(s, "text/html; charset=utf-8",
                         "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\">"
                         "<meta name=\"viewport\" content=\"width=device-width\"><title>" +
                             markup_escape(title) + "</title></head><body><h1>" +
                             markup_escape(title) + "</h1>" + inner + "</body></html>");
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

const char* state_name(int s) {
    static const char* names[] = {"pending", "delivered", "gave_up"};
    return names[s];
}

} // namespace

std::string idempotency_key(const event_id& page, std::string_view receiver) {
    return page.str() + "/" + std::string(receiver);
}

notifier::notifier(net::io_context& ioc, state& st, outbox& box, publisher& pub, channels& ch,
                   const clock& now, notifier_options o, std::shared_ptr<spdlog::logger> log)
    : ioc_(ioc), st_(st), box_(box), pub_(pub), ch_(ch), now_(now), opts_(std::move(o)),
      log_(std::move(log)) {
    position_ = st_.position();
}

std::int64_t notifier::wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

json notifier::page_json(const page& p) const {
    json t = json::array();
    for (const auto& x : p.targets)
        t.push_back({{"receiver", x.receiver},
                     {"attempts", x.attempts},
                     {"state", state_name(static_cast<int>(x.st))},
                     {"last_ok", x.last_ok},
                     {"last_error", x.last_error},
                     {"last_channel", x.last_channel},
                     {"last_latency_ms", x.last_latency_ms},
                     {"receipts", x.receipts}});
    return {{"first_ms", p.first_ms},
            {"expires_ms", p.expires_ms},
            {"final_sent", p.final_sent},
            {"targets", std::move(t)}};
}

bool notifier::page_from_json(const json& j, page& p) const {
    try {
        p.first_ms = j.at("first_ms").get<std::int64_t>();
        p.final_sent = j.at("final_sent").get<bool>();
        p.expires_ms = j.value("expires_ms", std::int64_t{0});
        for (const auto& x : j.at("targets")) {
            target t;
            t.receiver = x.at("receiver").get<std::string>();
            t.attempts = x.at("attempts").get<std::uint32_t>();
            auto s = x.at("state").get<std::string>();
            t.st = s == "delivered" ? tstate::delivered
                   : s == "gave_up" ? tstate::gave_up
                                    : tstate::pending;
            t.last_ok = x.at("last_ok").get<bool>();
            t.last_error = x.at("last_error").get<std::string>();
            t.last_channel = x.at("last_channel").get<std::string>();
            t.last_latency_ms = x.at("last_latency_ms").get<std::uint64_t>();
            t.receipts = x.at("receipts").get<std::uint32_t>();
            // Pages recorded before tokens were derived kept theirs.
            t.token =
                x.contains("token") ? x.at("token").get<std::string>() : link_token(p, t.receiver);
            p.targets.push_back(std::move(t));
        }
        return true;
    } catch (const json::exception&) {
        return false;
    }
}

void notifier::resume() {
    if (auto n = st_.prune_tokens(wall_ms())) log_->info("forgot {} expired link tokens", n);
    for (auto& o : st_.open_pages()) {
        page p;
        p.offset = o.offset;
        if (decode(o.event_bytes, p.ev) || !page_from_json(o.page, p)) {
            log_->error("open page at offset {} is unreadable; dropped", o.offset);
            st_.finish_page(o.offset);
            continue;
        }
        auto& pg = pages_[o.offset] = std::move(p);
        log_->info("resuming page {} (offset {})", pg.ev.id.str(), o.offset);
        for (auto& t : pg.targets)
            if (t.receipts < t.attempts) emit_receipt(pg, t);
        st_.save_page(o.offset, page_json(pg));
        for (std::size_t i = 0; i < pg.targets.size(); ++i)
            if (pg.targets[i].st == tstate::pending) attempt(o.offset, i);
        settle_if_done(o.offset);
    }
}

void notifier::on_page(std::uint64_t offset, std::string bytes) {
    if (stopping_ || offset <= position_ || pages_.count(offset)) return;
    page p;
    p.offset = offset;
    if (auto pr = decode(bytes, p.ev);
        pr || !std::holds_alternative<notification_requested>(p.ev.body)) {
        log_->error("offset {}: not a readable page; skipped", offset);
        position_ = offset;
        st_.set_position(offset);
        return;
    }
    const auto& n = std::get<notification_requested>(p.ev.body);
    p.first_ms = wall_ms();
    std::vector<std::pair<std::string, json>> tokens;
    auto expires = p.first_ms + opts_.ack_ttl.count();
    p.expires_ms = expires;
    for (const auto* r : route(*dir_, p.ev)) {
        target t;
        t.receiver = r->id;
        t.token = link_token(p, r->id);
        tokens.emplace_back(token_hash(t.token),
                            json{{"notification_id", p.ev.id.str()},
                                 {"incident_id", n.incident_id},
                                 {"school", p.ev.school},
                                 {"status", std::string(enum_name(mode_of(p.ev)))},
                                 {"receiver", r->id},
                                 {"receiver_name", r->name},
                                 {"expires_ms", expires},
                                 {"used", false}});
        p.targets.push_back(std::move(t));
    }
    st_.record_page(offset, bytes, page_json(p), tokens);
    position_ = offset;
    ++m_.pages;
    auto& pg = pages_[offset] = std::move(p);
    const auto& page_body = std::get<notification_requested>(pg.ev.body);
    log_->info("page {} (offset {}, incident {}, {} {}) for {} receiver(s)", pg.ev.id.str(), offset,
               page_body.incident_id, enum_name(page_body.tier), enum_name(pg.ev.status),
               pg.targets.size());
    if (pg.targets.empty()) {
        if (pg.ev.status != pingan::status::test) {
            std::string roles;
            for (const auto& r : page_body.roles)
                roles += (roles.empty() ? "" : ",") + r;
            emit_final(pg, "no receiver in the directory for tier " +
                               std::string(enum_name(page_body.tier)) + " roles " + roles +
                               (pg.ev.status == pingan::status::exercise ? " (exercise)" : ""));
        }
        settle_if_done(offset);
        return;
    }
    for (std::size_t i = 0; i < pg.targets.size(); ++i)
        attempt(offset, i);
}

void notifier::on_progress(std::uint64_t position, std::uint64_t head) {
    head_ = std::max(head_, head);
    // Stopping: a page queued before this may have been dropped, so the
    // position must not move past it.
    if (stopping_ || position <= position_) return;
    position_ = position;
    // Non-page events only move the position; saving it now and then is
    // enough, since replaying them again after a crash delivers nothing.
    auto now = wall_ms();
    if (now - position_saved_ms_ > 1000) {
        st_.set_position(position_);
        position_saved_ms_ = now;
    }
}

delivery notifier::make_delivery(const page& p, const target& t, const receiver& r,
                                 std::uint32_t attempt) const {
    const auto& n = std::get<notification_requested>(p.ev.body);
    delivery d;
    d.idempotency_key = idempotency_key(p.ev.id, r.id);
    d.ack_url = opts_.ack_base + "/ack/" + t.token;
    auto text = page_text(p.ev);
    json roles = json::array();
    for (const auto& x : n.roles)
        roles.push_back(x);
    json body = {{"notification_id", p.ev.id.str()},
                 {"idempotency_key", d.idempotency_key},
                 {"attempt", attempt},
                 {"incident_id", n.incident_id},
                 {"school", p.ev.school},
                 {"district", p.ev.district},
                 {"tier", std::string(enum_name(n.tier))},
                 {"roles", roles},
                 {"rule_id", n.rule_id},
                 {"basis", n.basis},
                 {"status", std::string(enum_name(p.ev.status))},
                 {"exercise", n.exercise || p.ev.status == pingan::status::exercise},
                 {"repeat", n.repeat},
                 {"receiver", r.id},
                 {"text", text},
                 {"ack_url", d.ack_url},
                 {"received_at", format_utc(p.ev.received_at)}};
    d.json_body = dump(body);
    d.message = text + "\n确认收到 Acknowledge: " + d.ack_url + "\n";
    d.line = format_local(p.ev.received_at) + " [" + std::string(enum_name(n.tier)) + "] → " +
             (r.name.empty() ? r.id : r.name + " (" + r.id + ")") + ": " + text + " | 规则 " +
             n.rule_id + " (" + n.basis + ") | 确认 " + d.ack_url;
    return d;
}

void notifier::attempt(std::uint64_t offset, std::size_t i) {
    auto it = pages_.find(offset);
    if (stopping_ || it == pages_.end()) return;
    auto& p = it->second;
    auto& t = p.targets[i];
    auto n = t.attempts + 1;
    const auto* r = dir_->find(t.receiver);
    if (!r) {
        net::post(ioc_, [this, offset, i, n] {
            on_outcome(offset, i, n, "none", 0, {false, "receiver is no longer in the directory"});
        });
        return;
    }
    std::string channel(channel_name(r->channel));
    if (n > 1) ++m_.retries[channel];
    auto d = make_delivery(p, t, *r, n);
    auto start = std::chrono::steady_clock::now();
    ch_.deliver(*r, d, [this, offset, i, n, channel, start](outcome o) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
        on_outcome(offset, i, n, channel, static_cast<std::uint64_t>(ms), std::move(o));
    });
}

void notifier::on_outcome(std::uint64_t offset, std::size_t i, std::uint32_t n, std::string channel,
                          std::uint64_t latency_ms, outcome o) {
    auto it = pages_.find(offset);
    if (stopping_ || it == pages_.end()) return;
    auto& p = it->second;
    auto& t = p.targets[i];
    t.attempts = n;
    t.last_ok = o.ok;
    t.last_error = o.error;
    t.last_channel = channel;
    t.last_latency_ms = latency_ms;
    std::chrono::milliseconds delay{0};
    if (o.ok) {
        t.st = tstate::delivered;
        ++m_.deliveries[channel];
        log_->info("delivered {} to {} by {} (attempt {}, {} ms)", p.ev.id.str(), t.receiver,
                   channel, n, latency_ms);
    } else {
        ++m_.failures[channel];
        // Exponential backoff with jitter: half to all of min(initial·2^(n-1), max).
        std::chrono::milliseconds base(opts_.retry_initial.count()
                                       << std::min<std::uint32_t>(n - 1, 20));
        base = std::min(base, opts_.retry_max);
        delay = std::chrono::milliseconds(base.count() / 2 +
                                          randombytes_uniform(static_cast<std::uint32_t>(
                                              std::max<std::int64_t>(base.count() / 2, 1))));
        bool give_up = wall_ms() + delay.count() >= p.first_ms + opts_.give_up_after.count();
        if (give_up || !dir_->find(t.receiver)) t.st = tstate::gave_up;
        log_->warn("failed {} to {} by {} (attempt {}, {} ms): {}{}", p.ev.id.str(), t.receiver,
                   channel, n, latency_ms, o.error,
                   t.st == tstate::gave_up ? "; giving up" : "; will retry");
    }
    // The outcome is durable before its receipt exists: a crash now re-sends
    // the receipt (same id) and never the delivery.
    st_.save_page(offset, page_json(p));
    emit_receipt(p, t);
    st_.save_page(offset, page_json(p));
    if (t.st == tstate::pending) {
        auto key = std::make_pair(offset, i);
        auto& timer = timers_[key];
        timer = std::make_unique<net::steady_timer>(ioc_, delay);
        timer->async_wait([this, offset, i, key](const boost::system::error_code& ec) {
            if (ec) return;
            timers_.erase(key);
            attempt(offset, i);
        });
    }
    settle_if_done(offset);
}

event notifier::receipt_base(const page& p, std::string_view tag) const {
    event e;
    e.id = stable_id(p.ev.id.str() + "|" + std::string(tag));
    e.school = p.ev.school;
    e.source = opts_.source;
    e.occurred_at = now_.now();
    e.status = mode_of(p.ev);
    e.severity = p.ev.severity;
    e.urgency = p.ev.urgency;
    e.certainty = p.ev.certainty;
    e.scope = p.ev.scope;
    e.references = {p.ev.id};
    return e;
}

void notifier::emit_receipt(page& p, target& t) {
    const auto& n = std::get<notification_requested>(p.ev.body);
    auto tag = t.receiver + "|" + std::to_string(t.attempts);
    auto e = receipt_base(p, tag + (t.last_ok ? "|delivered" : "|failed"));
    if (t.last_ok) {
        notification_delivered b;
        b.notification_id = p.ev.id.str();
        b.incident_id = n.incident_id;
        b.receiver = t.receiver;
        b.channel = t.last_channel;
        b.attempt = t.attempts;
        b.latency_ms = t.last_latency_ms;
        e.body = std::move(b);
    } else {
        notification_failed b;
        b.notification_id = p.ev.id.str();
        b.incident_id = n.incident_id;
        b.tier = n.tier;
        b.receiver = t.receiver;
        b.channel = t.last_channel;
        b.attempt = t.attempts;
        b.latency_ms = t.last_latency_ms;
        b.error = t.last_error.substr(0, 480);
        e.body = std::move(b);
    }
    box_.add(e);
    pub_.notify();
    t.receipts = t.attempts;
}

void notifier::emit_final(page& p, const std::string& why) {
    const auto& n = std::get<notification_requested>(p.ev.body);
    auto e = receipt_base(p, "final");
    notification_failed b;
    b.notification_id = p.ev.id.str();
    b.incident_id = n.incident_id;
    b.tier = n.tier;
    std::uint32_t attempts = 0;
    for (const auto& t : p.targets)
        attempts += t.attempts;
    b.attempt = attempts;
    b.error = why.substr(0, 480);
    b.final = true;
    e.body = std::move(b);
    box_.add(e);
    pub_.notify();
    p.final_sent = true;
    ++m_.final_failures;
    log_->warn("page {} reached nobody: {}", p.ev.id.str(), why);
}

void notifier::settle_if_done(std::uint64_t offset) {
    auto it = pages_.find(offset);
    if (it == pages_.end()) return;
    auto& p = it->second;
    if (std::any_of(p.targets.begin(), p.targets.end(),
                    [](const target& t) { return t.st == tstate::pending; }))
        return;
    bool any = std::any_of(p.targets.begin(), p.targets.end(),
                           [](const target& t) { return t.st == tstate::delivered; });
    if (!any && !p.final_sent && !p.targets.empty() && p.ev.status != pingan::status::test) {
        std::string last;
        for (const auto& t : p.targets)
            last += (last.empty() ? "" : "; ") + t.receiver + ": " + t.last_error;
        emit_final(p, "no receiver confirmed within the give-up time (" + last + ")");
    }
    st_.finish_page(offset);
    pages_.erase(it);
}

void notifier::stop() {
    stopping_ = true;
    for (auto& [k, t] : timers_)
        t->cancel();
    timers_.clear();
    if (position_ > 0) st_.set_position(std::max(position_, st_.position()));
}

// ---- HTTP ----------------------------------------------------------------------

svc::response notifier::handle(const svc::request& req) {
    auto target = std::string_view(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (target == "/health" && req.method() == http::verb::get) {
        auto h = pub_.health();
        json j = {{"service", "pingan-notify"},
                  {"position", position_},
                  {"head", head_},
                  {"open_pages", pages_.size()},
                  {"directory", dir_->name},
                  {"receivers", dir_->receivers.size()},
                  {"directory_reloads", m_.reloads},
                  {"directory_reloads_refused", m_.reloads_refused},
                  {"outbox_depth", h.depth},
                  {"dead_letters", h.dead_letters},
                  {"nacks", h.nacks},
                  {"forbidden", h.nacks.count("forbidden") ? h.nacks.at("forbidden") : 0},
                  {"broker", {{"endpoint", h.endpoint}, {"connected", h.connected}}}};
        return text_response(http::status::ok, "application/json", dump(j));
    }
    if (target == "/metrics" && opts_.metrics && req.method() == http::verb::get)
        return text_response(http::status::ok, std::string(prom::content_type), metrics_text());
    if (target.starts_with("/ack/")) return ack(req, target.substr(5));
    return text_response(http::status::not_found, "text/plain; charset=utf-8", "not found\n");
}

svc::response notifier::ack(const svc::request& req, std::string_view token) {
    if (req.method() != http::verb::get && req.method() != http::verb::post)
        return text_response(http::status::method_not_allowed, "text/plain", "use GET or POST\n");
    auto hash = token_hash(token);
    auto tok = token.size() == 24 ? st_.token(hash) : std::nullopt;
    if (!tok || !tok->is_object())
        return html(http::status::not_found, "链接无效 Unknown link",
                    "<p>This acknowledgement link is not known.</p>");
    if (wall_ms() > tok->value("expires_ms", std::int64_t{0}))
        return html(http::status::gone, "链接已过期 Link expired",
                    "<p>Acknowledge the incident in the console instead.</p>");
    auto incident = tok->value("incident_id", std::string());
    auto who = tok->value("receiver_name", std::string());
    auto rid = tok->value("receiver", std::string());
    auto status = tok->value("status", std::string("Actual"));
    auto details = "<p>事件 Incident: <code>" + markup_escape(incident) + "</code></p><p>接收人 " +
                   "Receiver: " + markup_escape(who.empty() ? rid : who + " (" + rid + ")") +
                   "</p>" +
                   (status == "Exercise" ? "<p><strong>【演练 EXERCISE】</strong></p>" : "");
    if (tok->value("used", false))
        return html(http::status::ok, "已确认 Already acknowledged", details);
    if (req.method() == http::verb::get)
        return html(http::status::ok, "确认收到 Acknowledge",
                    details + "<form method=\"post\"><button type=\"submit\">确认收到 "
                              "Acknowledge</button></form>");
    event e;
    e.id = stable_id(hash + "|ack");
    e.school = tok->value("school", std::string());
    e.source = opts_.source;
    e.occurred_at = now_.now();
    e.status = enum_parse<pingan::status>(status).value_or(pingan::status::actual);
    if (auto ref = event_id::parse(tok->value("notification_id", std::string())))
        e.references = {*ref};
    incident_acknowledged a;
    a.incident_id = incident;
    a.note = "acknowledged by receiver " + rid + (who.empty() ? "" : " (" + who + ")") +
             " through the page link";
    e.body = std::move(a);
    try {
        box_.add(e);
    } catch (const error& x) {
        log_->error("outbox: {}", x.what());
        return html(http::status::service_unavailable, "请重试 Try again",
                    "<p>The acknowledgement could not be recorded.</p>");
    }
    pub_.notify();
    (*tok)["used"] = true;
    (*tok)["used_at"] = format_utc(now_.now());
    st_.save_token(hash, *tok);
    ++m_.acks;
    log_->info("incident {} acknowledged by {} through its page link", incident, rid);
    return html(http::status::ok, "已确认 Acknowledged", details);
}

// HMAC-SHA256 under the link key of what the link stands for: the page (and
// so its incident and tier), the receiver and the expiry; 12 bytes of it in hex.
std::string notifier::link_token(const page& p, const std::string& receiver) const {
    const auto* n = std::get_if<notification_requested>(&p.ev.body);
    std::string msg = "pingan-notify ack-link v1\n" + p.ev.id.str() + "\n" +
                      (n ? n->incident_id : std::string()) + "\n" +
                      (n ? std::string(enum_name(n->tier)) : std::string()) + "\n" + receiver +
                      "\n" + std::to_string(p.expires_ms);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(opts_.link_key.data()),
                                opts_.link_key.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(msg.data()),
                                  msg.size());
    crypto_auth_hmacsha256_final(&st, mac);
    return hex(mac, 12);
}

std::string notifier::metrics_text() const {
    prom::writer w;
    auto by_channel = [&](const char* name, const char* help,
                          const std::map<std::string, std::uint64_t>& m) {
        std::vector<prom::sample> v;
        for (const char* ch : {"webhook", "command", "file"}) {
            auto it = m.find(ch);
            v.push_back({{{"channel", ch}}, static_cast<double>(it == m.end() ? 0 : it->second)});
        }
        w.family(name, "counter", help, v);
    };
    by_channel("pingan_notify_deliveries_total", "Pages delivered, by channel.", m_.deliveries);
    by_channel("pingan_notify_failures_total", "Failed delivery attempts, by channel.",
               m_.failures);
    by_channel("pingan_notify_retries_total", "Delivery attempts after the first, by channel.",
               m_.retries);
    w.counter("pingan_notify_pages_total", "Pages taken from the log.",
              static_cast<double>(m_.pages));
    w.counter("pingan_notify_final_failures_total", "Pages that reached no receiver.",
              static_cast<double>(m_.final_failures));
    w.counter("pingan_notify_acks_total", "Incidents acknowledged through page links.",
              static_cast<double>(m_.acks));
    w.counter("pingan_notify_directory_reloads_refused_total",
              "Directory reloads refused because the file had mistakes.",
              static_cast<double>(m_.reloads_refused));
    w.gauge("pingan_notify_lag_events", "Log events between notify's position and the head.",
            static_cast<double>(head_ > position_ ? head_ - position_ : 0));
    w.gauge("pingan_notify_position", "The last log offset notify has taken.",
            static_cast<double>(position_));
    w.gauge("pingan_notify_open_pages", "Pages with deliveries still pending.",
            static_cast<double>(pages_.size()));
    publisher_metrics(w, "pingan_notify", pub_.health());
    return w.str();
}

} // namespace pingan::notify
