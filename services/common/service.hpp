// What every service's main builds: the runtime, the outbox and publisher,
// the registry and clock, and an HTTP API of JSON intake routes.
//
// A route is a decision function from a request's JSON to events (see
// intake.hpp); the host answers 202 with the event ids once the events are
// committed to the outbox, 400 with one message per wrong field, 404/405 for
// unknown paths and methods, and GET /health with the outbox depth and the
// broker connection, and GET /metrics (Prometheus text) with the events
// accepted by type and the publisher's outbox, acks, nacks and dead letters.
// POST /photos?school=S takes one JPEG or PNG photo (checked, its metadata
// removed: image.hpp) into the photo store (photos.hpp) and answers its hash,
// size and type, which reports then name in `photo_refs`; GET /photos/HASH
// gives it back to a credential covering a school it was uploaded for.
// While a stored report's incident is not acknowledged, the service asks the
// broker's query socket (--query) what became of it (incidents.hpp).
// Before a route runs, the guard (guard.hpp) checks the request's credential,
// origin, media type, scope, reporter and limits.
#pragma once

#include "common/clock.hpp"
#include "common/outbox.hpp"
#include "common/publisher.hpp"
#include "common/runtime.hpp"
#include "guard.hpp"
#include "incidents.hpp"
#include "intake.hpp"
#include "listener.hpp"
#include "photos.hpp"
#include "reports.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace pingan::svc {

using decide_fn = std::function<decision(json& request, const intake_context&)>;

class service_host {
  public:
    // Opens the outbox in <data_dir>/outbox, loads the registry, the
    // credentials and the TLS files, and makes the clock.
    // Throws: pingan::error naming what could not be opened or parsed, or
    // bad_config for an intake without credentials (or TLS, off loopback)
    // unless `sec.insecure_dev`.
    service_host(service_runtime& rt, const service_config& cfg, const intake_options& sec);

    const registry& schools() const noexcept { return registry_; }
    const clock& now() const noexcept { return *clock_; }
    outbox& box() noexcept { return *outbox_; }
    publisher& pub() noexcept { return *publisher_; }
    intake_context context() const { return {registry_, *clock_, source_}; }
    service_runtime& runtime() noexcept { return rt_; }

    // Commits the events to the outbox in one transaction and wakes the publisher.
    // Throws: pingan::error(store_failure) if they could not be written.
    void accept(std::span<const event> events);

    void route_post(const std::string& path, decide_fn fn) { posts_[path] = std::move(fn); }
    // Extra fields for GET /health (the canteen's sensor count, ...).
    void health_extra(std::function<void(json&)> f) { health_extra_ = std::move(f); }

    // Binds the HTTP listener, starts the publisher, and prints the line
    // "listening http=HOST:PORT ..." (with `more` appended) on stdout.
    void start(const std::string& more = {});

    json health() const;
    std::string metrics() const;
    response handle_request(const request& req, connection_state& conn);
    // The ledger of accepted reports and open hazards (reports.hpp).
    const report_ledger& ledger() const noexcept { return *ledger_; }
    // The guard's counters, for /health and /metrics.
    const intake_counters& counters() const noexcept { return *counters_; }

  private:
    // GET /mobile/me and /mobile/status (mobile.hpp), for a valid credential.
    response mobile_read(const request& req, std::string_view target, connection_state& conn);
    // POST /photos?school=S and GET /photos/HASH.
    response photo_upload(const request& req, connection_state& conn);
    response photo_fetch(const request& req, std::string_view hash);
    // The request's credential, or the refusal to answer (401 or 429).
    const credential* authenticate(const request& req, std::optional<response>& refused);
    // One credential.changed event per school and district each change covered.
    std::vector<event> credential_events(std::span<const credential_delta> deltas,
                                         std::string_view trigger) const;
    // Problems with the photos the events name: not uploaded for their school,
    // or not of the size and type given.
    problems check_photo_refs(std::span<const event> events) const;
    // Tells the incident watch which stored reports still wait for an acknowledgement.
    void watch_incidents();
    // SIGHUP, again and again: re-reads the credentials (if any) and tells systemd.
    void await_reload();
    // Every two seconds: takes a changed credentials file into force.
    void look_at_credentials();

    service_runtime& rt_;
    service_config cfg_;
    std::string source_;
    registry registry_;
    std::unique_ptr<clock> clock_;
    std::unique_ptr<outbox> outbox_;
    std::unique_ptr<publisher> publisher_;
    std::unique_ptr<report_ledger> ledger_;
    std::unique_ptr<photo_store> photos_;
    std::unique_ptr<incident_watch> incidents_; // after ledger_: stopped before it closes
    std::shared_ptr<listener> listener_;
    std::map<std::string, decide_fn, std::less<>> posts_;
    std::function<void(json&)> health_extra_;
    intake_options sec_;
    std::shared_ptr<intake_counters> counters_ = std::make_shared<intake_counters>();
    std::unique_ptr<credential_table> credentials_;
    std::shared_ptr<const credential_store> held_; // the store of the last authentication
    std::shared_ptr<ssl::context> tls_;
    std::unique_ptr<net::signal_set> hup_;
    std::unique_ptr<net::steady_timer> watch_; // looks at the credentials file
    rate_limiter by_credential_, by_address_;
    connection_slots conns_by_credential_, conns_by_address_;
    std::map<std::string, std::uint64_t, std::less<>> accepted_; // events by type (io thread)
};

} // namespace pingan::svc
