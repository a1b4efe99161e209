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

#include "broker/broker.hpp"
#include "broker/pipeline.hpp"
#include "broker/store.hpp"

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

// Connects to JetStream, creates the stream if it is absent, and checks it
// against the local store. `release` is called from the replication thread.
// Throws: pingan::error(io_error) when JetStream cannot be reached or the
// stream not made; pingan::error(bad_config) when the stream holds more than
// the local store, or other records than it (both numbers or offsets named).
std::unique_ptr<replicator>
make_jetstream_replicator(const jetstream_config& c, const store& st,
                          std::function<void(std::vector<completion>&)> release);

} // namespace pingan
