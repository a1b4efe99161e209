// CURVE keys (ZeroMQ's CurveZMQ: Curve25519 with Z85 text keys).
//
// A key pair file is two lines of text:
//     public: <40 Z85 characters>
//     secret: <40 Z85 characters>
// The broker keeps its own pair and a table of clients' public keys
// (broker/access.hpp); each client keeps its pair and the broker's public key.
#pragma once

#include <string>
#include <string_view>

namespace pingan {

struct curve_keypair {
    std::string public_key; // Z85, 40 characters
    std::string secret_key; // Z85, 40 characters; empty when only the public key is known
};

// A new key pair from the operating system's randomness.
// Throws: pingan::error(internal) if this libzmq was built without CURVE.
curve_keypair curve_generate();

// Parses a key pair file's text; a file with only a public line is a public key.
// Throws: pingan::error(bad_config) naming the line that is wrong.
curve_keypair parse_keypair(std::string_view text);

// The text of a key pair file.
std::string format_keypair(const curve_keypair& k);

// True if `key` is 40 characters of Z85 that decode to 32 bytes.
bool valid_z85_key(std::string_view key);

// The Z85 text of a 32-byte binary key.
std::string z85_of(std::string_view binary32);

// What a client needs to talk to a CURVE broker.
struct curve_client {
    curve_keypair self;
    std::string server_public; // Z85
};

} // namespace pingan
