// The store contract: the APIs an event store must implement for the broker.
//
// The store is the system of record: an append-only, hash-chained log of
// records (offset -> event bytes) with an id index for deduplication and
// secondary indexes for queries, plus the processor's key-value tables. One
// writer appends (group commit: many events, one transaction, one fsync);
// readers use short snapshots so that a slow audit never holds the file.
//
// lmdb_store.cpp implements it on LMDB and is the only broker file that
// includes <lmdb.h>. Records are readable by LMDB's own tools: the `events`
// database maps an 8-byte big-endian offset to 32 bytes of chain hash followed
// by the event's binary form (common/codec.hpp).
#pragma once

#include "broker/store/processor.hpp"
#include "broker/store/store_faults.hpp"
#include "common/codec.hpp"
#include "common/wire.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pingan {

class key_ring;

using chain_hash = std::array<std::uint8_t, 32>;

struct store_options {
    std::string path;                          // a directory; created if missing
    std::size_t initial_map_size = 1ull << 30; // grows by doubling when full
    std::vector<std::string> processor_tables{"incidents", "timers", "engine"};
    // Audits and tools: no write transaction, ever, and no lock. A writable
    // store takes an exclusive lock on its directory (the file `writer.lock`,
    // holding the writer's pid) for its whole life, so that two writers can
    // never share one log; the kernel releases it when the process ends, even
    // by kill -9.
    bool read_only = false;
    // The broker's writer: a commit syncs the data pages only, and the commit's
    // meta page reaches the disk with the next commit's sync or with sync().
    // A commit is then durable only after one of those (durable_head() tells),
    // and a power loss can undo at most the transactions not yet durable
    // (LMDB's MDB_NOMETASYNC keeps the file consistent). One fsync per
    // transaction instead of two.
    bool defer_sync = false;
    // The writer: seals every classified value (minors' data) with these keys
    // before the record is made (common/key_ring.hpp). Null: stored in clear.
    std::shared_ptr<key_ring> keys{};
    // Tests only: failures to inject (store_faults.hpp). Null in production.
    std::shared_ptr<store_faults> faults{};
};

// An event ready to store: its binary form and the digest the chain hashes
// are made off the writer thread, and the writer fills in the offset and
// received_at in place.
struct prepared_event {
    event ev;
    std::string value;            // 32 bytes for the chain hash, then encode(ev)
    std::size_t received_pos = 0; // where received_at sits in value (after the 32)
    chain_hash digest{};          // record_digest of the bytes, broker fields zero
};
prepared_event prepare(event e);

// What appending one event did.
struct append_result {
    wire::outcome what = wire::outcome::stored;
    std::uint64_t offset = 0;
};

// Everything one transaction stored, in offset order, for the live feed.
struct stored_record {
    std::uint64_t offset;
    std::string value; // as stored: 32 bytes of chain hash, then the event's binary form
    std::string_view bytes() const noexcept { return std::string_view(value).substr(32); }
};

struct batch_output {
    std::vector<append_result> results; // one per input event, in input order
    std::vector<stored_record> stored;  // inputs and derived events that were stored
};

// A replay filter. Offsets are inclusive; 0 for `to` means "the head".
struct scan_filter {
    std::uint64_t from = 1;
    std::uint64_t to = 0;
    std::optional<timestamp> from_time, to_time; // on received_at
    std::string type_prefix;                     // "hazard." or "hazard.reported"
    std::string school;
    std::string district;
};

struct store_stats {
    std::uint64_t head = 0; // last offset, 0 when empty
    std::uint64_t events = 0;
    std::uint64_t file_bytes = 0;
    std::uint64_t map_bytes = 0;
    std::map<std::string, std::uint64_t> by_type;
};

struct verify_report {
    bool ok = true;
    std::uint64_t checked = 0;
    std::uint64_t first_bad = 0; // offset of the first record that does not verify
    std::string problem;
    chain_hash head_hash{}; // the hash of the last record checked
};

// Lowercase hex of a chain hash, as `pingan verify` prints it.
std::string hex(const chain_hash& h);

class store {
  public:
    // Opens or creates the store at o.path.
    // Throws: pingan::error(io_error) if another process holds the directory's
    // writer lock (the message names the directory and the holder's pid), or
    // any other error opening it.
    explicit store(const store_options& o);
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    // Writer only. Appends validated events in one transaction: each
    // new id gets the next offset and received_at = max(now, last received_at);
    // an id already stored is answered with its original offset and not stored
    // again. `p`, if given, sees every stored event and may derive more, which
    // are stored in the same transaction. Returns only after the commit
    // (fsync); with defer_sync, this transaction is durable after the next
    // append, fire_timers or sync, and the previous one is durable now.
    // Throws: pingan::error(store_failure) when the store failed, or whatever
    // the processor threw; either way nothing of the batch was stored and the
    // processor was reloaded from the committed state (processor.hpp).
    void append(std::span<prepared_event> events, timestamp now, processor* p, batch_output& out);
    void append(std::span<event> events, timestamp now, processor* p, batch_output& out);

    // A standby's writer only. Appends, in one transaction, records another
    // broker's writer stored, as they are (their bytes carry their offsets and
    // received_at; the 32 bytes before them in `value` are ignored): the first
    // must be the next offset and each the next after it. The chain, the
    // indexes and `p`'s state are made as that writer made its own: `p` sees
    // every record, and what it derives is dropped (the records it derived
    // follow in the log). So a standby's store verifies, replays and restarts
    // like the log it follows.
    // Throws: pingan::error(bad_config) when a record is not the next offset,
    // does not decode, names another offset, was received before its
    // predecessor, or repeats a stored id; otherwise as append().
    void follow(std::span<const stored_record> records, processor* p, batch_output& out);

    // Writer only. Asks `p` for the timers due at `now` and stores the timer
    // events and what they derive, in one transaction like append().
    void fire_timers(timestamp now, processor& p, batch_output& out);

    // Writer only: opens the processor on the store's tables (start-up).
    void open_processor(processor& p);

    // Writer only, with defer_sync: makes every committed transaction durable.
    // Throws: pingan::error(store_failure) when the sync fails.
    void sync();

    // Any thread. The head is the last durable offset: readers never see a
    // record a power loss could still take back.
    std::uint64_t head() const;
    // Writer only: the last committed offset (durable or not).
    std::uint64_t committed_head() const;
    std::optional<std::string> get(std::uint64_t offset) const;
    // The chain hash stored with the record at `offset` (as the writer made it).
    std::optional<chain_hash> hash_at(std::uint64_t offset) const;
    std::optional<std::uint64_t> find(const event_id& id) const;

    // The inclusive offset range a filter selects, with its times resolved
    // through the time index and `to` = 0 read as the current head.
    std::pair<std::uint64_t, std::uint64_t> range(const scan_filter& f) const;

    // Visits records matching `f` in offset order, at most `max`, reading in
    // short transactions. `visit` returns false to stop early.
    // Returns: the offset to continue from (one past the last record examined).
    std::uint64_t scan(const scan_filter& f, std::size_t max,
                       const std::function<bool(std::uint64_t, std::string_view)>& visit) const;

    store_stats stats() const;

    // Recomputes the hash chain from the first record and compares it with
    // every stored hash and the chain head.
    verify_report verify() const;

    // Reads a processor table (for tools such as `pingan incidents`).
    void scan_table(std::string_view table, std::string_view from,
                    const std::function<bool(std::string_view, std::string_view)>& f) const;

    struct impl;

  private:
    std::unique_ptr<impl> impl_;
};

// The chain (store format 2):
//   hash(n) = BLAKE2b-256(hash(n-1) || offset as u64 big-endian ||
//                         received_at µs as u64 big-endian || digest(record))
//   digest(record) = BLAKE2b-256(the record's bytes with its offset and
//                                received_at fields set to zero)
// hash(0) is 32 zero bytes. The digest is made where the record is encoded
// (the ingest thread), so the writer's serial step hashes 80 bytes instead of
// the whole record; every byte of the record is still covered: the broker's
// two fields by the outer hash, the rest by the digest.
//
// record_digest: `record` must have its offset and received_at fields zero.
chain_hash record_digest(std::string_view record);
chain_hash chain_step(const chain_hash& prev, std::uint64_t offset, std::int64_t received_us,
                      const chain_hash& digest);
// The whole step from a stored record (its broker fields as stored), for
// verification. A record too short to hold received_at is hashed as it is,
// which never matches a hash the writer made.
chain_hash chain_next(const chain_hash& prev, std::uint64_t offset, std::string_view record);

// The store format this build writes and reads (meta "format").
inline constexpr std::string_view store_format = "2";

} // namespace pingan
