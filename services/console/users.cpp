// The users file: JSON in, JSON out; Argon2id password hashes from libsodium.
#include "users.hpp"

#include "common/private_file.hpp"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pingan::console {

using json = nlohmann::json;

std::optional<user_scope> parse_scope(std::string_view text) {
    auto digits = [](std::string_view s) {
        return !s.empty() &&
               std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (text == "city") return user_scope{user_scope::level::city, ""};
    if (text.starts_with("district:")) {
        auto c = text.substr(9);
        if (c.size() != 6 || !digits(c)) return std::nullopt;
        return user_scope{user_scope::level::district, std::string(c)};
    }
    if (text.starts_with("school:")) {
        auto c = text.substr(7);
        if (c.size() < 7 || c.size() > 32 || !digits(c.substr(0, 6))) return std::nullopt;
        return user_scope{user_scope::level::school, std::string(c)};
    }
    return std::nullopt;
}

std::string scope_text(const user_scope& s) {
    switch (s.at) {
    case user_scope::level::city:
        return "city";
    case user_scope::level::district:
        return "district:" + s.code;
    case user_scope::level::school:
        return "school:" + s.code;
    }
    return "city";
}

bool known_role(std::string_view r) noexcept {
    return std::find(std::begin(known_roles), std::end(known_roles), r) != std::end(known_roles);
}

bool user::has_role(std::string_view r) const noexcept {
    // Each role includes the ones listed before it.
    auto rank = [](std::string_view x) {
        for (std::size_t i = 0; i < std::size(known_roles); ++i)
            if (known_roles[i] == x) return static_cast<int>(i);
        return -1;
    };
    int want = rank(r);
    if (want < 0) return false;
    for (const auto& mine : roles)
        if (rank(mine) >= want) return true;
    return false;
}

bool valid_user_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '@' || c == '-';
    });
}

user_store user_store::parse(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("users") || !j["users"].is_array())
        throw error(errc::bad_config, "the users file must be a JSON object with a \"users\" list");
    user_store s;
    for (const auto& u : j["users"]) {
        auto name = u.value("name", std::string());
        auto where = "user \"" + name + "\": ";
        if (!valid_user_name(name)) throw error(errc::bad_config, where + "name is not valid");
        user x;
        x.name = name;
        x.password_hash = u.value("password_hash", std::string());
        if (x.password_hash.empty())
            throw error(errc::bad_config, where + "password_hash is missing");
        auto sc = parse_scope(u.value("scope", std::string()));
        if (!sc)
            throw error(errc::bad_config, where + "scope must be city, district:CODE or school:ID");
        x.scope = *sc;
        if (!u.contains("roles") || !u["roles"].is_array())
            throw error(errc::bad_config, where + "roles must be a list");
        for (const auto& r : u["roles"]) {
            if (!r.is_string() || !known_role(r.get<std::string>()))
                throw error(errc::bad_config,
                            where + "roles: each is one of viewer, responder, supervisor");
            x.roles.push_back(r.get<std::string>());
        }
        if (u.contains("clearance")) {
            if (!u["clearance"].is_array())
                throw error(errc::bad_config, where + "clearance must be a list");
            for (const auto& c : u["clearance"]) {
                if (c != "minors")
                    throw error(errc::bad_config, where + "clearance: only \"minors\" is known");
                x.minors_clearance = true;
            }
        }
        x.disabled = u.value("disabled", false);
        if (s.find(x.name)) throw error(errc::bad_config, where + "listed twice");
        s.users_.push_back(std::move(x));
    }
    return s;
}

std::string user_store::dump() const {
    json all = json::array();
    for (const auto& u : users_) {
        json j = {{"name", u.name},
                  {"password_hash", u.password_hash},
                  {"scope", scope_text(u.scope)},
                  {"roles", u.roles},
                  {"disabled", u.disabled}};
        if (u.minors_clearance) j["clearance"] = json::array({"minors"});
        all.push_back(std::move(j));
    }
    return json{{"users", all}}.dump(2) + "\n";
}

const user* user_store::find(std::string_view name) const noexcept {
    for (const auto& u : users_)
        if (u.name == name) return &u;
    return nullptr;
}

user* user_store::find(std::string_view name) noexcept {
    for (auto& u : users_)
        if (u.name == name) return &u;
    return nullptr;
}

void user_store::add(user u) {
    if (!valid_user_name(u.name))
        throw error(errc::bad_value,
                    "user name \"" + u.name + "\" is not 1-64 of A-Z a-z 0-9 _ . @ -");
    if (find(u.name)) throw error(errc::bad_value, "user \"" + u.name + "\" exists already");
    users_.push_back(std::move(u));
}

std::string hash_password(std::string_view password) {
    if (password.size() < 8) throw error(errc::bad_value, "the password must be at least 8 bytes");
    if (sodium_init() < 0) throw error(errc::internal, "libsodium could not start");
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        throw error(errc::internal, "crypto_pwhash_str failed (out of memory)");
    return out;
}

bool check_password(std::string_view hash, std::string_view password) noexcept {
    if (sodium_init() < 0) return false;
    std::string h(hash); // NUL-terminated for libsodium
    if (h.size() >= crypto_pwhash_STRBYTES) return false;
    return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

user_store load_users(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(errc::io_error, "cannot read the users file " + path);
    std::ostringstream s;
    s << in.rdbuf();
    try {
        return user_store::parse(s.str());
    } catch (const error& e) {
        throw error(e.code(), path + ": " + e.detail());
    }
}

void save_users(const std::string& path, const user_store& s) {
    write_private_file(path, s.dump());
}

} // namespace pingan::console
