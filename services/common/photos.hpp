// The school service's photo store: content-addressed, by BLAKE2b-256.
//
// A photo is stored once under the hash of its (cleaned) bytes, whoever
// uploads it and however often; events name it by that hash, its size and
// its media type (hazard bodies' `photo_refs`), so that the hash in the
// broker's chained record makes the photo tamper-evident: bytes that do not
// hash to the recorded value are not the photo that was reported.
//
// LMDB in <data_dir>/photos (readable with mdb_dump): `blobs` (hash hex →
// bytes) and `meta` (hash hex → JSON: type, size, the schools it was
// uploaded for, who uploaded it first and when). One thread at a time (the
// service's io thread).
#pragma once

#include "common/event.hpp"
#include "common/lmdb.hpp"
#include "common/time.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::svc {

// Returns: the lower-case hex BLAKE2b-256 of `bytes` (libsodium crypto_generichash).
std::string photo_hash(std::string_view bytes);

// True for 64 lower-case hex digits.
bool valid_photo_hash(std::string_view s) noexcept;

// Returns: the photos an event names (hazard reports, rectifications and
// verifications; none for other bodies).
std::vector<photo_ref> photo_refs_of(const event& e);

// Returns: the file name extension for a photo's media type ("jpg", "png",
// else "bin").
std::string_view photo_extension(std::string_view type) noexcept;

class photo_store {
  public:
    // Opens (creating) the store in `dir`; with `read_only`, opens an
    // existing store for reading only, beside the process that writes it
    // (`pingan export --photo-store`).
    // Throws: pingan::error(io_error) naming the directory.
    explicit photo_store(const std::string& dir, bool read_only = false);

    struct stored {
        std::string hash;
        std::uint64_t size = 0;
        std::string type;
        bool fresh = false; // false: the same bytes were stored before
    };
    // Stores `bytes` for `school` (a second upload only adds the school).
    // Durable when it returns.
    // Throws: pingan::error(store_failure).
    stored put(std::string_view bytes, std::string_view type, const std::string& school,
               const std::string& by, timestamp at);

    struct photo {
        std::string bytes;
        std::uint64_t size = 0;
        std::string type;
        std::vector<std::string> schools;
    };
    // Returns: the photo stored under `hash` (without its bytes unless
    // `with_bytes`), or nothing.
    std::optional<photo> get(std::string_view hash, bool with_bytes = true) const;

    // Returns: how many photos are stored.
    std::uint64_t count() const;

  private:
    MDB_dbi blobs_{}, meta_{}; // before env_: its opening fills them in
    lmdb::env env_;
};

} // namespace pingan::svc
