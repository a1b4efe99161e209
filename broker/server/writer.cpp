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

} // namespace

void broker::impl::run_writer() {
    std::vector<prepared_event> events;
    std::vector<owner_tag> owners;
    std::vector<completion> done;
    batch_output out;
    std::uint64_t txns = 0, txn_events = 0;
    double txn_seconds = 0;
    // Timer firing after a failure: not before this, and the next delay.
    auto timers_after = std::chrono::steady_clock::time_point{};
    auto timer_backoff = std::chrono::milliseconds(100);

    // The feed's active subscriptions, from XPUB's notices (feed_subscriptions.hpp).
    // An event nobody subscribed to is not sent at all.
    feed_subscriptions active;
    auto track_subscriptions = [&] {
        zmq::message_t m;
        while (feed_sock.recv(m, zmq::recv_flags::dontwait)) {
            auto notice = parse_feed_notice(m.to_string_view());
            if (!notice) continue;
            if (!opts.security) {
                active.apply(*notice, notice_source::shared);
                continue;
            }
            // XPUB_MANUAL: a subscription takes effect only if we apply it,
            // and only within the subscriber's scope. A closed connection's
            // notices carry no key.
            const char* uid = zmq_msg_gets(m.handle(), "User-Id");
            if (!uid) {
                active.apply(*notice, notice_source::closed_connection);
                continue;
            }
            auto p = who(m); // the table in force: a revoked key subscribes to nothing
            bool allowed = p && may_subscribe(*p, notice->prefix);
            switch (active.apply(*notice, notice_source::subscriber, allowed)) {
            case feed_action::subscribe:
                feed_sock.set(zmq::sockopt::subscribe, notice->prefix);
                break;
            case feed_action::unsubscribe:
                feed_sock.set(zmq::sockopt::unsubscribe, notice->prefix);
                break;
            case feed_action::none:
                if (notice->subscribe)
                    spdlog::warn("feed: {} may not subscribe to \"{}\"", uid, notice->prefix);
                break;
            }
        }
        broker_metrics::get().feed_subscriptions(active.size());
    };
    auto publish = [&](const batch_output& o) {
        broker_metrics::get().stored(o);
        day_log::stored(o);
        track_subscriptions();
        if (active.empty()) return;
        for (const auto& r : o.stored) {
            auto bytes = r.bytes();
            event_head h;
            if (!peek(bytes, h)) continue;
            // With authentication on, the feed carries minors' details only
            // redacted: cleared roles read them by replay, which is logged.
            std::string redacted_bytes;
            if (opts.security && carries_minors_details(h.type)) {
                event e;
                if (decode(bytes, e)) continue;
                redact_minors(e);
                redacted_bytes = encode(e);
                bytes = redacted_bytes;
                if (!peek(bytes, h)) continue;
            }
            std::string off;
            for (int copy = 0; copy < 2; ++copy) {
                auto topic = copy == 0 ? wire::type_topic(h.type, h.district, h.school)
                                       : wire::place_topic(h.district, h.school, h.type);
                if (!active.wanted(topic)) continue;
                if (off.empty()) off = wire::u64_le(r.offset);
                // XPUB drops at its high-water mark rather than block ingest;
                // subscribers see the gap in offsets and backfill by replay.
                broker_metrics::get().feed_sent(
                    feed_sock
                        .send(zmq::buffer(topic),
                              zmq::send_flags::sndmore | zmq::send_flags::dontwait)
                        .has_value());
                feed_sock.send(zmq::buffer(off),
                               zmq::send_flags::sndmore | zmq::send_flags::dontwait);
                feed_sock.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
            }
        }
    };

    // One fsync per transaction (store_options::defer_sync): a commit's acks
    // and feed wait for the next commit, whose sync carries this one's meta
    // page, or for an explicit sync when nothing else is queued. So an ack or
    // a feed message never leaves before its event is on disk, and under load
    // no transaction pays a second fsync.
    std::vector<completion> waiting; // committed, not yet durable
    batch_output waiting_out;
    auto release = [&](bool sync) {
        if (waiting.empty() && waiting_out.stored.empty()) return;
        if (sync) {
            try {
                st.sync();
            } catch (...) {
                // Committed but not known to be on disk: the publishers resend
                // and are answered "duplicate" once it is.
                std::string why;
                auto code = failure_code(std::current_exception(), why);
                spdlog::error("writer: {}: {}; {} events not acknowledged", errc_name(code), why,
                              waiting.size());
                for (auto& c : waiting)
                    c = {c.owner, {}, code, "not known to be stored: " + why};
                waiting_out.stored.clear();
            }
        }
        if (repl)
            repl->submit(waiting_out.stored, waiting); // released once the stream confirms
        else
            pipe.complete(waiting);
        publish(waiting_out);
        waiting_out.stored.clear();
    };

    // After a revocation: closing the feed's listener closes every connection
    // it accepted, with their subscriptions (XPUB reports each as a closed
    // connection's unsubscribe, so `active` stays right). Subscribers reconnect by
    // themselves and subscribe again; a revoked key's handshake is refused and
    // a changed key subscribes only within its new scope. Messages published
    // while a subscriber reconnects are missed as at any reconnect: offsets
    // show the gap and replay fills it.
    bool feed_bound = true;
    auto rebind_feed = [&] {
        if (feed_bound) {
            try {
                feed_sock.unbind(ep.feed);
            } catch (const zmq::error_t& x) {
                spdlog::warn("feed: unbinding {}: {}", ep.feed, x.what());
            }
            feed_bound = false;
        }
        try {
            feed_sock.bind(ep.feed);
            feed_bound = true;
            spdlog::info("feed: subscribers reconnect after the access table changed");
        } catch (const zmq::error_t& x) {
            spdlog::error("feed: could not bind {} again after a revocation: {}; retrying", ep.feed,
                          x.what());
            feed_rebind = true;
        }
    };

    while (true) {
        if (feed_rebind.exchange(false)) rebind_feed();
        auto now = clk.now();
        auto wake = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        if (proc) {
            if (auto due = proc->next_due(); due && *due > now) {
                auto wait = std::min<micros>(*due - now, micros{200'000});
                wake = std::chrono::steady_clock::now() + wait;
            } else if (due) {
                wake = std::max(std::chrono::steady_clock::now(), timers_after);
            }
        }
        // With acks waiting, only look whether more is queued; else make them durable.
        if (!waiting.empty() || !waiting_out.stored.empty())
            wake = std::chrono::steady_clock::now();
        bool open = pipe.take(events, owners, wake);
        if (events.empty()) release(true);

        if (!events.empty()) {
            out.results.clear();
            out.stored.clear();
            done.clear();
            std::string why;
            auto code = errc::ok;
            try {
                auto t0 = std::chrono::steady_clock::now();
                st.append(events, clk.now(), proc, out);
                txn_seconds +=
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                ++txns;
                txn_events += events.size();
                auto took = std::chrono::steady_clock::now() - t0;
                broker_metrics::get().committed(events.size(), took);
                day_log::committed(events.size(), took);
                for (std::size_t i = 0; i < owners.size(); ++i)
                    done.push_back({owners[i], out.results[i], errc::ok, {}});
                // This commit made the previous one durable; this one waits its turn.
                release(false);
                waiting.swap(done);
                std::swap(waiting_out.stored, out.stored);
                out.stored.clear();
            } catch (...) {
                code = failure_code(std::current_exception(), why);
                release(true);
            }
            if (code == errc::store_failure || (code != errc::ok && events.size() == 1)) {
                spdlog::error("writer: {}: {}; {} events refused", errc_name(code), why,
                              events.size());
                out.results.clear();
                out.stored.clear();
                for (auto& o : owners)
                    done.push_back({o, {}, code, "not stored: " + why});
            } else if (code != errc::ok) {
                // Find the event(s) that failed: one transaction each.
                spdlog::error("writer: {}: {}; retrying {} events one by one", errc_name(code), why,
                              events.size());
                out.results.clear();
                out.stored.clear();
                for (std::size_t i = 0; i < events.size(); ++i) {
                    // A failed transaction took the stored bytes with it.
                    if (events[i].value.size() < 32) events[i] = prepare(std::move(events[i].ev));
                    std::string one_why;
                    auto one = errc::ok;
                    try {
                        st.append(std::span(&events[i], 1), clk.now(), proc, out);
                        ++txns;
                        ++txn_events;
                    } catch (...) {
                        one = failure_code(std::current_exception(), one_why);
                    }
                    if (one == errc::ok) {
                        done.push_back({owners[i], out.results.back(), errc::ok, {}});
                    } else {
                        spdlog::error("writer: event {} refused: {}: {}", events[i].ev.id.str(),
                                      errc_name(one), one_why);
                        done.push_back({owners[i], {}, one, "not stored: " + one_why});
                    }
                }
            }
            if (code != errc::ok) {
                // What the one-by-one retries stored, made durable before the replies.
                waiting.swap(done);
                std::swap(waiting_out.stored, out.stored);
                out.stored.clear();
                release(true);
            }
            events.clear();
            owners.clear();
        }

        if (proc) {
            auto t = clk.now();
            if (auto due = proc->next_due();
                due && *due <= t && std::chrono::steady_clock::now() >= timers_after) {
                out.results.clear();
                out.stored.clear();
                try {
                    st.fire_timers(t, *proc, out);
                    release(false);
                    for (auto& r : out.stored)
                        waiting_out.stored.push_back(std::move(r));
                    out.stored.clear();
                    timer_backoff = std::chrono::milliseconds(100);
                } catch (...) {
                    // Nothing was stored. Timers wait and retry, later each
                    // time up to 5 s; event batches go on meanwhile.
                    std::string why;
                    auto code = failure_code(std::current_exception(), why);
                    spdlog::error("writer: {}: {} while firing timers; retrying in {} ms",
                                  errc_name(code), why, timer_backoff.count());
                    timers_after = std::chrono::steady_clock::now() + timer_backoff;
                    timer_backoff = std::min(timer_backoff * 2, std::chrono::milliseconds(5000));
                    out.stored.clear();
                    release(true);
                }
                publish(out);
            }
        }
        // A CLOCK move is answered once everything it made due is committed
        // and durable (a reply before the sync could show a head that a
        // crash would take back).
        if (auto due = proc ? proc->next_due() : std::nullopt;
            (!due || *due > clk.now()) && pipe.settle_pending()) {
            release(true);
            pipe.settled();
        }
        if (!open) {
            release(true);
            break;
        }
    }
    spdlog::info("writer stopped at offset {}: {} transactions, {:.1f} events and {:.3f} ms each",
                 st.head(), txns, txns ? double(txn_events) / double(txns) : 0.0,
                 txns ? 1000 * txn_seconds / double(txns) : 0.0);
}

} // namespace pingan
