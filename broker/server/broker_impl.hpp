// The broker's shared state and its thread bodies (ingest.cpp with the
// writer of writer.cpp in its turns, feed.cpp, query.cpp). Private to broker/.
#pragma once

#include "broker/replication/replicator.hpp"
#include "broker/server/broker.hpp"
#include "broker/server/pipeline.hpp"
#include "broker/store/store.hpp"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace pingan {

struct broker::impl {
    broker_options opts;
    const clock& clk;
    const registry& reg;
    processor* proc;
    manual_clock* settable;

    zmq::context_t ctx;
    store st;
    endpoints ep;
    zmq::socket_t ingest_sock;
    zmq::socket_t wake_rx; // ingest thread: woken when results are ready
    zmq::socket_t wake_tx; // writer thread: pokes wake_rx
    zmq::socket_t feed_sock;
    zmq::socket_t query_sock;
    zmq::socket_t zap_sock; // REP on inproc://zeromq.zap.01 when security is on
    std::mutex wake_m;      // wake_tx is poked by the writer and the replication thread
    pipeline pipe;
    // With replication: the writer's durable batches go through it, and it
    // releases their results to ingest (broker/replication/replicator.hpp). Null: none.
    std::unique_ptr<replicator> repl;

    std::atomic<bool> stopping{false};
    std::atomic<bool> ingest_done{false};
    std::atomic<bool> zap_stop{false};
    std::thread ingest_thread, writer_thread, query_thread, zap_thread;

    // The live feed (feed.cpp): the writer hands each durable batch's
    // records to the feed thread, which owns feed_sock, while anyone is
    // subscribed (`feed_wanted`, kept by the feed thread).
    std::thread feed_thread;
    zmq::socket_t feed_wake_rx; // the feed thread: woken when batches wait
    zmq::socket_t feed_wake_tx; // the writer: pokes feed_wake_rx
    std::mutex feed_m;
    std::vector<std::vector<stored_record>> feed_batches; // under feed_m
    bool feed_closed = false;                             // under feed_m
    std::atomic<bool> feed_wanted{false};

    // Checkpoints (checkpoint.cpp): their own thread signs and writes the
    // files, off the writer; the events go through the pipeline.
    std::thread checkpoint_thread;
    std::mutex checkpoint_m;
    std::condition_variable checkpoint_cv;
    bool checkpoint_final = false;               // ingest is done: sign the last head
    std::optional<checkpoint> latest_checkpoint; // for the CHECKPOINT query command
    // CHECKPOINT {"now": true}: the query thread counts a request up and waits
    // until the checkpoint thread has served that many (signed the head, or
    // found it already signed).
    std::uint64_t checkpoint_requests = 0, checkpoint_served = 0;

    // The access table in force (security on): read by the ingest, query,
    // writer and ZAP threads, replaced whole by reload_access().
    mutable std::mutex access_m;
    std::shared_ptr<const access_table> access_now;
    std::mutex reload_m; // one reload at a time
    // Set by a reload that revoked or changed a key: the feed thread, which
    // owns the feed socket, unbinds and binds it again so that every subscriber
    // reconnects through the table in force (libzmq cannot drop one XPUB peer).
    std::atomic<bool> feed_rebind{false};

    impl(const broker_options& o, const clock& c, const registry& r, processor* p, manual_clock* m);

    void run_ingest();
    void run_writer();
    void run_query();
    void run_zap();
    void run_feed();
    // The writer: `records` (made durable) go to the feed thread if anyone is
    // subscribed; either way `records` is left empty.
    void hand_to_feed(std::vector<stored_record>& records);
    void poke_feed();
    // After the writer stopped: the feed thread sends what is queued and ends.
    void close_feed();
    void run_checkpoints();
    // Signs the durable head unless it is the last checkpoint's own event.
    void make_checkpoint(const char* trigger);
    // CHECKPOINT {"now": true}, on the query thread: has the checkpoint
    // thread sign the head at once (trigger "request") and waits, at most
    // `limit`, until it has; `latest` is then the latest checkpoint (none
    // while the log is empty). Returns: false if the broker is stopping or
    // the thread did not answer in time.
    bool request_checkpoint(std::chrono::milliseconds limit, std::optional<checkpoint>& latest);
    // Ingest is done: the last checkpoint, then the pipeline closes (the
    // writer stores the checkpoint's event before it stops).
    void ingest_finished();

    std::shared_ptr<const access_table> access() const;
    // The client behind a message, when security is on: the principal of the
    // CURVE key the connection authenticated with, in the table in force now.
    // Null without security, or when that key is no longer in the table (or
    // now belongs to another identity): revoked since the handshake.
    std::shared_ptr<const principal> who(zmq::message_t& m) const;
    // Is `p` (from who()) still the principal of its key in the table in force?
    bool still_admitted(const principal& p) const;
    // The refusal text for a message whose key who() no longer finds.
    static std::string revoked_text(zmq::message_t& m);
    access_reload reload_access(const std::string& trigger);
};

// Binds `s` to `endpoint` and returns the endpoint actually bound (ephemeral ports resolved).
std::string bind_resolved(zmq::socket_t& s, const std::string& endpoint);

// What happened to a reply on a ROUTER with ROUTER_MANDATORY set.
enum class reply_result {
    sent,
    full, // the peer's queue is at its high-water mark: nothing was sent, try later
    gone, // the peer disconnected: the reply is dropped
};

// Sends [routing, (empty delimiter for REQ peers), cmd, tag, body...] on a
// ROUTER socket. Body frames are strings, string views or messages (moved).
template <class Frames>
reply_result send_reply(zmq::socket_t& s, std::string_view routing, bool delimiter,
                        std::string_view cmd, std::string_view tag, Frames&& body) {
    try {
        if (!s.send(zmq::buffer(routing), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
            return reply_result::full; // ROUTER checks the peer at the first frame
        if (delimiter) s.send(zmq::message_t(0), zmq::send_flags::sndmore);
        s.send(zmq::buffer(cmd), zmq::send_flags::sndmore);
        std::size_t left = std::size(body);
        s.send(zmq::buffer(tag), left ? zmq::send_flags::sndmore : zmq::send_flags::none);
        for (auto&& f : body) {
            auto flags = --left ? zmq::send_flags::sndmore : zmq::send_flags::none;
            if constexpr (std::is_same_v<std::decay_t<decltype(f)>, zmq::message_t>)
                s.send(f, flags);
            else
                s.send(zmq::buffer(std::string_view(f)), flags);
        }
        return reply_result::sent;
    } catch (const zmq::error_t&) {
        return reply_result::gone; // EHOSTUNREACH
    }
}

} // namespace pingan
