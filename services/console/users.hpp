// The console's users: who may log in, with which scope, roles and clearance.
//
// The users file is JSON, written only by `pingan users` and read by
// pingan-console at start and again whenever its modification time changes.
// Passwords are stored as libsodium crypto_pwhash_str strings (Argon2id); the
// file is created with mode 0600. Parsing and the password functions do no
// file I/O; load_users and save_users are the only functions that touch the disk.
#pragma once

#include "common/errc.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::console {

// Where a user may look: the whole city, one district, or one school.
struct user_scope {
    enum class level { city, district, school };
    level at = level::city;
    std::string code; // district code or school id; empty for city
};

// Parses "city", "district:420502" or "school:420502K001".
// Returns: nothing if the text is none of these.
std::optional<user_scope> parse_scope(std::string_view text);
std::string scope_text(const user_scope& s);

// Roles, each including the ones before it: viewer sees; responder also
// acknowledges and adds notes; supervisor also resolves and verifies.
inline constexpr std::string_view known_roles[] = {"viewer", "responder", "supervisor"};
bool known_role(std::string_view r) noexcept;

struct user {
    std::string name;
    std::string password_hash; // crypto_pwhash_str
    user_scope scope;
    std::vector<std::string> roles;
    bool minors_clearance = false; // clearance: minors
    bool disabled = false;

    bool has_role(std::string_view r) const noexcept;
};

class user_store {
  public:
    // Parses the users file's text.
    // Throws: pingan::error(bad_config) naming the user and field that is wrong.
    static user_store parse(std::string_view text);
    std::string dump() const;

    const user* find(std::string_view name) const noexcept;
    user* find(std::string_view name) noexcept;
    // Throws: pingan::error(bad_value) if the name is taken or not a valid name.
    void add(user u);
    const std::vector<user>& users() const noexcept { return users_; }

  private:
    std::vector<user> users_;
};

// A user name: 1-64 bytes of [A-Za-z0-9_.@-].
bool valid_user_name(std::string_view name) noexcept;

// Returns: the crypto_pwhash_str of `password` (Argon2id, interactive limits).
// Throws: pingan::error(bad_value) if the password is shorter than 8 bytes,
// internal if libsodium fails (out of memory).
std::string hash_password(std::string_view password);

// True if `password` matches the stored hash (false for a malformed hash).
bool check_password(std::string_view hash, std::string_view password) noexcept;

// Reads the users file. A missing file is an error naming it.
// Throws: pingan::error(io_error or bad_config).
user_store load_users(const std::string& path);

// Writes the users file atomically (temporary file and rename) with mode 0600.
// Throws: pingan::error(io_error) naming the file.
void save_users(const std::string& path, const user_store& s);

} // namespace pingan::console
