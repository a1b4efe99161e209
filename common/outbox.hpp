// The durable local outbox of a service: events wait here until the broker
// has acknowledged them.
//
// A service writes an event to the outbox (committed and fsynced) before it
// tells anyone "accepted" and before anything is sent. The publisher reads the
// outbox, sends, and settles each entry when the broker answers: stored or
// duplicate removes it; a permanent refusal moves it to the dead-letter table
// with the broker's error, so that a bad event is kept for a person to look at
// but never retried forever. A transient refusal (store_failure…, see
// classify_nack in publisher.hpp) is not settled: the entry stays pending. A restart finds every
// unsettled event and sends it again with the same id, which the broker stores once.
//
// LMDB sub-databases (readable with mdb_dump): `pending` (seq → id ‖ event
// bytes), `dead` (seq → JSON with the error and the event), `meta` (next seq).
// One thread at a time: services use it from their io_context thread.
//
// Sealed at rest: given a key (read_outbox_key), every entry's event bytes and
// every dead letter are encrypted with XChaCha20-Poly1305 (libsodium), the
// entry's table and sequence number as associated data, so that the outbox
// file and its copies hold no minors' data in clear while the broker is away.
// A sealed entry is `id ‖ nonce ‖ ciphertext`, a sealed dead letter `nonce ‖
// ciphertext`. The first open with a key seals what an older outbox holds in
// clear, in one transaction; from then on `meta` marks the outbox sealed (with
// a check value that tells a wrong key at open), and it refuses to open
// without its key.
#pragma once

#include "errc.hpp"
#include "event.hpp"
#include "lmdb.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pingan {

// The key that seals an outbox: 32 random bytes.
using outbox_key = std::array<unsigned char, 32>;

// Reads an outbox key file: 64 hex digits, readable by its owner only. When
// the file does not exist and `create`, writes a new random key there (mode
// 0600) first.
// Throws: pingan::error(bad_config) naming the file if it is not a key, others
// may read it, or it is missing and not to be created; (io_error) if it cannot
// be written.
outbox_key read_outbox_key(const std::string& path, bool create);

class outbox {
  public:
    // An unsettled event: its outbox sequence number, id and binary form.
    struct entry {
        std::uint64_t seq = 0;
        event_id id;
        std::string bytes;
    };

    // How the broker answered for one entry: ok removes it, any other code
    // moves it to the dead-letter table with the message.
    struct settlement {
        std::uint64_t seq = 0;
        errc code = errc::ok;
        std::string message;
    };

    struct dead_letter {
        std::uint64_t seq = 0;
        event_id id;
        errc code = errc::ok;
        std::string message;
        std::string event_json; // the event as JSON, for `pingan publish` after a fix
    };

    // Opens (creating if needed) the outbox in directory `dir`, sealed with
    // `key` if one is given (see above).
    // Throws: pingan::error(io_error) naming the directory or LMDB call that
    // failed; (bad_config) if the outbox is sealed and no key or another key
    // is given.
    explicit outbox(const std::string& dir, std::size_t initial_map_size = 64u << 20,
                    std::optional<outbox_key> key = std::nullopt);
    ~outbox();
    outbox(const outbox&) = delete;
    outbox& operator=(const outbox&) = delete;

    // Writes events durably, in one transaction; returns their sequence numbers.
    // Throws: pingan::error(store_failure) if the commit failed (nothing was written).
    std::uint64_t add(const event& e);
    std::vector<std::uint64_t> add(std::span<const event> events);

    // Returns: up to `max` unsettled entries with seq > `after`, in seq order.
    std::vector<entry> pending(std::uint64_t after, std::size_t max) const;

    // Applies the broker's answers in one transaction. Unknown seqs (already
    // settled) are ignored. Returns: how many entries were settled.
    std::size_t settle(std::span<const settlement> answers);

    std::size_t depth() const;
    std::size_t dead_count() const;
    std::vector<dead_letter> dead_letters(std::size_t max) const;

    const std::string& dir() const noexcept { return dir_; }
    bool sealed() const noexcept { return key_.has_value(); }

  private:
    template <class F> void write(F&& f);
    // Seals what an outbox written in clear holds and marks it sealed.
    void seal_existing(const lmdb::txn& t);
    std::string seal(std::string_view table, std::uint64_t seq, std::string_view plain) const;
    // Throws: pingan::error(store_failure) naming the entry if it does not open.
    std::string open(std::string_view table, std::uint64_t seq, std::string_view sealed) const;

    std::string dir_;
    std::optional<outbox_key> key_;
    MDB_dbi pending_{}, dead_{}, meta_{}; // before env_: its opening fills them in
    lmdb::env env_;
};

} // namespace pingan
