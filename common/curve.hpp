// CURVE keys (ZeroMQ's CurveZMQ: Curve25519 with Z85 text keys).
//
// A key pair file is two lines of text:
//     public: <40 Z85 characters>
//     secret: <40 Z85 characters>
// The broker keeps its own pair and a table of clients' public keys
// (broker/admission/access.hpp); each client keeps its pair and the broker's public key.
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

// Key files and key arguments. `--key FILE` and `--server-key FILE` always
// name files; a literal public key is accepted only with an explicit prefix,
// `--server-key z85:<40 characters>`, so that a path is never read as a key.
inline constexpr std::string_view literal_key_prefix = "z85:";

// Why a file's permissions cannot be trusted: "mode 0644: group and others
// may read it". `forbidden` are the mode bits that must be clear (0077 for a
// secret key, 0002 for a file others must not change).
// Returns: empty if the mode is fine.
// Throws: pingan::error(io_error) if the file cannot be examined.
std::string loose_permissions(const std::string& path, unsigned forbidden);

// Reads a key pair file that holds a secret key. Only its owner may read it
// (mode 0600, as `pingan keygen` writes it) unless `allow_insecure`.
// Throws: pingan::error(io_error) if unreadable; (bad_config) naming the file
// if it has no secret: line, is not a key file, or others may read it.
curve_keypair read_secret_key_file(const std::string& path, bool allow_insecure = false);

// The broker's public key from a `--server-key` argument: the public: line of
// the key file it names, or the key after "z85:".
// Throws: pingan::error(io_error or bad_config) naming the file or the key.
std::string read_server_key(const std::string& arg);

// What a client needs to talk to a CURVE broker.
struct curve_client {
    curve_keypair self;
    std::string server_public; // Z85
};

} // namespace pingan
