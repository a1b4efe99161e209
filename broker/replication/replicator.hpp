// Replication of the log: the seam between the writer and a replica.
//
// Without replication the writer hands each durable batch's results straight
// back to ingest. With it, the writer hands them to a replicator together with
// the batch's records, and the replicator releases the results once the
// replica holds every record up to the batch's highest offset (stored or
// answered as a duplicate), or refuses them (store_failure, "resend") when the
// replica does not confirm in time. The log stays the system of record: a
// replica never holds a record the local store does not.
//
// jetstream.cpp implements it on NATS JetStream and is the only file that
// includes <nats.h> (docs/replication.md).
#pragma once

#include "broker/server/broker.hpp"
#include "broker/server/pipeline.hpp"
#include "broker/store/store.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pingan {

class replicator {
  public:
    virtual ~replicator() = default;

    // Starts the replication thread: it first publishes what the stream lacks
    // of the local log.
    virtual void start() = 0;

    // Writer thread, after the batch is durable: `records` (in offset order;
    // possibly empty) go to the replica, and `done` is released (moved from)
    // once the replica holds every offset its results name. Returns at once.
    virtual void submit(std::vector<stored_record> records, std::vector<completion>& done) = 0;

    // After the writer has stopped: waits (at most the timeout) for what is in
    // flight, refuses what is still unconfirmed, and ends the thread.
    virtual void stop() = 0;
};

// Another broker holds the leadership lease, or wrote the stream past this
// one's log while this one took the lease: this broker may not write.
class not_leader : public error {
  public:
    not_leader(errc code, const std::string& why) : error(code, why) {}
};

// A hot standby: follows the stream into `st` (store::follow, with `p`'s
// state made as on the leader) until the leader's lease has lapsed and every
// record of the stream is applied; then returns true, and the caller starts
// the broker on the same store (make_jetstream_replicator takes the lease).
// Returns false when `stop` is set first.
// Throws: pingan::error(io_error) when JetStream cannot be reached at start;
// pingan::error(bad_config) when the local store is not a prefix of the stream.
bool follow_stream(const jetstream_config& c, store& st, processor* p,
                   const std::atomic<bool>& stop);

// Connects to JetStream, creates the stream if it is absent, and checks it
// against the local store. `release` is called from the replication thread.
// Takes the leadership lease before it checks the stream.
// Throws: pingan::error(io_error) when JetStream cannot be reached or the
// stream not made; not_leader when another broker holds the lease, or the
// stream holds more than the local store; pingan::error(bad_config) when
// the stream holds other records than the local store (offsets named).
std::unique_ptr<replicator>
make_jetstream_replicator(const jetstream_config& c, const store& st,
                          std::function<void(std::vector<completion>&)> release);

} // namespace pingan
