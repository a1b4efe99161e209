// The writer thread: group commit, escalation timers and the live feed.
//
// Everything queued while the previous transaction was committing goes into
// the next one, so under load one fsync serves thousands of events. Results go
// back to ingest right after the commit; only then is the feed published, so a
// subscriber never sees an event that could still be lost.
//
// No exception ends the writer: a transaction that fails is answered with a
// nack for each of its events (store_failure when the store failed, internal
// for anything else, such as a processor that throws on one event), the store
// has already rolled the processor back, and the writer goes on with the next
// batch. A batch that failed for a reason other than the store is retried one
// event per transaction, so that one poison event does not take the events
// that happened to share its transaction with it. A failed timer firing is
// retried after a growing delay, while event batches keep committing.
#include "broker/admission/feed_subscriptions.hpp"
#include "broker/server/broker_impl.hpp"
#include "broker/server/day_log.hpp"
#include "broker/server/metrics.hpp"

#include "common/privacy.hpp"
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

// The writer's state between turns of its loop, and one member function per
// job: take a batch and commit it, retry a failed batch one event at a time,
// fire due timers, make committed transactions durable and release their
// acks, publish the feed, follow the feed's subscriptions.
class writer_loop {
  public:
    explicit writer_loop(broker::impl& b) : b_(b) {}

    void run() {
        while (true) {
            if (b_.feed_rebind.exchange(false)) rebind_feed();
            bool open = b_.pipe.take(events_, owners_, wake_time());
            if (events_.empty())
                release(true);
            else
                commit_batch();
            if (b_.proc) fire_due_timers();
            answer_clock_moves();
            if (!open) {
                release(true);
                break;
            }
        }
        spdlog::info("writer stopped at offset {}: {} transactions, {:.1f} events and {:.3f} ms "
                     "each; {} syncs on their own, {:.3f} ms each",
                     b_.st.head(), txns_, txns_ ? double(txn_events_) / double(txns_) : 0.0,
                     txns_ ? 1000 * txn_seconds_ / double(txns_) : 0.0, syncs_,
                     syncs_ ? 1000 * sync_seconds_ / double(syncs_) : 0.0);
    }

  private:
    // Until when to wait for a batch: the next due timer (at most 200 ms
    // away), at once when committed acks wait to be made durable.
    std::chrono::steady_clock::time_point wake_time() const {
        auto steady = std::chrono::steady_clock::now();
        if (!waiting_.empty() || !waiting_out_.stored.empty()) return steady;
        auto wake = steady + std::chrono::milliseconds(200);
        if (!b_.proc) return wake;
        auto now = b_.clk.now();
        auto due = b_.proc->next_due();
        if (due && *due > now) return steady + std::min<micros>(*due - now, micros{200'000});
        if (due) return std::max(steady, timers_after_);
        return wake;
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
            b_.pipe.complete(waiting_);
        publish(waiting_out_);
        waiting_out_.stored.clear();
    }

    // The live feed of what was made durable: each record on its type topic
    // and its place topic, only where someone subscribed.
    void publish(const batch_output& o) {
        broker_metrics::get().stored(o);
        day_log::stored(o);
        track_subscriptions();
        if (active_.empty()) return;
        for (const auto& r : o.stored) {
            std::string redacted;
            event_head h;
            auto bytes = feed_bytes(r.bytes(), h, redacted);
            if (bytes.empty()) continue;
            std::string off;
            for (const auto& topic : {wire::type_topic(h.type, h.district, h.school),
                                      wire::place_topic(h.district, h.school, h.type)}) {
                if (!active_.wanted(topic)) continue;
                if (off.empty()) off = wire::u64_le(r.offset);
                send_feed(topic, off, bytes);
            }
        }
    }

    // A stored record as the feed carries it, and its head: with
    // authentication on, minors' details only redacted (cleared roles read
    // them by replay, which is logged). Empty when it cannot be read.
    std::string_view feed_bytes(std::string_view bytes, event_head& h, std::string& redacted) {
        if (!peek(bytes, h)) return {};
        if (!b_.opts.security || !carries_minors_details(h.type)) return bytes;
        event e;
        if (decode(bytes, e)) return {};
        redact_minors(e);
        redacted = encode(e);
        if (!peek(redacted, h)) return {};
        return redacted;
    }

    // XPUB drops at its high-water mark rather than block ingest; subscribers
    // see the gap in offsets and backfill by replay.
    void send_feed(std::string_view topic, std::string_view offset, std::string_view bytes) {
        auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
        broker_metrics::get().feed_sent(b_.feed_sock.send(zmq::buffer(topic), more).has_value());
        b_.feed_sock.send(zmq::buffer(offset), more);
        b_.feed_sock.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }

    // The feed's active subscriptions, from XPUB's notices
    // (feed_subscriptions.hpp). An event nobody subscribed to is not sent.
    void track_subscriptions() {
        zmq::message_t m;
        while (b_.feed_sock.recv(m, zmq::recv_flags::dontwait)) {
            auto notice = parse_feed_notice(m.to_string_view());
            if (!notice) continue;
            if (!b_.opts.security) {
                active_.apply(*notice, notice_source::shared);
                continue;
            }
            // XPUB_MANUAL: a subscription takes effect only if we apply it,
            // and only within the subscriber's scope. A closed connection's
            // notices carry no key.
            const char* uid = zmq_msg_gets(m.handle(), "User-Id");
            if (!uid) {
                active_.apply(*notice, notice_source::closed_connection);
                continue;
            }
            auto p = b_.who(m); // the table in force: a revoked key subscribes to nothing
            bool allowed = p && may_subscribe(*p, notice->prefix);
            switch (active_.apply(*notice, notice_source::subscriber, allowed)) {
            case feed_action::subscribe:
                b_.feed_sock.set(zmq::sockopt::subscribe, notice->prefix);
                break;
            case feed_action::unsubscribe:
                b_.feed_sock.set(zmq::sockopt::unsubscribe, notice->prefix);
                break;
            case feed_action::none:
                if (notice->subscribe)
                    spdlog::warn("feed: {} may not subscribe to \"{}\"", uid, notice->prefix);
                break;
            }
        }
        broker_metrics::get().feed_subscriptions(active_.size());
    }

    // After a revocation: closing the feed's listener closes every connection
    // it accepted, with their subscriptions (XPUB reports each as a closed
    // connection's unsubscribe, so `active_` stays right). Subscribers
    // reconnect by themselves and subscribe again; a revoked key's handshake
    // is refused and a changed key subscribes only within its new scope.
    // Messages published while a subscriber reconnects are missed as at any
    // reconnect: offsets show the gap and replay fills it.
    void rebind_feed() {
        if (feed_bound_) {
            try {
                b_.feed_sock.unbind(b_.ep.feed);
            } catch (const zmq::error_t& x) {
                spdlog::warn("feed: unbinding {}: {}", b_.ep.feed, x.what());
            }
            feed_bound_ = false;
        }
        try {
            b_.feed_sock.bind(b_.ep.feed);
            feed_bound_ = true;
            spdlog::info("feed: subscribers reconnect after the access table changed");
        } catch (const zmq::error_t& x) {
            spdlog::error("feed: could not bind {} again after a revocation: {}; retrying",
                          b_.ep.feed, x.what());
            b_.feed_rebind = true;
        }
    }

    broker::impl& b_;
    std::vector<prepared_event> events_; // the batch being committed
    std::vector<owner_tag> owners_;      // whom each of events_ answers
    std::vector<completion> done_;
    batch_output out_;
    std::vector<completion> waiting_; // committed, not yet durable
    batch_output waiting_out_;
    feed_subscriptions active_;
    bool feed_bound_ = true;
    // Timer firing after a failure: not before this, and the next delay.
    std::chrono::steady_clock::time_point timers_after_{};
    std::chrono::milliseconds timer_backoff_{100};
    std::uint64_t txns_ = 0, txn_events_ = 0, syncs_ = 0;
    double txn_seconds_ = 0, sync_seconds_ = 0;
};

} // namespace

void broker::impl::run_writer() {
    writer_loop(*this).run();
}

} // namespace pingan
