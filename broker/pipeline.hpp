// The hand-off between the ingest thread and the writer thread.
//
// Ingest pushes admitted events with an opaque owner tag (its request and the
// event's index); the writer takes everything queued at once, so that all
// that arrived during one commit goes into the next transaction (group
// commit), and pushes the results back. The writer waits on a condition
// variable; ingest is woken by the `notify` callback (a ZeroMQ inproc poke),
// because it also waits on sockets.
#pragma once

#include "broker/store.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

namespace pingan {

struct owner_tag {
    void* request;
    std::uint32_t index;
};

struct completion {
    owner_tag owner;
    append_result result;
    errc failure = errc::ok; // store_failure when the transaction failed
    std::string message;
};

class pipeline {
  public:
    explicit pipeline(std::function<void()> notify_ingest) : notify_(std::move(notify_ingest)) {}

    void push(std::vector<prepared_event>& events, std::vector<owner_tag>& owners) {
        {
            std::lock_guard lock(m_);
            for (std::size_t i = 0; i < events.size(); ++i) {
                events_.push_back(std::move(events[i]));
                owners_.push_back(owners[i]);
            }
        }
        events.clear();
        owners.clear();
        cv_.notify_one();
    }

    // Writer: waits until events are queued, close() was called, or `until`.
    // Returns: false once closed and empty.
    template <class Deadline>
    bool take(std::vector<prepared_event>& events, std::vector<owner_tag>& owners, Deadline until) {
        std::unique_lock lock(m_);
        cv_.wait_until(lock, until, [&] { return !events_.empty() || closed_ || poked_; });
        poked_ = false;
        events.swap(events_);
        owners.swap(owners_);
        return !(closed_ && events.empty());
    }

    // Wakes the writer without work (e.g. the clock was advanced).
    void poke() {
        {
            std::lock_guard lock(m_);
            poked_ = true;
        }
        cv_.notify_one();
    }

    void close() {
        {
            std::lock_guard lock(m_);
            closed_ = true;
        }
        cv_.notify_one();
    }

    void complete(std::vector<completion>& done) {
        {
            std::lock_guard lock(m_);
            for (auto& c : done)
                done_.push_back(std::move(c));
        }
        done.clear();
        notify_();
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
    std::function<void()> notify_;
};

} // namespace pingan
