// Staff and device credentials of the school services' HTTP intake.
//
// A credential names one person or device ("zhang.wei", "kiosk-2"), the
// schools and districts it may report for, and the roles it may act as
// (safety_officer, psych_teacher, ...). It is presented as a bearer token,
// `Authorization: Bearer pgn_<id>.<secret>`: the id finds the entry, the
// 32-byte random secret proves possession. The credentials file (JSON, mode
// 0600, written only by `pingan credentials`) keeps the BLAKE2b-256 hash of
// the secret, never the secret itself, which is shown once when issued. A
// fast hash is enough because the secret is random (256 bits, nothing to
// guess by dictionary), and it keeps a flood of bad tokens cheap to refuse.
//
// Parsing and checking do no I/O; load_credentials and save_credentials are
// the only functions that touch the disk.
#pragma once

#include "common/errc.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"
#include "common/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::svc {

// Roles a credential may act as at a school (DOMAIN.md's people), `device`
// for a kiosk or gateway that several people share, and `bureau` for the
// education bureau's console: it may read photos (GET /photos/HASH) of the
// schools it covers and may post nothing.
inline constexpr std::string_view intake_roles[] = {
    "safety_officer", "safety_vp",     "principal",       "head_teacher",       "teacher",
    "psych_teacher",  "school_doctor", "canteen_manager", "facilities_manager", "transport_manager",
    "drill_leader",   "device",        "bureau"};
bool known_intake_role(std::string_view r) noexcept;

struct credential {
    std::string id;                     // 12 hex digits, the public part of the token
    std::string name;                   // person or device, 1-64 of [A-Za-z0-9_.@-]
    std::vector<std::string> schools;   // registry ids it may report for
    std::vector<std::string> districts; // district codes: every school of the district
    std::vector<std::string> roles;
    std::string secret_hash; // hex BLAKE2b-256 of the token's secret
    timestamp issued_at{};
    std::optional<timestamp> expires_at;
    std::optional<timestamp> revoked_at;

    bool has_role(std::string_view r) const noexcept;
    // True if the school is one of `schools`, or in one of `districts`.
    bool covers(const registry& reg, std::string_view school) const noexcept;
    // "school:420502K001,district:420503"
    std::string scope_text() const;
};

// Why a request's token was or was not accepted.
enum class auth_verdict { ok, missing, malformed, unknown, revoked, expired };
std::string_view auth_verdict_text(auth_verdict v) noexcept;

class credential_store {
  public:
    // Parses the credentials file's text.
    // Throws: pingan::error(bad_config) naming the entry and field that is wrong.
    static credential_store parse(std::string_view text);
    std::string dump() const;

    const credential* find(std::string_view id_or_name) const noexcept;
    credential* find(std::string_view id_or_name) noexcept;
    // Throws: pingan::error(bad_value) if the name is taken or not valid.
    void add(credential c);
    const std::vector<credential>& all() const noexcept { return list_; }

    struct auth_result {
        auth_verdict verdict = auth_verdict::missing;
        const credential* who = nullptr; // set for ok, revoked and expired
    };
    // Checks an Authorization header's value ("Bearer pgn_...") at `now`.
    auth_result authenticate(std::string_view authorization, timestamp now) const;

  private:
    std::vector<credential> list_;
};

// A new credential's token and the hash to store: `c.id` and `c.secret_hash`
// are set. Returns: the token, to be shown once.
// Throws: pingan::error(internal) if libsodium cannot start.
std::string issue_token(credential& c);

// Parses "school:ID" or "district:CODE" into `c`. Returns: false if neither.
bool add_scope(credential& c, std::string_view text);

bool valid_credential_name(std::string_view name) noexcept;

// One credential's change between two readings of the file: its state now
// (before, if removed) and what changed.
struct credential_delta {
    credential now;
    credential_change change = credential_change::changed;
    std::vector<std::string> schools, districts; // covered before or after, each once
};
// Returns: what differs from `before` to `after`, in `after`'s order (removed
// ones last): issued, revoked, removed, or changed scope or roles. Expiry is
// not a change of the file and is not listed.
std::vector<credential_delta> credential_changes(const credential_store& before,
                                                 const credential_store& after);

// Reads the credentials file. Throws: pingan::error(io_error or bad_config).
credential_store load_credentials(const std::string& path);
// Writes it atomically (temporary file and rename) with mode 0600.
// Throws: pingan::error(io_error) naming the file.
void save_credentials(const std::string& path, const credential_store& s);

} // namespace pingan::svc
