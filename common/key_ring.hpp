// Minors' data at rest: the keys that seal classified values in the store.
//
// Every classified value (privacy.hpp) of an event is encrypted before the
// event is stored and hashed into the chain, so the store, its backups and
// anything copied from them hold ciphertext; the chain covers the ciphertext,
// so `pingan verify` needs no key. Each value is sealed on its own with
// XChaCha20-Poly1305 (libsodium) under the key of a period, with the event's
// id and the field's name as associated data (a sealed value moved to another
// event or field does not open), and stored as the text
//     sealed:1:<key id>:<base64 of nonce || ciphertext>
// Key ids name a month of the broker's clock, "2026-11", and a rotation
// within it, "2026-11.2". Keys live in a directory of their own, never the
// data directory: `<id>.key` (owner-only) holds a key; destroying it (crypto-
// shredding) leaves `<id>.shredded` behind so that the id is never reused.
// A value whose key is gone opens as "[shredded]".
#pragma once

#include "common/event.hpp"
#include "common/time.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pingan {

// What a cleared reader sees in place of a value whose key was destroyed.
inline constexpr std::string_view shredded = "[shredded]";
// ... and in place of a value that does not open under its key (altered).
inline constexpr std::string_view unreadable = "[unreadable]";

// True if `v` is a sealed value.
bool is_sealed(std::string_view v) noexcept;

// The period (month of the broker's clock, UTC) a key made at `t` belongs to: "2026-11".
std::string key_period(timestamp t);

struct key_info {
    std::string id;
    bool shredded = false;
};

class key_ring {
  public:
    // Opens the key directory `dir`, creating it (mode 0700) if missing.
    // Throws: pingan::error(bad_config) if `dir` is not a directory or
    // cannot be made.
    explicit key_ring(std::filesystem::path dir);
    ~key_ring();
    key_ring(const key_ring&) = delete;
    key_ring& operator=(const key_ring&) = delete;

    const std::filesystem::path& dir() const noexcept { return dir_; }

    // Seals every classified value of `e` that is not sealed yet, with the
    // current key of the period of `now` (made if the period has none).
    // Returns: true if anything was sealed.
    // Throws: pingan::error(io_error) if a new key cannot be written.
    bool seal(event& e, timestamp now);

    // Opens every sealed value of `e` in place; a value whose key is gone
    // becomes "[shredded]". Never throws for a missing or wrong key.
    // Returns: true if `e` held a sealed value.
    bool open(event& e);

    // Makes a new current key for the period of `now`. Returns: its id.
    // Throws: pingan::error(io_error) if it cannot be written.
    std::string rotate(timestamp now);

    // Destroys the keys of `period` ("2026-11": each key of the month, or one
    // id such as "2026-11.2"): overwrites each key file, syncs, unlinks it and
    // leaves a tombstone. Returns: the ids destroyed (empty if none).
    // Throws: pingan::error(bad_value) if `period` is not a key id or month;
    // pingan::error(io_error) if a file cannot be overwritten or removed.
    std::vector<std::string> shred(std::string_view period);

    // Every key id the directory knows, live or shredded, in id order.
    std::vector<key_info> list();

  private:
    using key = std::array<std::uint8_t, 32>;
    void reload_if_changed();
    void reload();
    std::string make_key(std::string_view period);
    const key* find(std::string_view id) const;

    std::filesystem::path dir_;
    std::mutex m_;
    std::map<std::string, key, std::less<>> keys_;
    std::map<std::string, bool, std::less<>> shredded_;
    std::int64_t seen_mtime_ = -1;
    std::chrono::steady_clock::time_point loaded_at_{};
};

} // namespace pingan
