// The broker's shared state and its three thread bodies (ingest.cpp,
// writer.cpp, query.cpp). Private to broker/.
#pragma once

#include "broker/broker.hpp"
#include "broker/pipeline.hpp"
#include "broker/store.hpp"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
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
    pipeline pipe;

    std::atomic<bool> stopping{false};
    std::atomic<bool> ingest_done{false};
    std::thread ingest_thread, writer_thread, query_thread;

    impl(const broker_options& o, const clock& c, const registry& r, processor* p,
         manual_clock* m);

    void run_ingest();
    void run_writer();
    void run_query();
};

// Binds `s` to `endpoint` and returns the endpoint actually bound (ephemeral ports resolved).
std::string bind_resolved(zmq::socket_t& s, const std::string& endpoint);

} // namespace pingan
