// The hand-off between the ingest thread and the writer thread.
//
// Ingest pushes admitted events with an opaque owner tag (its request and the
// event's index); the writer takes everything queued at once, so that all
// that arrived during one commit goes into the next transaction (group
// commit), and pushes the results back. The writer waits on a condition
// variable; ingest is woken by the `notify` callback (a ZeroMQ inproc poke),
// because it also waits on sockets.
//
// With broker_options::commit_on_ingest the ingest thread commits itself
// (writer.hpp): it takes what other threads queued without waiting
// (take_now), and a push or a poke from them wakes it through `notify`.
#pragma once

#include "broker/store/store.hpp"

#include <cassert>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <iterator>
#include <mutex>
#include <vector>

namespace pingan {

struct owner_tag {
    void* request;
    std::uint32_t index;
};

// Moves the events and their owners of (events, owners) to the end of (to,
// to_owners), keeping them paired, and leaves the first two empty.
inline void move_append(std::vector<prepared_event>& events, std::vector<owner_tag>& owners,
                        std::vector<prepared_event>& to, std::vector<owner_tag>& to_owners) {
    assert(events.size() == owners.size());
    to.insert(to.end(), std::make_move_iterator(events.begin()),
              std::make_move_iterator(events.end()));
    to_owners.insert(to_owners.end(), owners.begin(), owners.end());
    events.clear();
    owners.clear();
}

struct completion {
    owner_tag owner;
    append_result result;
    errc failure = errc::ok; // store_failure when the transaction failed
    std::string message;
};

class pipeline {
  public:
    explicit pipeline(std::function<void()> notify_ingest) : notify_(std::move(notify_ingest)) {}

    // Ingest commits (commit_on_ingest): a push or a poke also wakes it.
    void wake_ingest_on_push() { wake_on_push_ = true; }

    void push(std::vector<prepared_event>& events, std::vector<owner_tag>& owners) {
        {
            std::lock_guard lock(m_);
            move_append(events, owners, events_, owners_);
        }
        cv_.notify_one();
        if (wake_on_push_) notify_();
    }

    // Ingest committing itself: appends what other threads queued, without
    // waiting, and takes the pokes so far (as take() does).
    void take_now(std::vector<prepared_event>& events, std::vector<owner_tag>& owners) {
        std::lock_guard lock(m_);
        poked_ = false;
        taken_pokes_ = pokes_;
        move_append(events_, owners_, events, owners);
    }

    // Writer: waits until events are queued, close() was called, or `until`.
    // Returns: false once closed and empty.
    template <class Deadline>
    bool take(std::vector<prepared_event>& events, std::vector<owner_tag>& owners, Deadline until) {
        std::unique_lock lock(m_);
        cv_.wait_until(lock, until, [&] { return !events_.empty() || closed_ || poked_; });
        poked_ = false;
        taken_pokes_ = pokes_;
        events.swap(events_);
        owners.swap(owners_);
        return !(closed_ && events.empty());
    }

    // Wakes the writer without work (e.g. the clock was advanced).
    // Returns: a ticket for wait_settled.
    std::uint64_t poke() {
        std::uint64_t ticket;
        {
            std::lock_guard lock(m_);
            poked_ = true;
            ticket = ++pokes_;
        }
        cv_.notify_one();
        if (wake_on_push_) notify_();
        return ticket;
    }

    // Writer: nothing is due by its clock any more, and everything that fell
    // due since the pokes it took is committed.
    void settled() {
        {
            std::lock_guard lock(m_);
            if (settled_ >= taken_pokes_) return;
            settled_ = taken_pokes_;
        }
        settled_cv_.notify_all();
    }

    // Writer: a poke it took waits for settled().
    bool settle_pending() {
        std::lock_guard lock(m_);
        return settled_ < taken_pokes_;
    }

    // Waits until the writer has settled the poke `ticket` (or stopped).
    // Returns: false if `limit` passed first.
    bool wait_settled(std::uint64_t ticket, std::chrono::milliseconds limit) {
        std::unique_lock lock(m_);
        return settled_cv_.wait_for(lock, limit, [&] { return settled_ >= ticket || closed_; });
    }

    void close() {
        {
            std::lock_guard lock(m_);
            closed_ = true;
        }
        cv_.notify_one();
        settled_cv_.notify_all();
    }

    // `wake`: false when ingest itself completes (commit_on_ingest), and
    // takes the completions in the same turn.
    void complete(std::vector<completion>& done, bool wake = true) {
        {
            std::lock_guard lock(m_);
            for (auto& c : done)
                done_.push_back(std::move(c));
        }
        done.clear();
        if (wake) notify_();
    }

    void take_completions(std::vector<completion>& out) {
        std::lock_guard lock(m_);
        out.swap(done_);
    }

  private:
    std::mutex m_;
    std::condition_variable cv_;
    std::vector<prepared_event> events_;
    std::vector<owner_tag> owners_;
    std::vector<completion> done_;
    bool closed_ = false;
    bool poked_ = false;
    std::condition_variable settled_cv_;
    std::uint64_t pokes_ = 0, taken_pokes_ = 0, settled_ = 0;
    std::function<void()> notify_;
    bool wake_on_push_ = false; // set before the threads start
};

} // namespace pingan
