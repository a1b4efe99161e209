// The writer: group commit, escalation timers, durability; it hands what was
// made durable to the feed thread (feed.cpp).
//
// Everything queued while the previous transaction was committing goes into
// the next one, so under load one fsync serves thousands of events. Results go
// back to ingest once the commit is on disk; only then is it handed to the
// feed, so a subscriber never sees an event that could still be lost.
//
// No exception ends the writer: a transaction that fails is answered with a
// nack for each of its events (store_failure when the store failed, internal
// for anything else, such as a processor that throws on one event), the store
// has already rolled the processor back, and the writer goes on with the next
// batch. A batch that failed for a reason other than the store is retried one
// event per transaction, so that one poison event does not take the events
// that happened to share its transaction with it. A failed timer firing is
// retried after a growing delay, while event batches keep committing.
#include "broker/server/writer.hpp"
#include "broker/server/broker_impl.hpp"
#include "broker/server/day_log.hpp"
#include "broker/server/metrics.hpp"

#include "common/wire.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <map>
#include <span>

namespace pingan {
namespace {

// The nack code for a failed transaction (docs/protocol.md).
errc failure_code(std::exception_ptr ep, std::string& message) {
    try {
        std::rethrow_exception(ep);
    } catch (const error& x) {
        message = x.detail();
        return x.code() == errc::store_failure ? errc::store_failure : errc::internal;
    } catch (const std::exception& x) {
        message = x.what();
    } catch (...) {
        message = "unknown exception";
    }
    return errc::internal;
}

} // namespace

// The writer's state between turns of its loop, and one member function per
// job: take a batch and commit it, retry a failed batch one event at a time,
// fire due timers, make committed transactions durable and release their
// acks and their records for the feed.
class writer_loop {
  public:
    writer_loop(broker::impl& b, bool on_ingest) : b_(b), on_ingest_(on_ingest) {}

    void run() {
        while (step(b_.pipe.take(events_, owners_, wake_time(std::chrono::steady_clock::now())))) {
        }
    }

    void add(std::vector<prepared_event>& events, std::vector<owner_tag>& owners) {
        move_append(events, owners, events_, owners_);
    }

    void turn() {
        b_.pipe.take_now(events_, owners_);
        step(true);
    }

    ~writer_loop() {
        spdlog::info("writer stopped at offset {}: {} transactions, {:.1f} events and {:.3f} ms "
                     "each; {} syncs on their own, {:.3f} ms each",
                     b_.st.head(), txns_, txns_ ? double(txn_events_) / double(txns_) : 0.0,
                     txns_ ? 1000 * txn_seconds_ / double(txns_) : 0.0, syncs_,
                     syncs_ ? 1000 * sync_seconds_ / double(syncs_) : 0.0);
    }

    // Until when to wait for a batch: the next due timer (at most 200 ms
    // away), at once when committed acks wait to be made durable.
    std::chrono::steady_clock::time_point
    wake_time(std::chrono::steady_clock::time_point steady) const {
        if (!waiting_.empty() || !waiting_out_.stored.empty()) return steady;
        auto wake = steady + std::chrono::milliseconds(200);
        if (!b_.proc) return wake;
        auto now = b_.clk.now();
        auto due = b_.proc->next_due();
        if (due && *due > now) return steady + std::min<micros>(*due - now, micros{200'000});
        if (due) return std::max(steady, timers_after_);
        return wake;
    }

  private:
    // One turn: commit what was taken (or make the last commit durable when
    // nothing was), fire due timers, answer clock moves. Returns: `open`.
    bool step(bool open) {
        if (events_.empty())
            release(true);
        else
            commit_batch();
        if (b_.proc) fire_due_timers();
        answer_clock_moves();
        if (!open) release(true);
        return open;
    }

    // One transaction for the whole batch; on a failure other than the
    // store's, one transaction per event.
    void commit_batch() {
        out_.results.clear();
        out_.stored.clear();
        done_.clear();
        std::string why;
        auto code = errc::ok;
        try {
            auto t0 = std::chrono::steady_clock::now();
            b_.st.append(events_, b_.clk.now(), b_.proc, out_);
            auto took = std::chrono::steady_clock::now() - t0;
            txn_seconds_ += std::chrono::duration<double>(took).count();
            ++txns_;
            txn_events_ += events_.size();
            broker_metrics::get().committed(events_.size(), took);
            day_log::committed(events_.size(), took);
            for (std::size_t i = 0; i < owners_.size(); ++i)
                done_.push_back({owners_[i], out_.results[i], errc::ok, {}});
            // This commit made the previous one durable; this one waits its turn.
            release(false);
            wait_for_sync();
        } catch (...) {
            code = failure_code(std::current_exception(), why);
            release(true);
        }
        if (code == errc::store_failure || (code != errc::ok && events_.size() == 1)) {
            spdlog::error("writer: {}: {}; {} events refused", errc_name(code), why,
                          events_.size());
            out_.results.clear();
            out_.stored.clear();
            for (auto& o : owners_)
                done_.push_back({o, {}, code, "not stored: " + why});
        } else if (code != errc::ok) {
            spdlog::error("writer: {}: {}; retrying {} events one by one", errc_name(code), why,
                          events_.size());
            retry_one_by_one();
        }
        if (code != errc::ok) {
            // What the one-by-one retries stored, made durable before the replies.
            wait_for_sync();
            release(true);
        }
        events_.clear();
        owners_.clear();
    }

    // The committed batch (done_, out_.stored) waits for the next sync.
    void wait_for_sync() {
        waiting_.swap(done_);
        std::swap(waiting_out_.stored, out_.stored);
        out_.stored.clear();
    }

    // Finds the event(s) that failed a batch: one transaction each.
    void retry_one_by_one() {
        out_.results.clear();
        out_.stored.clear();
        for (std::size_t i = 0; i < events_.size(); ++i) {
            // A failed transaction took the stored bytes with it.
            if (events_[i].value.size() < 32) events_[i] = prepare(std::move(events_[i].ev));
            std::string why;
            auto code = errc::ok;
            try {
                b_.st.append(std::span(&events_[i], 1), b_.clk.now(), b_.proc, out_);
                ++txns_;
                ++txn_events_;
            } catch (...) {
                code = failure_code(std::current_exception(), why);
            }
            if (code == errc::ok) {
                done_.push_back({owners_[i], out_.results.back(), errc::ok, {}});
            } else {
                spdlog::error("writer: event {} refused: {}: {}", events_[i].ev.id.str(),
                              errc_name(code), why);
                done_.push_back({owners_[i], {}, code, "not stored: " + why});
            }
        }
    }

    // Escalation timers that are due, in a transaction of their own. A
    // failure stores nothing; timers wait and retry, later each time up to
    // 5 s, while event batches go on.
    void fire_due_timers() {
        auto t = b_.clk.now();
        auto due = b_.proc->next_due();
        if (!due || *due > t || std::chrono::steady_clock::now() < timers_after_) return;
        out_.results.clear();
        out_.stored.clear();
        try {
            b_.st.fire_timers(t, *b_.proc, out_);
            release(false);
            for (auto& r : out_.stored)
                waiting_out_.stored.push_back(std::move(r));
            out_.stored.clear();
            timer_backoff_ = std::chrono::milliseconds(100);
        } catch (...) {
            std::string why;
            auto code = failure_code(std::current_exception(), why);
            spdlog::error("writer: {}: {} while firing timers; retrying in {} ms", errc_name(code),
                          why, timer_backoff_.count());
            timers_after_ = std::chrono::steady_clock::now() + timer_backoff_;
            timer_backoff_ = std::min(timer_backoff_ * 2, std::chrono::milliseconds(5000));
            out_.stored.clear();
            release(true);
        }
        publish(out_);
    }

    // A CLOCK move is answered once everything it made due is committed and
    // durable (a reply before the sync could show a head that a crash would
    // take back).
    void answer_clock_moves() {
        auto due = b_.proc ? b_.proc->next_due() : std::nullopt;
        if ((!due || *due > b_.clk.now()) && b_.pipe.settle_pending()) {
            release(true);
            b_.pipe.settled();
        }
    }

    // One fsync per transaction (store_options::defer_sync): a commit's acks
    // and feed wait for the next commit, whose sync carries this one's meta
    // page, or for an explicit sync (`sync`) when nothing else is queued. So
    // an ack or a feed message never leaves before its event is on disk, and
    // under load no transaction pays a second fsync.
    void release(bool sync) {
        if (waiting_.empty() && waiting_out_.stored.empty()) return;
        if (sync) {
            try {
                auto t0 = std::chrono::steady_clock::now();
                b_.st.sync();
                sync_seconds_ +=
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                ++syncs_;
            } catch (...) {
                // Committed but not known to be on disk: the publishers resend
                // and are answered "duplicate" once it is.
                std::string why;
                auto code = failure_code(std::current_exception(), why);
                spdlog::error("writer: {}: {}; {} events not acknowledged", errc_name(code), why,
                              waiting_.size());
                for (auto& c : waiting_)
                    c = {c.owner, {}, code, "not known to be stored: " + why};
                waiting_out_.stored.clear();
            }
        }
        if (b_.repl)
            b_.repl->submit(waiting_out_.stored, waiting_); // released once the stream confirms
        else
            b_.pipe.complete(waiting_, !on_ingest_); // ingest takes them in this turn
        publish(waiting_out_);
        waiting_out_.stored.clear();
    }

    // What was made durable: counted, logged, and handed to the feed thread
    // (feed.cpp), which leaves `o.stored` empty.
    void publish(batch_output& o) {
        broker_metrics::get().stored(o);
        day_log::stored(o);
        b_.hand_to_feed(o.stored);
    }

    broker::impl& b_;
    bool on_ingest_;                     // runs in ingest's turns (commit_on_ingest)
    std::vector<prepared_event> events_; // the batch being committed
    std::vector<owner_tag> owners_;      // whom each of events_ answers
    std::vector<completion> done_;
    batch_output out_;
    std::vector<completion> waiting_; // committed, not yet durable
    batch_output waiting_out_;
    // Timer firing after a failure: not before this, and the next delay.
    std::chrono::steady_clock::time_point timers_after_{};
    std::chrono::milliseconds timer_backoff_{100};
    std::uint64_t txns_ = 0, txn_events_ = 0, syncs_ = 0;
    double txn_seconds_ = 0, sync_seconds_ = 0;
};

writer::writer(broker::impl& b)
    : loop_(std::make_unique<writer_loop>(b, b.opts.commit_on_ingest)) {}

writer::~writer() = default;

void writer::run() {
    loop_->run();
}

void writer::add(std::vector<prepared_event>& events, std::vector<owner_tag>& owners) {
    loop_->add(events, owners);
}

void writer::turn() {
    loop_->turn();
}

std::chrono::steady_clock::time_point
writer::wake_time(std::chrono::steady_clock::time_point now) const {
    return loop_->wake_time(now);
}

void broker::impl::run_writer() {
    writer(*this).run();
}

} // namespace pingan
