// Assembly of the broker: store, sockets and threads.
#include "broker/broker_impl.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>

namespace pingan {

std::string bind_resolved(zmq::socket_t& s, const std::string& endpoint) {
    s.bind(endpoint);
    return s.get(zmq::sockopt::last_endpoint);
}

namespace {

store_options store_opts(const broker_options& o) {
    store_options so;
    so.path = o.data_dir;
    so.initial_map_size = o.initial_map_size;
    return so;
}

} // namespace

broker::impl::impl(const broker_options& o, const clock& c, const registry& r, processor* p,
                   manual_clock* m)
    : opts(o), clk(c), reg(r), proc(p), settable(m), ctx(1), st(store_opts(o)),
      ingest_sock(ctx, zmq::socket_type::router), wake_rx(ctx, zmq::socket_type::pair),
      wake_tx(ctx, zmq::socket_type::pair), feed_sock(ctx, zmq::socket_type::xpub),
      query_sock(ctx, zmq::socket_type::router), pipe([this] {
          // Writer thread: wake ingest; a poke already queued is enough.
          zmq::message_t m(0);
          (void)wake_tx.send(m, zmq::send_flags::dontwait);
      }) {
    // Unroutable replies must fail visibly, not vanish (ROUTER's default).
    ingest_sock.set(zmq::sockopt::router_mandatory, 1);
    ingest_sock.set(zmq::sockopt::sndhwm, 100000);
    ingest_sock.set(zmq::sockopt::rcvhwm, 100000);
    // A hard cap far above the protocol's limit: bigger frames are refused with a nack
    // before this, but a peer cannot make the broker buffer without bound.
    ingest_sock.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(o.max_message_bytes * 4));
    ingest_sock.set(zmq::sockopt::linger, 2000);
    query_sock.set(zmq::sockopt::router_mandatory, 1);
    query_sock.set(zmq::sockopt::sndhwm, 20000);
    query_sock.set(zmq::sockopt::linger, 0);
    query_sock.set(zmq::sockopt::maxmsgsize, int64_t{1 << 20});
    feed_sock.set(zmq::sockopt::sndhwm, o.feed_hwm);
    feed_sock.set(zmq::sockopt::linger, 0);
    wake_rx.set(zmq::sockopt::linger, 0);
    wake_tx.set(zmq::sockopt::linger, 0);

    auto name = "inproc://pingan-wake-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
    wake_rx.bind(name);
    wake_tx.connect(name);
    ep.ingest = bind_resolved(ingest_sock, o.ingest);
    ep.feed = bind_resolved(feed_sock, o.feed);
    ep.query = bind_resolved(query_sock, o.query);
    if (proc) st.open_processor(*proc);
}

broker::broker(const broker_options& o, const clock& clk, const registry& reg, processor* proc,
               manual_clock* settable)
    : impl_(std::make_unique<impl>(o, clk, reg, proc, settable)) {}

broker::~broker() {
    stop();
    wait();
}

const endpoints& broker::bound() const noexcept { return impl_->ep; }

void broker::start() {
    auto& i = *impl_;
    // Named, so that top, perf and gdb show which part is busy.
    i.writer_thread = std::thread([&i] {
        pthread_setname_np(pthread_self(), "pingan-writer");
        i.run_writer();
    });
    i.ingest_thread = std::thread([&i] {
        pthread_setname_np(pthread_self(), "pingan-ingest");
        i.run_ingest();
    });
    i.query_thread = std::thread([&i] {
        pthread_setname_np(pthread_self(), "pingan-query");
        i.run_query();
    });
}

void broker::stop() noexcept { impl_->stopping = true; }

void broker::wait() {
    auto& i = *impl_;
    if (i.ingest_thread.joinable()) i.ingest_thread.join();
    if (i.writer_thread.joinable()) i.writer_thread.join();
    if (i.query_thread.joinable()) i.query_thread.join();
}

} // namespace pingan
