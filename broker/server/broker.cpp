// Assembly of the broker: store, sockets and threads.
#include "broker/server/broker_impl.hpp"

#include "common/event_id.hpp"

#include <spdlog/spdlog.h>

#include <zmq_addon.hpp>

#include <array>
#include <fstream>
#include <pthread.h>
#include <sstream>

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
    so.faults = o.faults;
    so.keys = o.keys;
    so.defer_sync = o.defer_sync; // the writer acknowledges after the sync (writer.cpp)
    return so;
}

} // namespace

broker::impl::impl(const broker_options& o, const clock& c, const registry& r, processor* p,
                   manual_clock* m)
    : opts(o), clk(c), reg(r), proc(p), settable(m), ctx(1), st(store_opts(o)),
      ingest_sock(ctx, zmq::socket_type::router), wake_rx(ctx, zmq::socket_type::pair),
      wake_tx(ctx, zmq::socket_type::pair), feed_sock(ctx, zmq::socket_type::xpub),
      query_sock(ctx, zmq::socket_type::router), pipe([this] {
          // Writer or replication thread: wake ingest; a poke already queued is enough.
          std::lock_guard lock(wake_m);
          zmq::message_t m(0);
          (void)wake_tx.send(m, zmq::send_flags::dontwait);
      }),
      feed_wake_rx(ctx, zmq::socket_type::pair), feed_wake_tx(ctx, zmq::socket_type::pair) {
    // First: a stream that cannot be reached or does not match the log stops the start.
    if (o.replication)
        repl = make_jetstream_replicator(
            *o.replication, st, [this](std::vector<completion>& done) { pipe.complete(done); });
    if (o.commit_on_ingest) pipe.wake_ingest_on_push();
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
    feed_wake_rx.set(zmq::sockopt::linger, 0);
    feed_wake_tx.set(zmq::sockopt::linger, 0);

    if (o.security) {
        access_now = std::make_shared<const access_table>(o.security->access);
        // The ZAP handler must be up before any CURVE socket binds: without a
        // handler, libzmq lets every well-formed CURVE client in.
        zap_sock = zmq::socket_t(ctx, zmq::socket_type::rep);
        zap_sock.set(zmq::sockopt::linger, 0);
        zap_sock.bind("inproc://zeromq.zap.01");
        zap_thread = std::thread([this] {
            pthread_setname_np(pthread_self(), "pingan-zap");
            run_zap();
        });
        for (auto* s : {&ingest_sock, &feed_sock, &query_sock}) {
            s->set(zmq::sockopt::curve_server, 1);
            s->set(zmq::sockopt::curve_secretkey, o.security->server.secret_key);
            s->set(zmq::sockopt::zap_domain, "pingan");
        }
        // The feed thread applies each subscription only within the subscriber's scope.
        feed_sock.set(zmq::sockopt::xpub_manual, 1);
    }
    auto name = "inproc://pingan-wake-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
    wake_rx.bind(name);
    wake_tx.connect(name);
    feed_wake_rx.bind(name + "-feed");
    feed_wake_tx.connect(name + "-feed");
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

const endpoints& broker::bound() const noexcept {
    return impl_->ep;
}

void broker::start() {
    auto& i = *impl_;
    // Before the query thread answers CHECKPOINT: the head signed now (its
    // event waits in the pipeline for the writer), or the last one stored.
    if (i.opts.checkpoints) i.make_checkpoint("start");
    if (i.repl) i.repl->start();
    // Named, so that top, perf and gdb show which part is busy.
    if (!i.opts.commit_on_ingest)
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
    i.feed_thread = std::thread([&i] {
        pthread_setname_np(pthread_self(), "pingan-feed");
        i.run_feed();
    });
    if (i.opts.checkpoints)
        i.checkpoint_thread = std::thread([&i] {
            pthread_setname_np(pthread_self(), "pingan-checkpt");
            i.run_checkpoints();
        });
}

void broker::stop() noexcept {
    impl_->stopping = true;
}

void broker::wait() {
    auto& i = *impl_;
    if (i.ingest_thread.joinable()) i.ingest_thread.join();
    if (i.checkpoint_thread.joinable()) i.checkpoint_thread.join();
    if (i.writer_thread.joinable()) i.writer_thread.join();
    // What the writer handed over last (the final checkpoint) goes out before the end.
    if (i.repl) i.repl->stop();
    if (i.feed_thread.joinable()) {
        i.close_feed();
        i.feed_thread.join();
    }
    if (i.query_thread.joinable()) i.query_thread.join();
    // Last: handshakes may be in progress until the sockets are done.
    i.zap_stop = true;
    if (i.zap_thread.joinable()) i.zap_thread.join();
}

namespace {

// The ZAP reply's metadata property that carries the client's CURVE public
// key (Z85) to every message of the connection (zmq_msg_gets).
constexpr const char* key_property = "X-Pingan-Key";

// A ZMTP metadata block with one property (RFC 27 and RFC 23: name length,
// name, 4-byte big-endian value length, value).
std::string metadata(std::string_view name, std::string_view value) {
    std::string m;
    m += static_cast<char>(name.size());
    m += name;
    auto n = static_cast<std::uint32_t>(value.size());
    for (int shift = 24; shift >= 0; shift -= 8)
        m += static_cast<char>((n >> shift) & 0xff);
    m += value;
    return m;
}

} // namespace

std::shared_ptr<const access_table> broker::impl::access() const {
    std::lock_guard lock(access_m);
    return access_now;
}

std::shared_ptr<const principal> broker::impl::who(zmq::message_t& m) const {
    if (!opts.security) return nullptr;
    // Each message, not only the handshake: the key the connection
    // authenticated with is looked up in the table in force now, so that a
    // reload that removes it refuses the connection's next message.
    const char* uid = zmq_msg_gets(m.handle(), "User-Id");
    const char* key = zmq_msg_gets(m.handle(), key_property);
    if (!uid || !key) return nullptr;
    auto table = access();
    const auto* p = table->by_key(key);
    if (!p || p->identity != uid) return nullptr;
    return {table, p}; // shares ownership of the table it points into
}

bool broker::impl::still_admitted(const principal& p) const {
    auto table = access();
    const auto* now = table->by_key(p.key);
    return now && now->identity == p.identity && same_rights(*now, p);
}

std::string broker::impl::revoked_text(zmq::message_t& m) {
    const char* uid = zmq_msg_gets(m.handle(), "User-Id");
    return std::string("the key of ") + (uid && *uid ? uid : "this client") +
           " was revoked: it is no longer in the broker's access table";
}

access_reload broker::reload_access(const std::string& trigger) {
    return impl_->reload_access(trigger);
}

access_reload broker::impl::reload_access(const std::string& trigger) {
    access_reload r;
    if (!opts.security || opts.security->access_file.empty()) {
        r.error = "the broker has no access table to reload (started without --clients)";
        return r;
    }
    std::lock_guard one_at_a_time(reload_m);
    const auto& file = opts.security->access_file;
    auto refuse = [&](const std::string& why) {
        r.error = file + ": " + why;
        spdlog::error("access table {} not reloaded ({}): {}; the table in force stays", file,
                      trigger, why);
        return r;
    };
    std::shared_ptr<const access_table> next;
    try {
        if (!opts.security->allow_loose_permissions)
            if (auto why = loose_permissions(file, 0002); !why.empty())
                return refuse(why + "; anyone could grant themselves rights (chmod o-w " + file +
                              ")");
        std::ifstream in(file, std::ios::binary);
        if (!in) return refuse("cannot read the file");
        std::ostringstream text;
        text << in.rdbuf();
        next = std::make_shared<const access_table>(access_table::from_yaml(text.str(), reg));
    } catch (const error& e) {
        return refuse(e.detail());
    }
    auto old = access();
    old->each([&](const principal& p) {
        const auto* now = next->by_key(p.key);
        if (!now || now->identity != p.identity)
            r.revoked.push_back(p.identity);
        else if (!same_rights(*now, p))
            r.changed.push_back(p.identity);
    });
    next->each([&](const principal& p) {
        if (!old->by_identity(p.identity)) r.added.push_back(p.identity);
    });
    {
        std::lock_guard lock(access_m);
        access_now = next;
    }
    r.ok = true;
    r.clients = next->size();
    auto list = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v)
            s += (s.empty() ? "" : ", ") + x;
        return v.empty() ? std::string("none") : s;
    };
    spdlog::info("access table {} reloaded ({}): {} clients; revoked: {}; changed: {}; added: {}",
                 file, trigger, r.clients, list(r.revoked), list(r.changed), list(r.added));
    if (r.revoked.empty() && r.changed.empty()) return r;
    feed_rebind = true;
    // The revocation is a fact of the log like any other, through the writer.
    event e;
    auto now = clk.now();
    e.id = new_event_id(now);
    e.source = "pingan-broker/access";
    e.actor = trigger == "SIGHUP" ? std::string("pingan-broker") : trigger;
    e.occurred_at = now;
    e.status = status::system;
    e.scope = scope::restricted;
    access_revoked b;
    b.identities = r.revoked;
    b.changed = r.changed;
    b.trigger = trigger;
    b.file = file;
    b.clients = static_cast<std::uint32_t>(r.clients);
    e.body = std::move(b);
    std::vector<prepared_event> one;
    one.push_back(prepare(std::move(e)));
    std::vector<owner_tag> owner{{nullptr, 0}};
    pipe.push(one, owner);
    return r;
}

// ZAP (RFC 27): the broker's sockets ask here whether a CURVE client may
// connect. Only keys in the access table, and only in the "pingan" domain;
// the reply's user id becomes the identity the broker records as actor.
void broker::impl::run_zap() {
    std::vector<zmq::message_t> f;
    zmq::pollitem_t it{zap_sock.handle(), 0, ZMQ_POLLIN, 0};
    while (!zap_stop) {
        if (zmq::poll(&it, 1, std::chrono::milliseconds(100)) <= 0) continue;
        f.clear();
        if (!zmq::recv_multipart(zap_sock, std::back_inserter(f))) continue;
        std::string version = f.size() > 0 ? f[0].to_string() : "";
        std::string request_id = f.size() > 1 ? f[1].to_string() : "";
        std::string status = "400", text = "denied", user, meta;
        if (f.size() >= 7 && version == "1.0" && f[2].to_string_view() == "pingan" &&
            f[5].to_string_view() == "CURVE" && f[6].size() == 32) {
            auto key = z85_of(f[6].to_string_view());
            if (auto* p = access()->by_key(key)) {
                status = "200";
                text = "OK";
                user = p->identity;
                meta = metadata(key_property, key);
            } else {
                spdlog::warn("refused a CURVE client with unknown key {} from {}", key,
                             f[3].to_string());
            }
        }
        std::array<zmq::const_buffer, 6> reply{zmq::buffer(version), zmq::buffer(request_id),
                                               zmq::buffer(status),  zmq::buffer(text),
                                               zmq::buffer(user),    zmq::buffer(meta)};
        zmq::send_multipart(zap_sock, reply);
    }
}

} // namespace pingan
