// Ed25519 checkpoints (signing.hpp) with libsodium.
#include "common/signing.hpp"

#include <sodium.h>

#include <cstring>
#include <stdexcept>
#include <tuple>

namespace pingan {
namespace {

void init() {
    if (sodium_init() < 0) throw error(errc::internal, "libsodium failed to initialise");
}

bool hex_digits(std::string_view s, std::size_t n) {
    if (s.size() != n) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

template <std::size_t N> std::array<std::uint8_t, N> from_hex(std::string_view s) {
    std::array<std::uint8_t, N> out{};
    for (std::size_t i = 0; i < N; ++i)
        out[i] = static_cast<std::uint8_t>(std::stoi(std::string(s.substr(2 * i, 2)), nullptr, 16));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n'))
        s.remove_prefix(1);
    return s;
}

} // namespace

std::string to_hex(const std::uint8_t* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        s += digits[p[i] >> 4];
        s += digits[p[i] & 15];
    }
    return s;
}

signing_key generate_signing_key() {
    init();
    signing_key k;
    crypto_sign_keypair(k.public_key.data(), k.secret_key.data());
    return k;
}

std::string format_signing_key(const signing_key& k) {
    nlohmann::json j = {{"pingan_signing_key", 1},
                        {"public_key", to_hex(k.public_key.data(), k.public_key.size())},
                        {"secret_key", to_hex(k.secret_key.data(), k.secret_key.size())}};
    return j.dump(1) + "\n";
}

signing_key parse_signing_key(std::string_view text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("pingan_signing_key"))
        throw error(errc::bad_config, "not a signing key file (pingan checkpoint keygen)");
    auto pub = j.value("public_key", std::string()), sec = j.value("secret_key", std::string());
    if (!hex_digits(pub, 64)) throw error(errc::bad_config, "public_key: expected 64 hex digits");
    if (!hex_digits(sec, 128)) throw error(errc::bad_config, "secret_key: expected 128 hex digits");
    signing_key k;
    k.public_key = from_hex<32>(pub);
    k.secret_key = from_hex<64>(sec);
    // An Ed25519 secret key carries its public half: they must agree.
    if (std::memcmp(k.secret_key.data() + 32, k.public_key.data(), 32) != 0)
        throw error(errc::bad_config, "the public key is not the secret key's");
    return k;
}

std::array<std::uint8_t, 32> parse_public_key(std::string_view text) {
    auto t = trim(text);
    if (hex_digits(t, 64)) return from_hex<32>(t);
    if (!t.empty() && t.front() == '{') return parse_signing_key(t).public_key;
    throw error(errc::bad_config, "not a public key: expected 64 hex digits (a .pub file of "
                                  "pingan checkpoint keygen)");
}

std::string checkpoint_message(std::uint64_t offset, std::string_view hash, timestamp time) {
    return "pingan-checkpoint/1 " + std::to_string(offset) + " " + std::string(hash) + " " +
           format_utc(time);
}

checkpoint sign_checkpoint(const signing_key& k, std::uint64_t offset, std::string_view hash,
                           timestamp time) {
    init();
    checkpoint c;
    c.offset = offset;
    c.hash = std::string(hash);
    c.time = time;
    c.public_key = to_hex(k.public_key.data(), k.public_key.size());
    auto m = checkpoint_message(offset, hash, time);
    std::array<std::uint8_t, crypto_sign_BYTES> sig{};
    crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(m.data()),
                         m.size(), k.secret_key.data());
    c.signature = to_hex(sig.data(), sig.size());
    return c;
}

bool signature_valid(const checkpoint& c) {
    init();
    if (!hex_digits(c.public_key, 64) || !hex_digits(c.signature, 128)) return false;
    auto pub = from_hex<32>(c.public_key);
    auto sig = from_hex<64>(c.signature);
    auto m = checkpoint_message(c.offset, c.hash, c.time);
    return crypto_sign_verify_detached(sig.data(), reinterpret_cast<const unsigned char*>(m.data()),
                                       m.size(), pub.data()) == 0;
}

nlohmann::json to_json(const checkpoint& c) {
    return {{"pingan_checkpoint", 1},     {"offset", c.offset},         {"hash", c.hash},
            {"time", format_utc(c.time)}, {"public_key", c.public_key}, {"signature", c.signature}};
}

checkpoint checkpoint_from_json(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("pingan_checkpoint"))
        throw error(errc::bad_value, "not a pingan checkpoint (no \"pingan_checkpoint\" field)");
    checkpoint c;
    auto it = j.find("offset");
    if (it == j.end() || !it->is_number_unsigned())
        throw error(errc::bad_value, "offset: expected a whole number");
    c.offset = it->get<std::uint64_t>();
    for (auto [name, out, digits] :
         {std::tuple{"hash", &c.hash, 64}, std::tuple{"public_key", &c.public_key, 64},
          std::tuple{"signature", &c.signature, 128}}) {
        auto f = j.find(name);
        if (f == j.end() || !f->is_string() || !hex_digits(f->get<std::string>(), digits))
            throw error(errc::bad_value, std::string(name) + ": expected " +
                                             std::to_string(digits) + " lowercase hex digits");
        *out = f->get<std::string>();
    }
    auto t = j.find("time");
    std::optional<timestamp> when;
    if (t != j.end() && t->is_string()) when = parse_utc(t->get<std::string>());
    if (!when) throw error(errc::bad_value, "time: expected an RFC 3339 time");
    c.time = *when;
    return c;
}

} // namespace pingan
