// Fetching schools' photos for the bureau side.
//
// Photos are uploaded to the school services' photo stores; events name them
// by BLAKE2b-256 hash, size and type. The console copies each photo an event
// names into its own store (replicator.hpp), and fetches one a page asks for
// that it does not hold yet: GET /photos/HASH from each school service it was
// given (--photo-source), with the bureau's credential (role bureau, scoped to
// the district or city), taking the first answer whose bytes hash to the name,
// so a service that answers with other bytes is never believed. Content
// addressing makes the source irrelevant: any copy that hashes right is the
// photo.
//
// Blocking: callers run fetches on worker threads, never on the io thread;
// one exchange with a source (connect, handshake, request, answer) takes at
// most `timeout`.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace pingan::console {

struct photo_sources {
    std::vector<std::string> urls; // http://host:port or https://host:port of school services
    std::string token;             // the bureau's credential, "pgn_..."
    std::string ca_file;           // PEM CA for https sources; empty: the system's
    std::chrono::seconds timeout{10};
    bool empty() const noexcept { return urls.empty(); }
};

struct fetched_photo {
    std::string bytes;
    std::string type;
    std::string error; // set if no source gave the photo: what each said
    bool ok() const noexcept { return error.empty(); }
};

// Fetches the photo named `hash` from the first source that has it.
fetched_photo fetch_photo(const photo_sources& from, const std::string& hash);

// Reads a token file (the first line, trimmed).
// Throws: pingan::error(io_error or bad_config) naming the file.
std::string read_token_file(const std::string& path);

} // namespace pingan::console
