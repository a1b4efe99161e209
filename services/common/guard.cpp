// The intake's guard: limits, credentials reload, origin and reporter checks.
#include "guard.hpp"

#include "common/time.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

namespace pingan::svc {

void add_intake_options(CLI::App& app, intake_options& o) {
    app.add_option("--credentials", o.credentials,
                   "credentials file of the staff and devices that may post "
                   "(pingan credentials issue); re-read when it changes and on SIGHUP");
    app.add_option("--tls-cert", o.tls_cert, "PEM certificate (chain) for HTTPS on the intake");
    app.add_option("--tls-key", o.tls_key, "PEM private key for --tls-cert (mode 0600)");
    app.add_option("--allow-origin", o.allowed_origins,
                   "an Origin (https://host:port) whose pages may post, besides the intake's own");
    app.add_flag("--insecure-dev", o.insecure_dev,
                 "development only: accept posts without credentials and plain HTTP on any "
                 "address");
    app.add_option("--rate-per-credential", o.rate_per_credential,
                   "requests per second per credential, sustained")
        ->capture_default_str();
    app.add_option("--burst-per-credential", o.burst_per_credential,
                   "requests per credential at once above the rate")
        ->capture_default_str();
    app.add_option("--rate-per-address", o.rate_per_address,
                   "requests per second per client address, sustained")
        ->capture_default_str();
    app.add_option("--burst-per-address", o.burst_per_address,
                   "requests per client address at once above the rate")
        ->capture_default_str();
    app.add_option("--connections-per-credential", o.connections_per_credential,
                   "open connections per credential at most")
        ->capture_default_str();
    app.add_option("--connections-per-address", o.connections_per_address,
                   "open connections per client address at most")
        ->capture_default_str();
    app.add_option("--max-photo-bytes", o.max_photo_bytes,
                   "bytes per uploaded photo at most (POST /photos; 413 above)")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t(1024), std::size_t(64u << 20)));
    app.add_flag("--keep-photo-metadata", o.keep_photo_metadata,
                 "keep photos' metadata (Exif with GPS position, comments, PNG text); by default "
                 "it is removed before a photo is stored");
    app.add_option("--query", o.query,
                   "the broker's query endpoint, asked which incidents the reports opened and who "
                   "acknowledged them (\"\" not to ask)")
        ->capture_default_str();
    app.add_option_function<std::string>(
        "--incidents-every",
        [&o](const std::string& s) {
            auto d = parse_duration(s);
            if (!d || d->count() <= 0)
                throw CLI::ValidationError("--incidents-every", "not a duration (e.g. 5s)");
            o.incidents_every = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
        },
        "how often to ask while a stored report's incident is not acknowledged (default 5s)");
}

std::vector<std::pair<std::string_view, std::uint64_t>> intake_counters::values() const {
    std::vector<std::pair<std::string_view, std::uint64_t>> v{
        {"requests", requests.load()}, {"authenticated", authenticated.load()}};
    for (const auto& r : refusals())
        v.push_back(r);
    v.emplace_back("credential_reloads", credential_reloads.load());
    v.emplace_back("credential_reload_failures", credential_reload_failures.load());
    return v;
}

std::vector<std::pair<std::string_view, std::uint64_t>> intake_counters::refusals() const {
    return {{"unauthenticated", unauthenticated.load()},
            {"out_of_scope", out_of_scope.load()},
            {"cross_origin", cross_origin.load()},
            {"wrong_media_type", wrong_media_type.load()},
            {"rate_limited_credential", rate_limited_credential.load()},
            {"rate_limited_address", rate_limited_address.load()},
            {"connections_refused_credential", connections_refused_credential.load()},
            {"connections_refused_address", connections_refused_address.load()},
            {"connections_refused_service", connections_refused_service.load()},
            {"body_too_large", body_too_large.load()},
            {"header_too_large", header_too_large.load()},
            {"tls_handshake_failures", tls_handshake_failures.load()}};
}

bool rate_limiter::allow(const std::string& key, std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(m_);
    // Many addresses: forget the full buckets now and then, so that the map stays small.
    if (buckets_.size() > 10000) {
        for (auto it = buckets_.begin(); it != buckets_.end();) {
            double t = it->second.tokens +
                       std::chrono::duration<double>(now - it->second.at).count() * rate_;
            it = t >= burst_ ? buckets_.erase(it) : std::next(it);
        }
    }
    auto [it, fresh] = buckets_.try_emplace(key, bucket{burst_, now});
    auto& b = it->second;
    if (!fresh) {
        b.tokens =
            std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.at).count() * rate_);
        b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
}

std::shared_ptr<void> connection_slots::take(const std::string& key, std::size_t limit) {
    std::lock_guard lock(*m_);
    auto& n = (*open_)[key];
    if (n >= limit) {
        if (n == 0) open_->erase(key);
        return nullptr;
    }
    ++n;
    // A real object, so that a held slot tests true; its end gives the slot back.
    struct slot {
        std::shared_ptr<std::mutex> m;
        std::shared_ptr<std::unordered_map<std::string, std::size_t>> open;
        std::string key;
        slot(std::shared_ptr<std::mutex> mm,
             std::shared_ptr<std::unordered_map<std::string, std::size_t>> o, std::string k)
            : m(std::move(mm)), open(std::move(o)), key(std::move(k)) {}
        slot(const slot&) = delete;
        slot& operator=(const slot&) = delete;
        ~slot() {
            std::lock_guard l(*m);
            if (auto it = open->find(key); it != open->end() && --it->second == 0) open->erase(it);
        }
    };
    return std::make_shared<slot>(m_, open_, key);
}

credential_table::credential_table(std::string path, std::shared_ptr<spdlog::logger> log,
                                   intake_counters& counters)
    : path_(std::move(path)), log_(std::move(log)), counters_(counters) {
    store_ = std::make_shared<const credential_store>(load_credentials(path_));
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0)
        stamp_ = std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                 std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

std::shared_ptr<const credential_store> credential_table::current() {
    load_if_changed(false);
    std::lock_guard lock(m_);
    return store_;
}

void credential_table::reload() {
    load_if_changed(true);
}

void credential_table::load_if_changed(bool force) {
    struct stat st {};
    std::string stamp;
    if (::stat(path_.c_str(), &st) == 0)
        stamp = std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    {
        std::lock_guard lock(m_);
        if (!force && stamp == stamp_) return;
        stamp_ = stamp;
    }
    try {
        auto fresh = std::make_shared<const credential_store>(load_credentials(path_));
        std::shared_ptr<const credential_store> before;
        {
            std::lock_guard lock(m_);
            before = std::exchange(store_, fresh);
        }
        ++counters_.credential_reloads;
        log_->info("credentials {} reloaded: {} credentials", path_, fresh->all().size());
        if (on_change_) on_change_(*before, *fresh, force ? "SIGHUP" : "file changed");
    } catch (const error& e) {
        ++counters_.credential_reload_failures;
        // The credentials in force stay: refusing everyone over a typo would
        // stop every school from reporting.
        log_->error("credentials not reloaded, the ones in force stay: {}", e.detail());
    }
}

const route_policy& policy_of(std::string_view path) {
    // Who reports what: the fields that name the reporter, per route.
    static const std::map<std::string, route_policy, std::less<>> policies = {
        {"/hazard/report", {{"found_by"}, {}, {}}},
        {"/hazard/rectify", {{"rectified_by"}, {}, {}}},
        {"/hazard/verify", {{"verifier"}, {}, {}}},
        // A major hazard's remediation plan is the school leaders' (SAWS Order 16 art. 3).
        {"/hazard/plan", {{"planned_by"}, {}, {"principal", "safety_vp"}}},
        {"/hazard/appeal", {{"filed_by"}, {}, {}}},
        {"/canteen/accompany", {{"leader"}, {"leader_role"}, {}}},
        // Psychological alerts come from the people the three-level warning
        // chain names (DOMAIN §5), never from a shared device.
        {"/psych/alert",
         {{},
          {"reported_by_role"},
          {"psych_teacher", "head_teacher", "principal", "safety_vp", "school_doctor"}}},
    };
    static const route_policy none;
    auto it = policies.find(path);
    return it == policies.end() ? none : it->second;
}

std::vector<std::pair<std::string, std::string>>
check_reporter(nlohmann::ordered_json& body, const credential& c, const route_policy& p) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string roles;
    for (const auto& r : c.roles)
        roles += (roles.empty() ? "" : ", ") + r;
    auto named = [&](const std::vector<std::string>& v, std::string_view f) {
        return std::find(v.begin(), v.end(), f) != v.end();
    };
    // Roles other than the shared-device marker: what a person acts as.
    std::vector<std::string> acting;
    for (const auto& r : c.roles)
        if (r != "device") acting.push_back(r);

    for (auto f : person_fields) {
        auto it = body.find(std::string(f));
        if (it == body.end() || it->is_null()) {
            if (named(p.person_fields, f)) body[std::string(f)] = c.name;
            continue;
        }
        if (!it->is_string()) continue; // the decision reports the type
        const auto& v = it->get_ref<const std::string&>();
        if (v != c.name && !c.has_role(v))
            out.emplace_back(std::string(f), std::string(f) + ": the reporter is the credential " +
                                                 c.name + "; give that name, one of its roles (" +
                                                 roles + "), or leave the field out");
    }
    for (auto f : role_fields) {
        auto it = body.find(std::string(f));
        if (it == body.end() || it->is_null()) {
            if (named(p.role_fields, f)) {
                if (acting.size() == 1)
                    body[std::string(f)] = acting.front();
                else
                    out.emplace_back(std::string(f),
                                     std::string(f) + " is required: the credential " + c.name +
                                         " acts as " +
                                         (acting.empty() ? "no person's role" : "several roles") +
                                         " (" + roles + ")");
            }
            continue;
        }
        if (!it->is_string()) continue;
        const auto& v = it->get_ref<const std::string&>();
        if (v == "device" || !c.has_role(v))
            out.emplace_back(std::string(f), std::string(f) + ": the credential " + c.name +
                                                 " does not act as this role; its roles: " + roles);
    }
    return out;
}

bool origin_allowed(std::string_view origin, std::string_view host, bool tls,
                    const std::vector<std::string>& allowed) {
    if (std::find(allowed.begin(), allowed.end(), origin) != allowed.end()) return true;
    if (host.empty()) return false;
    std::string own = std::string(tls ? "https://" : "http://") + std::string(host);
    // Origins are compared as ASCII, case-insensitively (RFC 6454).
    if (own.size() != origin.size()) return false;
    for (std::size_t i = 0; i < own.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(own[i])) !=
            std::tolower(static_cast<unsigned char>(origin[i])))
            return false;
    return true;
}

bool is_json_media_type(std::string_view ct) {
    auto semi = ct.find(';');
    auto type = ct.substr(0, semi);
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t'))
        type.remove_suffix(1);
    while (!type.empty() && (type.front() == ' ' || type.front() == '\t'))
        type.remove_prefix(1);
    constexpr std::string_view want = "application/json";
    if (type.size() != want.size()) return false;
    for (std::size_t i = 0; i < want.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(type[i])) != want[i]) return false;
    return true;
}

} // namespace pingan::svc
