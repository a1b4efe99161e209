// The intake's guard: who may post, from where, how often, and as whom.
//
// Every POST to a school service passes here before its decision function
// runs. The guard answers, in this order: too many connections or requests
// from this address (429); a cross-origin browser request (403); a body that
// is not application/json (415); no, unknown, revoked or expired credential
// (401); too many connections or requests for this credential (429); a school
// outside the credential's scope (403); a body field that claims a reporter
// other than the credential (403, naming the field). Nothing is written to
// the outbox before all of these passed.
//
// The credentials file is re-read when it changes (checked at every request)
// and on SIGHUP, so a revoked token is refused from the next request on. A
// file that no longer parses is logged and the credentials in force stay.
#pragma once

#include "credentials.hpp"
#include "net.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace pingan::svc {

// The intake's security settings, from flags or the service's YAML config.
struct intake_options {
    std::string credentials; // credentials file (pingan credentials issue)
    std::string tls_cert;    // PEM certificate chain; with tls_key, the intake speaks HTTPS
    std::string tls_key;     // PEM private key (mode 0600)
    std::vector<std::string> allowed_origins; // Origins allowed besides the intake's own
    bool insecure_dev = false;       // no credentials, plain HTTP anywhere: development only
    double rate_per_credential = 10; // requests per second, sustained
    double burst_per_credential = 40;
    double rate_per_address = 50;
    double burst_per_address = 200;
    std::size_t connections_per_credential = 16;
    std::size_t connections_per_address = 32;
    std::size_t max_photo_bytes = 4u << 20;          // per uploaded photo (POST /photos)
    bool keep_photo_metadata = false;                // keep Exif (GPS), comments and text chunks
    std::string query = "tcp://127.0.0.1:7403";      // the broker's query socket ("" not to ask)
    std::chrono::milliseconds incidents_every{5000}; // asked while a report is unacknowledged
};

// Registers --credentials, --tls-cert, --tls-key, --allow-origin, --insecure-dev,
// the limits, the photo settings, --query and --incidents-every on `app`.
void add_intake_options(CLI::App& app, intake_options& o);

// What the guard refused and accepted, for /health and a metrics page.
// Plain counters: a renderer reads them with counters().
struct intake_counters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> authenticated{0};
    std::atomic<std::uint64_t> unauthenticated{0};                // 401
    std::atomic<std::uint64_t> out_of_scope{0};                   // 403: school, role or reporter
    std::atomic<std::uint64_t> cross_origin{0};                   // 403: Origin
    std::atomic<std::uint64_t> wrong_media_type{0};               // 415
    std::atomic<std::uint64_t> rate_limited_credential{0};        // 429
    std::atomic<std::uint64_t> rate_limited_address{0};           // 429
    std::atomic<std::uint64_t> connections_refused_credential{0}; // 429
    std::atomic<std::uint64_t> connections_refused_address{0};    // 429
    std::atomic<std::uint64_t> connections_refused_service{0};    // over --max-connections: closed
    std::atomic<std::uint64_t> body_too_large{0};                 // 413 (--max-body, a photo's)
    std::atomic<std::uint64_t> header_too_large{0};               // 431
    std::atomic<std::uint64_t> tls_handshake_failures{0};
    std::atomic<std::uint64_t> credential_reloads{0};
    std::atomic<std::uint64_t> credential_reload_failures{0};

    // Returns: every counter as (name, value), names in snake_case, in a fixed order.
    std::vector<std::pair<std::string_view, std::uint64_t>> values() const;
    // Returns: the refusals alone (a reason each: unauthenticated ... tls_handshake_failures),
    // in a fixed order; /metrics has them as pingan_service_intake_refused_total{reason}.
    std::vector<std::pair<std::string_view, std::uint64_t>> refusals() const;
};

// Token buckets by key (a credential id, an address): `rate` per second,
// up to `burst` at once.
class rate_limiter {
  public:
    rate_limiter(double rate, double burst) : rate_(rate), burst_(burst) {}
    // Returns: true if one more request may pass now (and takes its token).
    bool allow(const std::string& key, std::chrono::steady_clock::time_point now);

  private:
    struct bucket {
        double tokens;
        std::chrono::steady_clock::time_point at;
    };
    std::mutex m_;
    double rate_, burst_;
    std::unordered_map<std::string, bucket> buckets_;
};

// Open connections by key. A slot is given back when its holder drops it.
class connection_slots {
  public:
    // Returns: a slot, or null if `key` already holds `limit`.
    std::shared_ptr<void> take(const std::string& key, std::size_t limit);

  private:
    std::shared_ptr<std::mutex> m_ = std::make_shared<std::mutex>();
    std::shared_ptr<std::unordered_map<std::string, std::size_t>> open_ =
        std::make_shared<std::unordered_map<std::string, std::size_t>>();
};

// The credentials file, re-read when it changes.
class credential_table {
  public:
    // Throws: pingan::error if the file cannot be read or parsed at start.
    credential_table(std::string path, std::shared_ptr<spdlog::logger> log,
                     intake_counters& counters);
    // The credentials in force, after re-reading the file if it changed.
    std::shared_ptr<const credential_store> current();
    // Re-reads the file now (SIGHUP).
    void reload();
    const std::string& path() const noexcept { return path_; }

    // Called after a re-reading that put new credentials in force, with the
    // ones before, the ones now and what caused it ("file changed", "SIGHUP").
    // Runs on the thread that re-read the file, outside the table's lock.
    using change_fn = std::function<void(const credential_store& before,
                                         const credential_store& after, std::string_view trigger)>;
    void on_change(change_fn f) { on_change_ = std::move(f); }

  private:
    void load_if_changed(bool force);
    change_fn on_change_;

    std::string path_;
    std::shared_ptr<spdlog::logger> log_;
    intake_counters& counters_;
    std::mutex m_;
    std::string stamp_; // inode, size, mtime of the file last read
    std::shared_ptr<const credential_store> store_;
};

// The per-connection state the guard keeps.
struct connection_state {
    net::ip::address peer;
    bool tls = false;
    bool address_checked = false;
    std::shared_ptr<void> address_slot;
    std::string credential_id;
    std::shared_ptr<void> credential_slot;
};

// How a route names its reporter: fields that must be the credential's name
// (or one of its roles), fields that must be one of its roles, and the roles
// that may use the route at all (empty: any).
struct route_policy {
    std::vector<std::string> person_fields;
    std::vector<std::string> role_fields;
    std::vector<std::string> required_roles;
};
// The policy of each of the services' routes (docs/services.md).
const route_policy& policy_of(std::string_view path);

// Fields that claim a reporter in any request.
inline constexpr std::string_view person_fields[] = {"found_by", "rectified_by", "verifier",
                                                     "leader",   "planned_by",   "filed_by"};
inline constexpr std::string_view role_fields[] = {"reported_by_role", "leader_role"};

// Checks the body's reporter fields against `c`, filling those the route
// names and the request left out. Returns: the problems (field, message).
std::vector<std::pair<std::string, std::string>>
check_reporter(nlohmann::ordered_json& body, const credential& c, const route_policy& p);

// True if a request with this Origin header may post to an intake reached
// at `host` (the Host header) over `tls`.
bool origin_allowed(std::string_view origin, std::string_view host, bool tls,
                    const std::vector<std::string>& allowed);

// True for application/json (any case, parameters allowed).
bool is_json_media_type(std::string_view content_type);

} // namespace pingan::svc
