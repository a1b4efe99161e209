// Fault injection for the store: the one place where a test tells the store to
// fail.
//
// The store (store.hpp) calls reach() at each fault point of a write
// transaction. A test arms a point with fail_at(point, n): the n-th time the
// store reaches that point from then on, reach() throws as the real failure
// would, inside the real LMDB transaction, which then aborts. Each arming
// fires once. Production code never creates a store_faults, and a store
// without one pays a null pointer check per point.
//
// Fault points:
//   put     a write to any table (events, indexes, the processor's tables):
//           throws lmdb::lmdb_error("mdb_put", EIO), as a failing disk would;
//   commit  the commit of a write transaction: throws
//           lmdb::lmdb_error("mdb_txn_commit", EIO) instead of committing;
//   apply   the processor's apply of one stored event: throws
//           std::runtime_error, as a processor bug would;
//   event_read  a read of one record of the events table by the writer or at
//           open (not by replays): throws lmdb::lmdb_error("mdb_get", EIO).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace pingan {

class store_faults {
  public:
    enum class point : std::uint8_t { put, commit, apply, event_read };

    // The n-th time (n >= 1, counted from this call) the store reaches `p`, it fails.
    void fail_at(point p, std::uint64_t n) noexcept {
        auto& s = slot(p);
        s.reached_since_armed = 0;
        s.fail_on = n;
    }

    // How many times the store reached `p` since the store_faults was made.
    std::uint64_t reached(point p) const noexcept { return slot(p).total.load(); }

    // Called by the store at each fault point.
    // Throws: the failure armed for this point, when it is due.
    void reach(point p);

  private:
    struct counters {
        std::atomic<std::uint64_t> fail_on{0}; // 0: not armed
        std::atomic<std::uint64_t> reached_since_armed{0};
        std::atomic<std::uint64_t> total{0};
    };
    counters& slot(point p) noexcept { return slots_[static_cast<std::size_t>(p)]; }
    const counters& slot(point p) const noexcept { return slots_[static_cast<std::size_t>(p)]; }

    std::array<counters, 4> slots_;
};

} // namespace pingan
