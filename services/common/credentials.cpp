// The credentials file: JSON in, JSON out; tokens made and checked with libsodium.
#include "credentials.hpp"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pingan::svc {
namespace {

using json = nlohmann::json;

constexpr std::string_view token_prefix = "pgn_";
constexpr std::size_t id_hex = 12;     // 6 random bytes
constexpr std::size_t secret_hex = 64; // 32 random bytes

void need_sodium() {
    if (sodium_init() < 0) throw error(errc::internal, "libsodium could not start");
}

std::string to_hex(const unsigned char* p, std::size_t n) {
    std::string out(n * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), p, n);
    out.pop_back();
    return out;
}

std::string hash_secret(std::string_view secret) {
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(secret.data()),
                       secret.size(), nullptr, 0);
    return to_hex(h, sizeof h);
}

bool is_hex(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool valid_school_id(std::string_view c) noexcept {
    return c.size() >= 7 && c.size() <= 32 &&
           std::all_of(c.begin(), c.begin() + 6, [](char x) { return x >= '0' && x <= '9'; }) &&
           std::all_of(c.begin(), c.end(), [](char x) {
               return (x >= '0' && x <= '9') || (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z');
           });
}

bool valid_district(std::string_view c) noexcept {
    return c.size() == 6 &&
           std::all_of(c.begin(), c.end(), [](char x) { return x >= '0' && x <= '9'; });
}

} // namespace

bool known_intake_role(std::string_view r) noexcept {
    return std::find(std::begin(intake_roles), std::end(intake_roles), r) != std::end(intake_roles);
}

bool credential::has_role(std::string_view r) const noexcept {
    return std::find(roles.begin(), roles.end(), r) != roles.end();
}

bool credential::covers(const registry& reg, std::string_view school) const noexcept {
    if (std::find(schools.begin(), schools.end(), school) != schools.end()) return true;
    if (districts.empty()) return false;
    const auto* s = reg.find(school);
    return s && std::find(districts.begin(), districts.end(), s->district_code) != districts.end();
}

std::string credential::scope_text() const {
    std::string out;
    for (const auto& s : schools)
        out += (out.empty() ? "" : ",") + std::string("school:") + s;
    for (const auto& d : districts)
        out += (out.empty() ? "" : ",") + std::string("district:") + d;
    return out;
}

std::string_view auth_verdict_text(auth_verdict v) noexcept {
    switch (v) {
    case auth_verdict::ok:
        return "ok";
    case auth_verdict::missing:
        return "no credential: send Authorization: Bearer <token> (pingan credentials issue)";
    case auth_verdict::malformed:
        return "the Authorization header is not \"Bearer pgn_<id>.<secret>\"";
    case auth_verdict::unknown:
        return "unknown credential";
    case auth_verdict::revoked:
        return "this credential has been revoked";
    case auth_verdict::expired:
        return "this credential has expired";
    }
    return "unknown credential";
}

bool valid_credential_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '@' || c == '-';
    });
}

bool add_scope(credential& c, std::string_view text) {
    if (text.starts_with("school:") && valid_school_id(text.substr(7))) {
        c.schools.emplace_back(text.substr(7));
        return true;
    }
    if (text.starts_with("district:") && valid_district(text.substr(9))) {
        c.districts.emplace_back(text.substr(9));
        return true;
    }
    return false;
}

std::string issue_token(credential& c) {
    need_sodium();
    unsigned char id[id_hex / 2];
    unsigned char secret[secret_hex / 2];
    randombytes_buf(id, sizeof id);
    randombytes_buf(secret, sizeof secret);
    c.id = to_hex(id, sizeof id);
    auto s = to_hex(secret, sizeof secret);
    c.secret_hash = hash_secret(s);
    sodium_memzero(secret, sizeof secret);
    return std::string(token_prefix) + c.id + "." + s;
}

credential_store::auth_result credential_store::authenticate(std::string_view h,
                                                             timestamp now) const {
    auto trim = [](std::string_view& s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
            s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
            s.remove_suffix(1);
    };
    trim(h);
    if (h.empty()) return {auth_verdict::missing, nullptr};
    // The scheme is case-insensitive (RFC 7235).
    if (h.size() < 7 || sodium_init() < 0) return {auth_verdict::malformed, nullptr};
    std::string scheme(h.substr(0, 7));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme != "bearer ") return {auth_verdict::malformed, nullptr};
    auto token = h.substr(7);
    trim(token);
    if (!token.starts_with(token_prefix)) return {auth_verdict::malformed, nullptr};
    token.remove_prefix(token_prefix.size());
    auto dot = token.find('.');
    if (dot != id_hex || token.size() != id_hex + 1 + secret_hex)
        return {auth_verdict::malformed, nullptr};
    auto id = token.substr(0, id_hex);
    auto secret = token.substr(id_hex + 1);
    if (!is_hex(id) || !is_hex(secret)) return {auth_verdict::malformed, nullptr};

    const credential* c = nullptr;
    for (const auto& x : list_)
        if (x.id == id) c = &x;
    // Hash even when the id is unknown, so that timing does not tell ids apart.
    auto h2 = hash_secret(secret);
    if (!c || c->secret_hash.size() != h2.size() ||
        sodium_memcmp(c->secret_hash.data(), h2.data(), h2.size()) != 0)
        return {auth_verdict::unknown, nullptr};
    if (c->revoked_at && *c->revoked_at <= now) return {auth_verdict::revoked, c};
    if (c->expires_at && *c->expires_at <= now) return {auth_verdict::expired, c};
    return {auth_verdict::ok, c};
}

credential_store credential_store::parse(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("credentials") ||
        !j["credentials"].is_array())
        throw error(errc::bad_config,
                    "the credentials file must be a JSON object with a \"credentials\" list");
    credential_store s;
    for (const auto& u : j["credentials"]) {
        if (!u.is_object()) throw error(errc::bad_config, "each credential must be an object");
        auto str = [&](const char* k) {
            auto it = u.find(k);
            return it != u.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        credential c;
        c.name = str("name");
        auto where = "credential \"" + c.name + "\": ";
        if (!valid_credential_name(c.name))
            throw error(errc::bad_config, where + "name is not valid");
        c.id = str("id");
        if (c.id.size() != id_hex || !is_hex(c.id))
            throw error(errc::bad_config, where + "id must be 12 lowercase hex digits");
        c.secret_hash = str("secret_hash");
        if (c.secret_hash.size() != 64 || !is_hex(c.secret_hash))
            throw error(errc::bad_config, where + "secret_hash must be 64 lowercase hex digits");
        if (!u.contains("scope") || !u["scope"].is_array() || u["scope"].empty())
            throw error(errc::bad_config, where + "scope must be a non-empty list");
        for (const auto& sc : u["scope"])
            if (!sc.is_string() || !add_scope(c, sc.get<std::string>()))
                throw error(errc::bad_config, where + "scope: each is school:ID or district:CODE");
        if (!u.contains("roles") || !u["roles"].is_array() || u["roles"].empty())
            throw error(errc::bad_config, where + "roles must be a non-empty list");
        for (const auto& r : u["roles"]) {
            if (!r.is_string() || !known_intake_role(r.get<std::string>()))
                throw error(errc::bad_config, where + "roles: unknown role");
            c.roles.push_back(r.get<std::string>());
        }
        auto time_of = [&](const char* k, bool required) -> std::optional<timestamp> {
            auto it = u.find(k);
            if (it == u.end() || it->is_null()) {
                if (required) throw error(errc::bad_config, where + k + " is missing");
                return std::nullopt;
            }
            auto t = it->is_string() ? parse_utc(it->get<std::string>()) : std::nullopt;
            if (!t) throw error(errc::bad_config, where + k + " is not an RFC 3339 time");
            return t;
        };
        c.issued_at = *time_of("issued_at", true);
        c.expires_at = time_of("expires_at", false);
        c.revoked_at = time_of("revoked_at", false);
        if (s.find(c.name) || s.find(c.id)) throw error(errc::bad_config, where + "listed twice");
        s.list_.push_back(std::move(c));
    }
    return s;
}

std::string credential_store::dump() const {
    json all = json::array();
    for (const auto& c : list_) {
        json scope = json::array();
        for (const auto& x : c.schools)
            scope.push_back("school:" + x);
        for (const auto& x : c.districts)
            scope.push_back("district:" + x);
        json j = {{"id", c.id},
                  {"name", c.name},
                  {"scope", scope},
                  {"roles", c.roles},
                  {"secret_hash", c.secret_hash},
                  {"issued_at", format_utc(c.issued_at)}};
        if (c.expires_at) j["expires_at"] = format_utc(*c.expires_at);
        if (c.revoked_at) j["revoked_at"] = format_utc(*c.revoked_at);
        all.push_back(std::move(j));
    }
    return json{{"credentials", all}}.dump(2) + "\n";
}

const credential* credential_store::find(std::string_view k) const noexcept {
    for (const auto& c : list_)
        if (c.name == k || c.id == k) return &c;
    return nullptr;
}

credential* credential_store::find(std::string_view k) noexcept {
    for (auto& c : list_)
        if (c.name == k || c.id == k) return &c;
    return nullptr;
}

void credential_store::add(credential c) {
    if (!valid_credential_name(c.name))
        throw error(errc::bad_value,
                    "credential name \"" + c.name + "\" is not 1-64 of A-Z a-z 0-9 _ . @ -");
    if (find(c.name)) throw error(errc::bad_value, "credential \"" + c.name + "\" exists already");
    list_.push_back(std::move(c));
}

credential_store load_credentials(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(errc::io_error, "cannot read the credentials file " + path);
    std::ostringstream s;
    s << in.rdbuf();
    try {
        return credential_store::parse(s.str());
    } catch (const error& e) {
        throw error(e.code(), path + ": " + e.detail());
    }
}

void save_credentials(const std::string& path, const credential_store& s) {
    auto tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw error(errc::io_error, "cannot write " + tmp + ": " + std::strerror(errno));
    ::fchmod(fd, 0600);
    auto text = s.dump();
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            throw error(errc::io_error, "cannot write " + tmp + ": " + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0)
        throw error(errc::io_error, "cannot write " + tmp + ": " + std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw error(errc::io_error, "cannot replace " + path + ": " + std::strerror(errno));
}

std::vector<credential_delta> credential_changes(const credential_store& before,
                                                 const credential_store& after) {
    auto sorted = [](std::vector<std::string> v) {
        std::sort(v.begin(), v.end());
        return v;
    };
    auto both = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
        std::vector<std::string> v = a;
        v.insert(v.end(), b.begin(), b.end());
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        return v;
    };
    std::vector<credential_delta> out;
    for (const auto& c : after.all()) {
        const auto* was = before.find(c.id);
        credential_delta d{c, credential_change::changed, {}, {}};
        if (!was) {
            d.change = c.revoked_at ? credential_change::revoked : credential_change::issued;
            d.schools = both(c.schools, {});
            d.districts = both(c.districts, {});
        } else {
            if (c.revoked_at && !was->revoked_at)
                d.change = credential_change::revoked;
            else if (sorted(c.schools) == sorted(was->schools) &&
                     sorted(c.districts) == sorted(was->districts) &&
                     sorted(c.roles) == sorted(was->roles))
                continue;
            d.schools = both(c.schools, was->schools);
            d.districts = both(c.districts, was->districts);
        }
        out.push_back(std::move(d));
    }
    for (const auto& c : before.all())
        if (!after.find(c.id))
            out.push_back(
                {c, credential_change::removed, both(c.schools, {}), both(c.districts, {})});
    return out;
}

} // namespace pingan::svc
