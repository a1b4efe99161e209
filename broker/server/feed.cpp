// The feed thread: the live feed of what was made durable.
//
// The writer hands each durable batch's records over (broker::impl::hand_to_feed)
// only while someone is subscribed; this thread owns the XPUB socket, follows
// its subscriptions (within each subscriber's scope when security is on),
// redacts minors' details, and sends each record on its type topic and its
// place topic where someone subscribed. So the feed's work runs beside the
// commit instead of inside it.
#include "broker/admission/feed_subscriptions.hpp"
#include "broker/server/broker_impl.hpp"
#include "broker/server/metrics.hpp"

#include "common/privacy.hpp"
#include "common/wire.hpp"

#include <spdlog/spdlog.h>

namespace pingan {
namespace {

class feed_loop {
  public:
    explicit feed_loop(broker::impl& b) : b_(b) {}

    void run() {
        zmq::pollitem_t items[] = {{b_.feed_wake_rx.handle(), 0, ZMQ_POLLIN, 0},
                                   {b_.feed_sock.handle(), 0, ZMQ_POLLIN, 0}};
        while (true) {
            zmq::poll(items, 2, std::chrono::milliseconds(200));
            if (items[0].revents & ZMQ_POLLIN) {
                zmq::message_t m;
                while (b_.feed_wake_rx.recv(m, zmq::recv_flags::dontwait)) {
                }
            }
            if (b_.feed_rebind.exchange(false)) rebind_feed();
            track_subscriptions();
            bool closed;
            {
                std::lock_guard lock(b_.feed_m);
                batches_.swap(b_.feed_batches);
                closed = b_.feed_closed;
            }
            for (auto& batch : batches_)
                send(batch);
            batches_.clear();
            if (closed) break;
        }
    }

  private:
    // Each record on its type topic and its place topic, where someone subscribed.
    void send(const std::vector<stored_record>& records) {
        if (active_.empty()) return;
        for (const auto& r : records) {
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

    // XPUB drops at its high-water mark rather than block; subscribers see
    // the gap in offsets and backfill by replay.
    void send_feed(std::string_view topic, std::string_view offset, std::string_view bytes) {
        auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
        broker_metrics::get().feed_sent(b_.feed_sock.send(zmq::buffer(topic), more).has_value());
        b_.feed_sock.send(zmq::buffer(offset), more);
        b_.feed_sock.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }

    // The feed's active subscriptions, from XPUB's notices
    // (feed_subscriptions.hpp). An event nobody subscribed to is not sent,
    // and while nobody is subscribed the writer hands nothing over.
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
        b_.feed_wanted = !active_.empty();
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
    feed_subscriptions active_;
    bool feed_bound_ = true;
    std::vector<std::vector<stored_record>> batches_;
};

} // namespace

void broker::impl::hand_to_feed(std::vector<stored_record>& records) {
    if (records.empty() || !feed_wanted.load(std::memory_order_relaxed)) return;
    bool was_empty;
    {
        std::lock_guard lock(feed_m);
        was_empty = feed_batches.empty();
        feed_batches.push_back(std::move(records));
    }
    records.clear();
    if (was_empty) poke_feed();
}

void broker::impl::poke_feed() {
    zmq::message_t m(0);
    (void)feed_wake_tx.send(m, zmq::send_flags::dontwait);
}

void broker::impl::close_feed() {
    {
        std::lock_guard lock(feed_m);
        feed_closed = true;
    }
    poke_feed();
}

void broker::impl::run_feed() {
    feed_loop(*this).run();
}

} // namespace pingan
