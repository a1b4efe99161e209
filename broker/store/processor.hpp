// The contract between the broker's writer and whatever derives events from
// the log (the escalation engine).
//
// The writer owns the one LMDB write transaction. For each stored event it calls
// `apply`, and appends the derived events the processor returns in the same
// transaction, right after their cause, so a cause and its effects are
// committed together or not at all. Deadlines are the processor's timers: the
// writer asks `next_due`, and when its clock reaches that time it calls `fire`,
// which returns the timer events (type timer.fired, status System) to append;
// those are then applied like any other event. Everything a processor decides
// is therefore reproducible from the log alone.
//
// State the processor keeps across restarts goes through `state_store`, whose
// writes belong to the current transaction: if the transaction aborts, the
// writer calls `reload` and the processor must drop what it cached.
#pragma once

#include "common/event.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan {

// Key-value tables inside the broker's store (LMDB sub-databases), bound to the
// writer's current transaction. Table names are fixed at open: see
// store_options::processor_tables.
class state_store {
  public:
    virtual ~state_store() = default;
    virtual std::optional<std::string> get(std::string_view table, std::string_view key) = 0;
    virtual void put(std::string_view table, std::string_view key, std::string_view value) = 0;
    virtual bool del(std::string_view table, std::string_view key) = 0;
    // Visits keys >= from in order until `f` returns false.
    virtual void
    scan(std::string_view table, std::string_view from,
         const std::function<bool(std::string_view key, std::string_view value)>& f) = 0;
};

class processor {
  public:
    virtual ~processor() = default;

    // Called once, inside a write transaction, before any event: load state.
    virtual void open(state_store& s) = 0;

    // One event just stored (offset and received_at set). Appends derived events
    // to `derived`: the writer assigns their offsets and received_at (the
    // cause's) and stores them after the cause. Derived events' ids must be a
    // pure function of their cause, so that a replay makes the same bytes.
    virtual void apply(const event& e, state_store& s, std::vector<event>& derived) = 0;

    // Earliest pending deadline, if any.
    virtual std::optional<timestamp> next_due() const = 0;

    // Timers due at or before `now`: appends one timer event per timer to `out`.
    virtual void fire(timestamp now, state_store& s, std::vector<event>& out) = 0;

    // The transaction was aborted: forget cached state and re-read it.
    virtual void reload(state_store& s) { open(s); }
};

} // namespace pingan
