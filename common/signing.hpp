// Signed checkpoints: the broker's head (offset, chain hash, broker time)
// signed with Ed25519 (libsodium), so that a party who keeps the checkpoints
// can later prove a store or an export against them without trusting it.
//
// The signature covers the text
//     pingan-checkpoint/1 <offset> <chain hash, 64 hex digits> <time, RFC 3339 UTC>
// and a checkpoint is exchanged as one JSON object (docs/audit.md):
//     {"pingan_checkpoint":1,"offset":N,"hash":"…","time":"…",
//      "public_key":"<64 hex>","signature":"<128 hex>"}
// A signing key file is a JSON object {"pingan_signing_key":1,"public_key":…,
// "secret_key":…} (hex); its public half alone is the 64 hex digits.
// Text in, text out: the callers read and write the files.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pingan {

struct signing_key {
    std::array<std::uint8_t, 32> public_key{};
    std::array<std::uint8_t, 64> secret_key{};
};

// A new Ed25519 key pair.
signing_key generate_signing_key();

// The key file's text, and back.
// Throws: pingan::error(bad_config) naming what is wrong.
std::string format_signing_key(const signing_key& k);
signing_key parse_signing_key(std::string_view text);

// A public key from 64 hex digits (a .pub file), or from a key file's text.
// Throws: pingan::error(bad_config) naming what is wrong.
std::array<std::uint8_t, 32> parse_public_key(std::string_view text);

struct checkpoint {
    std::uint64_t offset = 0;
    std::string hash; // the chain hash at `offset`, 64 lowercase hex digits
    timestamp time{}; // the broker's clock when it signed
    std::string public_key;
    std::string signature;
};

// The text the signature covers.
std::string checkpoint_message(std::uint64_t offset, std::string_view hash, timestamp time);

checkpoint sign_checkpoint(const signing_key& k, std::uint64_t offset, std::string_view hash,
                           timestamp time);

// True if the signature is valid for the checkpoint's own public key.
bool signature_valid(const checkpoint& c);

nlohmann::json to_json(const checkpoint& c);
// Throws: pingan::error(bad_value) naming the field that is missing or malformed.
checkpoint checkpoint_from_json(const nlohmann::json& j);

std::string to_hex(const std::uint8_t* p, std::size_t n);

} // namespace pingan
