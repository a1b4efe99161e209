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
#pragma once

#include "errc.hpp"
#include "event.hpp"
#include "lmdb.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pingan {

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

    // Opens (creating if needed) the outbox in directory `dir`.
    // Throws: pingan::error(io_error) naming the directory or LMDB call that failed.
    explicit outbox(const std::string& dir, std::size_t initial_map_size = 64u << 20);

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

  private:
    template <class F> void write(F&& f);

    std::string dir_;
    MDB_dbi pending_{}, dead_{}, meta_{}; // before env_: its opening fills them in
    lmdb::env env_;
};

} // namespace pingan
