// The service host: outbox, publisher, registry, clock and the HTTP routes.
#include "service.hpp"

#include "image.hpp"
#include "mobile.hpp"

#include "common/prometheus.hpp"
#include "common/readiness.hpp"
#include "common/version.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

namespace pingan::svc {

namespace {

bool is_loopback(const std::string& http) {
    auto at = parse_endpoint(http);
    return at && at->address().is_loopback();
}

// An answer refused by the guard: {"errors":[{field, code, message}]}.
response refusal(http::status s, std::string_view field, std::string_view code,
                 const std::string& message, bool keep_alive = true) {
    nlohmann::json j = {
        {"errors",
         nlohmann::json::array({{{"field", field}, {"code", code}, {"message", message}}})}};
    return json_response(s, j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace), 11,
                         keep_alive);
}

} // namespace

service_host::service_host(service_runtime& rt, const service_config& cfg,
                           const intake_options& sec)
    : rt_(rt), cfg_(cfg), source_(cfg.name + "/" + cfg.device), sec_(sec),
      by_credential_(sec.rate_per_credential, sec.burst_per_credential),
      by_address_(sec.rate_per_address, sec.burst_per_address) {
    // Refuse an open intake before opening anything else.
    if (sec_.credentials.empty() && !sec_.insecure_dev)
        throw error(errc::bad_config,
                    "no --credentials FILE: anyone could post for any school (issue credentials "
                    "with `pingan credentials issue`; --insecure-dev for development only)");
    if (sec_.tls_cert.empty() != sec_.tls_key.empty())
        throw error(errc::bad_config, "--tls-cert and --tls-key go together");
    if (sec_.tls_cert.empty() && !sec_.insecure_dev && !is_loopback(cfg.http))
        throw error(errc::bad_config,
                    "--http " + cfg.http +
                        " is reachable from the network: give --tls-cert and --tls-key, so that "
                        "tokens do not cross the LAN in clear (--insecure-dev for development "
                        "only)");
    if (!sec_.tls_cert.empty()) {
        struct stat st {};
        if (::stat(sec_.tls_key.c_str(), &st) == 0 && (st.st_mode & 0077) != 0)
            throw error(errc::bad_config, "--tls-key " + sec_.tls_key +
                                              ": others may read the private key (chmod 600 " +
                                              sec_.tls_key + ")");
        tls_ = make_server_tls(sec_.tls_cert, sec_.tls_key);
    }
    if (!sec_.credentials.empty())
        credentials_ =
            std::make_unique<credential_table>(sec_.credentials, rt.logger(), *counters_);
    auto reg_path = cfg.registry.empty() ? default_registry_path() : cfg.registry;
    if (reg_path.empty())
        throw error(errc::bad_config, "no registry: give --registry PATH/schools.csv");
    registry_ = load_registry(reg_path);
    clock_ = make_clock(cfg.clock);
    std::optional<outbox_key> seal;
    if (!cfg.outbox_key.empty()) {
        // Backups copy the data folder whole: the key must not travel with it.
        namespace fs = std::filesystem;
        auto k = fs::weakly_canonical(fs::absolute(cfg.outbox_key)).string();
        auto d = fs::weakly_canonical(fs::absolute(cfg.data_dir)).string() + "/";
        if (k.starts_with(d))
            throw error(errc::bad_config, "--outbox-key " + cfg.outbox_key +
                                              " must be outside --data " + cfg.data_dir +
                                              ": a copy of the outbox would carry its key");
        seal = read_outbox_key(cfg.outbox_key, true);
    } else {
        rt.log().warn("no --outbox-key: reports wait in the outbox in clear until the broker "
                      "acknowledges them; development only");
    }
    outbox_ = std::make_unique<outbox>(cfg.data_dir + "/outbox", 64u << 20, std::move(seal));
    publisher_options po;
    po.endpoint = cfg.broker;
    po.resend_timeout = cfg.resend_timeout;
    po.max_in_flight = cfg.max_in_flight;
    if (!cfg.key.empty() || !cfg.server_key.empty()) {
        if (cfg.key.empty() || cfg.server_key.empty())
            throw error(errc::bad_config, "--key and --server-key go together");
        curve_client c;
        c.self = read_secret_key_file(cfg.key);
        c.server_public = read_server_key(cfg.server_key);
        po.curve = std::move(c);
    }
    auto curve = po.curve;
    publisher_ = std::make_unique<publisher>(rt.io(), *outbox_, po, rt.logger());
    ledger_ = std::make_unique<report_ledger>(cfg.data_dir + "/reports");
    photos_ = std::make_unique<photo_store>(cfg.data_dir + "/photos");
    incidents_ = std::make_unique<incident_watch>(rt.io(), sec.query, std::move(curve),
                                                  sec.incidents_every, registry_, rt.logger(),
                                                  [this](const std::string& report, json incident) {
                                                      try {
                                                          ledger_->incident(report, incident);
                                                      } catch (const error& x) {
                                                          rt_.log().error("reports: {}", x.what());
                                                      }
                                                      watch_incidents();
                                                  });
    publisher_->on_result([this](const outbox::entry&, const wire::result& r) {
        if (r.what == wire::outcome::rejected) return;
        try {
            ledger_->stored(r.id, r.offset, r.what == wire::outcome::duplicate);
        } catch (const error& x) {
            // The status shown to a reporter lags; the event itself is stored.
            rt_.log().error("reports: {}", x.what());
        }
        watch_incidents();
    });
}

void service_host::watch_incidents() {
    auto now = clock_->now();
    try {
        // A report's incident is followed for a day; one that opened none, for an hour.
        incidents_->want(ledger_->unacknowledged(format_utc(now - std::chrono::hours(24)),
                                                 format_utc(now - std::chrono::hours(1))));
    } catch (const error& x) {
        rt_.log().error("reports: {}", x.what());
    }
}

void service_host::await_reload() {
    hup_->async_wait([this](const beast::error_code& ec, int) {
        if (ec) return;
        notify_reloading();
        if (credentials_)
            credentials_->reload();
        else
            rt_.log().info("SIGHUP: nothing to reload (no --credentials)");
        notify_ready("reloaded");
        await_reload();
    });
}

void service_host::look_at_credentials() {
    watch_->expires_after(std::chrono::seconds(2));
    watch_->async_wait([this](const beast::error_code& ec) {
        if (ec) return;
        (void)credentials_->current();
        look_at_credentials();
    });
}

void service_host::accept(std::span<const event> events) {
    if (events.empty()) return;
    outbox_->add(events);
    for (const auto& e : events)
        ++accepted_[std::string(e.type())];
    publisher_->notify();
}

std::string service_host::metrics() const {
    prom::writer w;
    std::vector<prom::sample> info{
        {{{"service", cfg_.name}, {"version", std::string(version)}}, 1}};
    w.family("pingan_service_info", "gauge", "The service and its version.", info);
    std::vector<prom::sample> by_type;
    for (const auto& [type, n] : accepted_)
        by_type.push_back({{{"type", type}}, static_cast<double>(n)});
    w.family("pingan_service_events_total", "counter", "Events accepted into the outbox, by type.",
             by_type);
    publisher_metrics(w, "pingan_service", publisher_->health());
    // Every refusal of the intake, by the reason /health names it with.
    w.counter("pingan_service_intake_requests_total", "Requests the intake answered.",
              static_cast<double>(counters_->requests.load()));
    std::vector<prom::sample> refused;
    for (const auto& [reason, n] : counters_->refusals())
        refused.push_back({{{"reason", std::string(reason)}}, static_cast<double>(n)});
    w.family("pingan_service_intake_refused_total", "counter",
             "Requests and connections the intake refused, by reason.", refused);
    return w.str();
}

std::vector<event> service_host::credential_events(std::span<const credential_delta> deltas,
                                                   std::string_view trigger) const {
    std::vector<event> out;
    auto now = clock_->now();
    for (const auto& d : deltas) {
        credential_changed body;
        body.credential = d.now.name;
        body.credential_id = d.now.id;
        body.change = d.change;
        body.scope = d.now.scope_text();
        body.roles = d.now.roles;
        body.trigger = std::string(trigger);
        body.file = credentials_->path();
        auto add = [&](const std::string& school, const std::string& district) {
            event e;
            e.id = new_event_id(now);
            e.school = school;
            e.district = district;
            e.source = source_;
            e.occurred_at = now;
            e.status = pingan::status::actual;
            e.severity = pingan::severity::minor;
            e.scope = pingan::scope::restricted;
            e.body = body;
            out.push_back(std::move(e));
        };
        for (const auto& s : d.schools)
            if (registry_.find(s)) add(s, {});
        for (const auto& code : d.districts)
            if (registry_.find_district(code)) add({}, code);
    }
    return out;
}

void service_host::start(const std::string& more) {
    auto at = parse_endpoint(cfg_.http);
    if (!at) throw error(errc::bad_config, "--http \"" + cfg_.http + "\" is not HOST:PORT");
    auto h = std::make_shared<const handler>(
        [this](const request& r, connection_state& c) { return handle_request(r, c); });
    // A photo is larger than a report: POST /photos has its own body limit.
    auto limits = std::make_shared<const body_limit_fn>(
        [max = sec_.max_photo_bytes](std::string_view target) -> std::optional<body_limit> {
            if (target.rfind("/photos", 0) != 0) return std::nullopt;
            return body_limit{max, "the photo", " (--max-photo-bytes)"};
        });
    listener_ = std::make_shared<listener>(rt_.io(), *at, h, cfg_.max_body, cfg_.max_connections,
                                           rt_.logger(), tls_, counters_, limits);
    listener_->run();
    // SIGHUP (systemctl reload) re-reads the credentials file (it is also
    // re-read when it changes); a service without one has nothing to reload
    // and keeps serving.
    hup_ = std::make_unique<net::signal_set>(rt_.io(), SIGHUP);
    await_reload();
    if (credentials_) {
        // Every change of the credentials taken into force is an event in the
        // log; the file is looked at every two seconds so that a revocation
        // takes force, and is recorded, even when no request comes.
        credentials_->on_change([this](const credential_store& before,
                                       const credential_store& after, std::string_view trigger) {
            auto events = credential_events(credential_changes(before, after), trigger);
            if (events.empty()) return;
            net::post(rt_.io(), [this, events = std::move(events)] {
                try {
                    accept(events);
                    rt_.log().info("credentials: {} credential.changed events in the outbox",
                                   events.size());
                } catch (const error& e) {
                    rt_.log().error("credentials: the change was not recorded: {}", e.detail());
                }
            });
        });
        watch_ = std::make_unique<net::steady_timer>(rt_.io());
        look_at_credentials();
    }
    if (sec_.insecure_dev)
        rt_.log().critical("INSECURE (--insecure-dev): {}{}; for development only",
                           credentials_ ? "credentials are checked"
                                        : "anyone may post for any school",
                           tls_ ? "" : ", plain HTTP");
    publisher_->start();
    watch_incidents();
    incidents_->start();
    rt_.on_stop([this] {
        listener_->stop();
        if (hup_) hup_->cancel();
        if (watch_) watch_->cancel();
        incidents_->stop();
        publisher_->stop();
        rt_.log().info("stopped; {} events wait in the outbox", outbox_->depth());
    });
    auto ep = listener_->local();
    std::cout << "listening http=" << ep.address().to_string() << ":" << ep.port()
              << (tls_ ? " scheme=https" : "") << (more.empty() ? "" : " ") << more << std::endl;
    notify_ready("listening http=" + ep.address().to_string() + ":" + std::to_string(ep.port()));
    rt_.log().info("{} up: http {}:{}, broker {}, outbox {} ({} waiting)", cfg_.name,
                   ep.address().to_string(), ep.port(), cfg_.broker, outbox_->dir(),
                   outbox_->depth());
}

json service_host::health() const {
    auto h = publisher_->health();
    json j = json::object();
    j["service"] = cfg_.name;
    j["outbox_depth"] = h.depth;
    j["in_flight"] = h.in_flight;
    j["dead_letters"] = h.dead_letters;
    j["nacks"] = h.nacks;
    j["broker"] = {
        {"endpoint", h.endpoint},
        {"connected", h.connected},
        {"last_answer_at", h.last_answer_at ? json(format_utc(*h.last_answer_at)) : json(nullptr)},
        {"stored", h.stored},
        {"duplicates", h.duplicates},
        {"rejected", h.rejected},
        {"reconnects", h.reconnects}};
    json intake = json::object();
    for (const auto& [name, value] : counters_->values())
        intake[std::string(name)] = value;
    intake["credentials"] =
        credentials_ ? json(credentials_->current()->all().size()) : json(nullptr);
    intake["tls"] = tls_ != nullptr;
    j["intake"] = std::move(intake);
    if (health_extra_) health_extra_(j);
    return j;
}

response service_host::handle_request(const request& req, connection_state& conn) {
    ++counters_->requests;
    auto peer = conn.peer.to_string();
    // Limits per address come first: they cost nothing to check.
    if (!conn.address_checked) {
        conn.address_checked = true;
        conn.address_slot = conns_by_address_.take(peer, sec_.connections_per_address);
        if (!conn.address_slot) {
            ++counters_->connections_refused_address;
            rt_.log().warn("refused a connection from {}: {} open already", peer,
                           sec_.connections_per_address);
            return refusal(http::status::too_many_requests, "", "rate_limited",
                           "too many open connections from this address (at most " +
                               std::to_string(sec_.connections_per_address) + ")",
                           false);
        }
    }
    if (!conn.address_slot)
        return refusal(http::status::too_many_requests, "", "rate_limited",
                       "too many open connections from this address", false);
    if (!by_address_.allow(peer, std::chrono::steady_clock::now())) {
        ++counters_->rate_limited_address;
        auto r = refusal(http::status::too_many_requests, "", "rate_limited",
                         "too many requests from this address; wait a moment");
        r.set(http::field::retry_after, "1");
        return r;
    }

    auto target = std::string_view(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    auto dump = [](const json& j) {
        return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
    };

    if (target == "/health") {
        if (req.method() != http::verb::get)
            return json_response(
                http::status::method_not_allowed,
                R"({"errors":[{"field":"","code":"bad_command","message":"use GET"}]})");
        return json_response(http::status::ok, dump(health()));
    }
    if (target == "/metrics") {
        if (req.method() != http::verb::get)
            return json_response(
                http::status::method_not_allowed,
                R"({"errors":[{"field":"","code":"bad_command","message":"use GET"}]})");
        response res{http::status::ok, req.version()};
        res.set(http::field::content_type, prom::content_type);
        res.body() = metrics();
        res.prepare_payload();
        return res;
    }
    if (auto page = mobile_asset(target)) {
        if (req.method() != http::verb::get && req.method() != http::verb::head)
            return json_response(
                http::status::method_not_allowed,
                R"({"errors":[{"field":"","code":"bad_command","message":"use GET"}]})");
        return std::move(*page);
    }
    if (target == "/photos") return photo_upload(req, conn);
    if (target.rfind("/photos/", 0) == 0) return photo_fetch(req, target.substr(8));
    if (target.rfind("/mobile/", 0) == 0) {
        if (req.method() != http::verb::get)
            return json_response(
                http::status::method_not_allowed,
                R"({"errors":[{"field":"","code":"bad_command","message":"use GET"}]})");
        return mobile_read(req, target, conn);
    }
    auto route = posts_.find(target);
    if (route == posts_.end())
        return json_response(
            http::status::not_found,
            R"({"errors":[{"field":"","code":"not_found","message":"no such path"}]})");
    if (req.method() != http::verb::post)
        return json_response(
            http::status::method_not_allowed,
            R"({"errors":[{"field":"","code":"bad_command","message":"use POST"}]})");

    // A page in a staff browser may not post here unless it is ours: a
    // browser always sends Origin on a cross-origin POST.
    if (auto o = req.find(http::field::origin); o != req.end()) {
        auto host = req.find(http::field::host);
        if (!origin_allowed(std::string_view(o->value().data(), o->value().size()),
                            host == req.end()
                                ? std::string_view()
                                : std::string_view(host->value().data(), host->value().size()),
                            conn.tls, sec_.allowed_origins)) {
            ++counters_->cross_origin;
            return refusal(http::status::forbidden, "", "forbidden",
                           "cross-origin request refused: Origin " + std::string(o->value()) +
                               " is not this intake's (--allow-origin)");
        }
    }
    {
        auto ct = req.find(http::field::content_type);
        if (ct == req.end() ||
            !is_json_media_type(std::string_view(ct->value().data(), ct->value().size()))) {
            ++counters_->wrong_media_type;
            return refusal(http::status::unsupported_media_type, "", "unsupported_media_type",
                           "the body must be JSON, sent with Content-Type: application/json");
        }
    }
    const credential* who = nullptr;
    std::shared_ptr<const credential_store> store;
    if (credentials_) {
        store = credentials_->current();
        auto a = req.find(http::field::authorization);
        auto r = store->authenticate(a == req.end()
                                         ? std::string_view()
                                         : std::string_view(a->value().data(), a->value().size()),
                                     clock_->now());
        if (r.verdict != auth_verdict::ok) {
            ++counters_->unauthenticated;
            if (r.who)
                rt_.log().warn("refused {} from {}: credential {} ({})", target, peer, r.who->name,
                               auth_verdict_text(r.verdict));
            auto res = refusal(http::status::unauthorized, "", "unauthorized",
                               std::string(auth_verdict_text(r.verdict)));
            res.set(http::field::www_authenticate, "Bearer realm=\"pingan\"");
            return res;
        }
        who = r.who;
        ++counters_->authenticated;
        if (who->has_role("bureau")) {
            ++counters_->out_of_scope;
            return refusal(http::status::forbidden, "", "forbidden",
                           "the credential " + who->name +
                               " is the bureau's (role bureau): it reads photos and reports "
                               "nothing");
        }
        if (conn.credential_id != who->id) {
            conn.credential_slot.reset();
            conn.credential_id = who->id;
            conn.credential_slot =
                conns_by_credential_.take(who->id, sec_.connections_per_credential);
        }
        if (!conn.credential_slot) {
            ++counters_->connections_refused_credential;
            return refusal(http::status::too_many_requests, "", "rate_limited",
                           "too many open connections for the credential " + who->name +
                               " (at most " + std::to_string(sec_.connections_per_credential) + ")",
                           false);
        }
        if (!by_credential_.allow(who->id, std::chrono::steady_clock::now())) {
            ++counters_->rate_limited_credential;
            auto res =
                refusal(http::status::too_many_requests, "", "rate_limited",
                        "too many requests for the credential " + who->name + "; wait a moment");
            res.set(http::field::retry_after, "1");
            return res;
        }
    }

    json body;
    if (auto p = parse_json(req.body(), body))
        return json_response(http::status::bad_request,
                             dump(problems_json({{"", p.code, p.detail}})));
    if (!body.is_object())
        return json_response(
            http::status::bad_request,
            dump(problems_json({{"", errc::malformed_json, "the request must be a JSON object"}})));

    if (who) {
        // A school outside the credential's scope is refused now, not
        // accepted and then refused by the broker.
        if (auto sc = body.find("school"); sc != body.end() && sc->is_string()) {
            const auto& id = sc->get_ref<const std::string&>();
            if (registry_.find(id) && !who->covers(registry_, id)) {
                ++counters_->out_of_scope;
                return refusal(http::status::forbidden, "school", "forbidden",
                               "school: the credential " + who->name + " may report only for " +
                                   who->scope_text());
            }
        }
        const auto& policy = policy_of(target);
        if (!policy.required_roles.empty() &&
            std::none_of(policy.required_roles.begin(), policy.required_roles.end(),
                         [&](const std::string& r) { return who->has_role(r); })) {
            ++counters_->out_of_scope;
            std::string roles;
            for (const auto& r : policy.required_roles)
                roles += (roles.empty() ? "" : ", ") + r;
            return refusal(http::status::forbidden, "", "forbidden",
                           std::string(target) + " needs a credential with one of the roles " +
                               roles);
        }
        auto wrong = check_reporter(body, *who, policy);
        if (!wrong.empty()) {
            ++counters_->out_of_scope;
            problems ps;
            for (auto& [f, m] : wrong)
                ps.push_back({f, errc::forbidden, m});
            return json_response(http::status::forbidden, dump(problems_json(ps)));
        }
    }
    // A resend of a request already accepted (a phone that lost the answer)
    // gets the first answer again, and nothing is accepted twice.
    if (auto id = body.find("id"); id != body.end() && id->is_string()) {
        if (auto before = ledger_->find(id->get<std::string>())) {
            std::string reporter = who ? who->name : std::string();
            auto sc = body.find("school");
            bool same = (*before)["reporter"] == reporter && (*before)["route"] == target &&
                        sc != body.end() && (*before)["school"] == *sc;
            if (!same)
                return refusal(http::status::conflict, "id", "bad_id",
                               "id: another report was accepted with this id; make a new one");
            json again = (*before)["answer"];
            again["duplicate"] = true;
            again["offset"] = (*before)["offset"];
            return json_response(http::status::ok, dump(again));
        }
    }
    auto ctx = context();
    // The authenticated reporter is part of each event's source:
    // "pingan-hazard/kiosk-2/zhang.wei".
    if (who) ctx.source += "/" + who->name;
    auto d = route->second(body, ctx);
    if (!d.errors.empty())
        return json_response(http::status::bad_request, dump(problems_json(d.errors)));
    if (d.events.empty())
        return json_response(
            http::status::internal_server_error,
            R"({"errors":[{"field":"","code":"internal","message":"nothing to publish"}]})");
    if (auto wrong = check_photo_refs(d.events); !wrong.empty())
        return json_response(http::status::bad_request, dump(problems_json(wrong)));
    if (who)
        for (const auto& e : d.events)
            if (!e.school.empty() && !who->covers(registry_, e.school)) {
                ++counters_->out_of_scope;
                return refusal(http::status::forbidden, "school", "forbidden",
                               "school: the credential " + who->name + " may report only for " +
                                   who->scope_text());
            }
    try {
        accept(d.events);
    } catch (const error& x) {
        rt_.log().error("outbox: {}", x.what());
        return json_response(
            http::status::service_unavailable,
            dump(problems_json({{"", x.code(), "the outbox could not be written"}})));
    }
    json ok = json::object();
    ok["id"] = d.events.front().id.str();
    ok["type"] = std::string(d.events.front().type());
    json all = json::array();
    for (const auto& e : d.events)
        all.push_back(json{{"id", e.id.str()}, {"type", std::string(e.type())}});
    ok["events"] = std::move(all);
    for (auto& [k, v] : d.answer.items())
        ok[k] = v;
    try {
        ledger_->record(d.events, std::string(target), who ? who->name : std::string(), ok,
                        clock_->now());
    } catch (const error& x) {
        // The events are in the outbox and will be stored; only the page's
        // view of them (and a resend's short answer) is missing.
        rt_.log().error("reports: {}", x.what());
    }
    rt_.log().info("accepted {} {} for {}{}", d.events.size(), d.events.front().type(),
                   d.events.front().school, who ? " from " + who->name : std::string());
    return json_response(http::status::accepted, dump(ok));
}

const credential* service_host::authenticate(const request& req, std::optional<response>& refused) {
    auto store = credentials_->current();
    auto a = req.find(http::field::authorization);
    auto r =
        store->authenticate(a == req.end() ? std::string_view()
                                           : std::string_view(a->value().data(), a->value().size()),
                            clock_->now());
    if (r.verdict != auth_verdict::ok) {
        ++counters_->unauthenticated;
        refused = refusal(http::status::unauthorized, "", "unauthorized",
                          std::string(auth_verdict_text(r.verdict)));
        refused->set(http::field::www_authenticate, "Bearer realm=\"pingan\"");
        return nullptr;
    }
    ++counters_->authenticated;
    if (!by_credential_.allow(r.who->id, std::chrono::steady_clock::now())) {
        ++counters_->rate_limited_credential;
        refused =
            refusal(http::status::too_many_requests, "", "rate_limited",
                    "too many requests for the credential " + r.who->name + "; wait a moment");
        refused->set(http::field::retry_after, "1");
        return nullptr;
    }
    // The store outlives this request: a reload keeps the old one while it is used.
    held_ = std::move(store);
    return r.who;
}

response service_host::photo_upload(const request& req, connection_state& conn) {
    auto dump = [](const json& j) {
        return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
    };
    if (req.method() != http::verb::post)
        return json_response(
            http::status::method_not_allowed,
            R"({"errors":[{"field":"","code":"bad_command","message":"use POST"}]})");
    if (auto o = req.find(http::field::origin); o != req.end()) {
        auto host = req.find(http::field::host);
        if (!origin_allowed(std::string_view(o->value().data(), o->value().size()),
                            host == req.end()
                                ? std::string_view()
                                : std::string_view(host->value().data(), host->value().size()),
                            conn.tls, sec_.allowed_origins)) {
            ++counters_->cross_origin;
            return refusal(http::status::forbidden, "", "forbidden",
                           "cross-origin request refused: Origin " + std::string(o->value()) +
                               " is not this intake's (--allow-origin)");
        }
    }
    const credential* who = nullptr;
    if (credentials_) {
        std::optional<response> refused;
        who = authenticate(req, refused);
        if (!who) return std::move(*refused);
        if (who->has_role("bureau")) {
            ++counters_->out_of_scope;
            return refusal(http::status::forbidden, "", "forbidden",
                           "the credential " + who->name +
                               " is the bureau's (role bureau): it reads photos and uploads none");
        }
    }
    auto full = std::string_view(req.target().data(), req.target().size());
    auto school = query_param(full, "school");
    if (!school || school->empty())
        return refusal(http::status::bad_request, "school", "missing_field",
                       "school is required: POST /photos?school=ID");
    if (!registry_.find(*school))
        return refusal(http::status::bad_request, "school", "unknown_school",
                       "school: " + *school + " is not in the registry");
    if (who && !who->covers(registry_, *school)) {
        ++counters_->out_of_scope;
        return refusal(http::status::forbidden, "school", "forbidden",
                       "school: the credential " + who->name + " may report only for " +
                           who->scope_text());
    }
    const auto& body = req.body();
    if (body.size() > sec_.max_photo_bytes) {
        ++counters_->body_too_large;
        return refusal(http::status::payload_too_large, "photo", "message_too_large",
                       "the photo is " + std::to_string(body.size()) + " bytes; the limit is " +
                           std::to_string(sec_.max_photo_bytes) + " bytes (--max-photo-bytes)",
                       false);
    }
    image_limits lim;
    lim.keep_metadata = sec_.keep_photo_metadata;
    auto img = clean_image(body, lim);
    if (!img.ok()) {
        ++counters_->wrong_media_type;
        return refusal(http::status::unsupported_media_type, "photo", "unsupported_media_type",
                       "the photo was refused: " + img.error);
    }
    photo_store::stored st;
    try {
        st = photos_->put(img.bytes, media_type(*img.type), *school, who ? who->name : "",
                          clock_->now());
    } catch (const error& x) {
        rt_.log().error("photos: {}", x.what());
        return json_response(
            http::status::service_unavailable,
            dump(problems_json({{"", x.code(), "the photo could not be stored"}})));
    }
    json removed = json::array();
    for (const auto& r : img.removed)
        removed.push_back(r);
    rt_.log().info("photo {} ({} bytes, {}) for {}{}{}", st.hash, st.size, st.type, *school,
                   who ? " from " + who->name : std::string(),
                   st.fresh ? std::string() : std::string(", stored before"));
    json ok = {{"hash", st.hash},    {"size", st.size},        {"type", st.type},
               {"width", img.width}, {"height", img.height},   {"duplicate", !st.fresh},
               {"removed", removed}, {"received", body.size()}};
    return json_response(st.fresh ? http::status::created : http::status::ok, dump(ok));
}

response service_host::photo_fetch(const request& req, std::string_view hash) {
    if (req.method() != http::verb::get && req.method() != http::verb::head)
        return json_response(
            http::status::method_not_allowed,
            R"({"errors":[{"field":"","code":"bad_command","message":"use GET"}]})");
    const credential* who = nullptr;
    if (credentials_) {
        std::optional<response> refused;
        who = authenticate(req, refused);
        if (!who) return std::move(*refused);
    }
    if (!valid_photo_hash(hash))
        return refusal(http::status::bad_request, "hash", "bad_value",
                       "a photo is named by 64 lower-case hex digits: GET /photos/HASH");
    auto p = photos_->get(hash);
    if (!p || (who && std::none_of(p->schools.begin(), p->schools.end(),
                                   [&](const auto& s) { return who->covers(registry_, s); })))
        return refusal(http::status::not_found, "hash", "not_found",
                       "no photo with this hash for the credential's schools");
    // The bytes must still be the photo the events name.
    if (photo_hash(p->bytes) != hash) {
        rt_.log().error("photos: the stored bytes of {} do not hash to it", hash);
        return refusal(http::status::internal_server_error, "hash", "internal",
                       "the stored photo is damaged (its bytes do not match its hash)");
    }
    response res{http::status::ok, req.version()};
    res.set(http::field::server, "pingan");
    res.set(http::field::content_type, p->type);
    // Content-addressed: the bytes under a hash never change.
    res.set(http::field::cache_control, "private, max-age=31536000, immutable");
    res.set(http::field::etag, "\"" + std::string(hash) + "\"");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Content-Security-Policy", "default-src 'none'; sandbox");
    res.body() = std::move(p->bytes);
    res.prepare_payload();
    return res;
}

problems service_host::check_photo_refs(std::span<const event> events) const {
    problems out;
    for (const auto& e : events)
        std::visit(
            [&](const auto& b) {
                if constexpr (requires { b.photo_refs; }) {
                    for (std::size_t i = 0; i < b.photo_refs.size(); ++i) {
                        const auto& r = b.photo_refs[i];
                        auto at = "photo_refs[" + std::to_string(i) + "]: ";
                        auto p =
                            valid_photo_hash(r.hash) ? photos_->get(r.hash, false) : std::nullopt;
                        if (!p || std::find(p->schools.begin(), p->schools.end(), e.school) ==
                                      p->schools.end())
                            out.push_back(
                                {"photo_refs", errc::bad_value,
                                 at + "no photo " + r.hash + " was uploaded for " + e.school +
                                     "; upload it first (POST /photos?school=" + e.school + ")"});
                        else if (p->size != r.size || p->type != r.type)
                            out.push_back({"photo_refs", errc::bad_value,
                                           at + "the photo " + r.hash + " is " +
                                               std::to_string(p->size) + " bytes of " + p->type +
                                               ", not " + std::to_string(r.size) + " bytes of " +
                                               r.type});
                    }
                }
            },
            e.body);
    return out;
}

response service_host::mobile_read(const request& req, std::string_view target,
                                   connection_state& conn) {
    auto dump = [](const json& j) {
        return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
    };
    if (!credentials_)
        return refusal(http::status::unauthorized, "", "unauthorized",
                       "this intake runs without credentials (--insecure-dev): the page needs a "
                       "staff token");
    auto store = credentials_->current();
    auto a = req.find(http::field::authorization);
    auto r =
        store->authenticate(a == req.end() ? std::string_view()
                                           : std::string_view(a->value().data(), a->value().size()),
                            clock_->now());
    if (r.verdict != auth_verdict::ok) {
        ++counters_->unauthenticated;
        auto res = refusal(http::status::unauthorized, "", "unauthorized",
                           std::string(auth_verdict_text(r.verdict)));
        res.set(http::field::www_authenticate, "Bearer realm=\"pingan\"");
        return res;
    }
    const credential& who = *r.who;
    ++counters_->authenticated;
    if (!by_credential_.allow(who.id, std::chrono::steady_clock::now())) {
        ++counters_->rate_limited_credential;
        auto res = refusal(http::status::too_many_requests, "", "rate_limited",
                           "too many requests for the credential " + who.name + "; wait a moment");
        res.set(http::field::retry_after, "1");
        return res;
    }
    (void)conn;
    auto path = target;
    if (path == "/mobile/me") {
        std::vector<std::string> routes;
        for (const auto& [route, fn] : posts_)
            routes.push_back(route);
        auto me = mobile_me(who, registry_, cfg_.name, routes);
        me["max_photo_bytes"] = sec_.max_photo_bytes;
        return json_response(http::status::ok, dump(me));
    }
    if (path == "/mobile/status") {
        auto full = std::string_view(req.target().data(), req.target().size());
        auto school = query_param(full, "school");
        if (!school || school->empty())
            return refusal(http::status::bad_request, "school", "missing_field",
                           "school is required: /mobile/status?school=ID");
        if (!registry_.find(*school))
            return refusal(http::status::bad_request, "school", "unknown_school",
                           "school: not in the registry");
        if (!who.covers(registry_, *school)) {
            ++counters_->out_of_scope;
            return refusal(http::status::forbidden, "school", "forbidden",
                           "school: the credential " + who.name + " may read only " +
                               who.scope_text());
        }
        json out = json::object();
        out["school"] = *school;
        out["open_hazards"] = ledger_->open_hazards(*school);
        out["mine"] = ledger_->by_reporter(
            who.name, [&](const std::string& s) { return who.covers(registry_, s); }, 50);
        return json_response(http::status::ok, dump(out));
    }
    return json_response(
        http::status::not_found,
        R"({"errors":[{"field":"","code":"not_found","message":"no such path"}]})");
}

} // namespace pingan::svc
