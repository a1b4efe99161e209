// The broker: the only writer of the store.
//
// Two threads serve clients, each owning its sockets (ZeroMQ sockets are not
// thread-safe):
//   ingest  ROUTER: decodes and admits published events; in the same loop the
//           writer (writer.hpp) commits them (group commit, the escalation
//           processor and its timers), sends the XPUB live feed, and the
//           replies leave once the commit is on disk;
//   query   ROUTER: replay with credit-based flow control, and stats.
// Other threads (query, checkpoints, reloads) queue their own records for the
// writer through `pipeline` and wake ingest. stop() drains: no new requests
// are read, everything in flight is committed and answered, then the threads
// end. (With commit_on_ingest false the writer has a thread of its own.)
#pragma once

#include "broker/admission/access.hpp"
#include "broker/admission/admit.hpp"
#include "broker/store/processor.hpp"
#include "common/clock.hpp"
#include "common/curve.hpp"
#include "common/registry.hpp"
#include "common/signing.hpp"

#include <chrono>

#include <memory>
#include <string>
#include <vector>

namespace pingan {

class key_ring;
class store_faults;

// Where and how the log is replicated (replication: jetstream in the config).
struct jetstream_config {
    std::vector<std::string> servers{"nats://127.0.0.1:4222"};
    std::string stream = "PINGAN";
    std::string subject = "pingan.events";   // a record goes on <subject>.<district>.<school>
    int replicas = 1;                        // 3 in a cluster of three servers
    std::chrono::milliseconds timeout{2000}; // for the stream's confirmation of a batch
    // Leadership: the broker that writes the stream holds a lease, the key
    // `leader` of the KeyValue bucket <stream>_LEADER, whose entries expire
    // `lease` after their last write; it renews it every lease / 4 and
    // publishes only while its last renewal is less than 2/3 of a lease old.
    std::chrono::milliseconds lease{3000};
    // Start as a hot standby: follow the stream into the local store and take
    // over (the lease, then ingest) when the leader's lease lapses.
    bool standby = false;
    std::string name; // in the lease, who holds it; empty: host:pid
};

struct broker_options {
    std::string data_dir = "var/broker";
    std::string ingest = "tcp://127.0.0.1:7401";
    std::string feed = "tcp://127.0.0.1:7402";
    std::string query = "tcp://127.0.0.1:7403";
    std::size_t max_message_bytes = 8 * 1024 * 1024; // one request, all frames
    std::size_t max_batch = 10000;                   // events in one request
    std::size_t max_inflight = 200000;               // admitted, not yet committed
    int feed_hwm = 200000;                           // messages queued per subscriber
    std::size_t replay_chunk = 512;                  // events per query-thread turn
    // How long the answer to a CLOCK move waits for all it made due to be
    // stored; past it the move is answered with store_failure.
    std::chrono::milliseconds clock_settle_limit{30000};
    admit_limits limits;
    std::size_t initial_map_size = 1ull << 30;
    // One fsync per transaction, acks after the next commit or an explicit
    // sync (store_options::defer_sync). false: two fsyncs per commit, acks
    // right after it (kept to measure the difference: pingan-bench --sync-each-commit).
    bool defer_sync = true;
    // One thread reads requests, commits them and answers, as the raw
    // baseline does (writer.hpp). false: ingest hands each batch to a writer
    // thread and is woken with its results, which costs more CPU per event
    // and a hand-off each way (kept to measure: pingan-bench --writer-thread).
    bool commit_on_ingest = true;
    // Tests only: failures the store injects (store_faults.hpp). Null in production.
    std::shared_ptr<store_faults> faults{};
    // Minors' data at rest: the keys that seal classified values in the store
    // and open them for cleared replays (common/key_ring.hpp). Null: stored in
    // clear (development).
    std::shared_ptr<key_ring> keys{};
    // Signed checkpoints of the head (broker/server/checkpoint.cpp): at start, every
    // `interval` and at a clean stop, each stored as an audit.checkpoint event
    // and, with `dir`, written there as a file. Null: none.
    struct checkpoint_config {
        signing_key key;
        std::string dir; // empty: the log only
        std::chrono::seconds interval{300};
    };
    std::shared_ptr<const checkpoint_config> checkpoints;

    // CURVE on every socket, with a ZAP handler that admits only the keys of
    // `access` and names each client's identity. Null: no authentication
    // (tests and loopback-only development).
    struct security_config {
        curve_keypair server;
        access_table access; // the table at start; reload_access() replaces it
        // Where reload_access() reads the table again (empty: not reloadable),
        // and whether it may be writable by others (--allow-insecure-permissions).
        std::string access_file;
        bool allow_loose_permissions = false;
    };
    std::shared_ptr<const security_config> security;

    // Replication of the log (broker/replication/replicator.hpp, docs/replication.md): a
    // publisher's ack waits for the local commit and the stream's confirmation.
    // Null: none, and the ack follows the local commit alone.
    std::shared_ptr<const jetstream_config> replication;
};

// What a reload of the access table did.
struct access_reload {
    bool ok = false;
    std::string error;                // why the file was refused (ok false)
    std::size_t clients = 0;          // in the table now
    std::vector<std::string> revoked; // identities whose old key no longer admits
    std::vector<std::string> changed; // same key, new scope or rights
    std::vector<std::string> added;   // new identities
};

struct endpoints {
    std::string ingest, feed, query;
};

class broker {
  public:
    // Opens the store and binds the sockets; `clk`, `reg` and `proc` must
    // outlive the broker. `proc` may be null (no escalation). When `settable`
    // is given (the same object as `clk`), the query socket's CLOCK command
    // moves it: tests and simulations drive deadlines through it.
    broker(const broker_options& o, const clock& clk, const registry& reg, processor* proc,
           manual_clock* settable = nullptr);
    ~broker();

    // The bound endpoints, with ephemeral ports resolved.
    const endpoints& bound() const noexcept;

    // Reads the access table file again. A file that does not parse (or that
    // others may write) is refused and the table in force stays; otherwise the
    // new table applies from each client's next message, and if keys were
    // removed, replaced or given other rights an access.revoked event naming
    // `trigger` ("SIGHUP", or the identity that asked) goes into the log.
    // Logs the outcome naming the file. Thread-safe.
    access_reload reload_access(const std::string& trigger);

    void start();
    // Asks the broker to drain and stop; returns at once.
    void stop() noexcept;
    // Waits until every thread has ended.
    void wait();

    struct impl;

  private:
    std::unique_ptr<impl> impl_;
};

} // namespace pingan
