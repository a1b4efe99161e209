// Reading the replicated log from a NATS JetStream stream instead of the
// broker (pingan replay --jetstream; docs/replication.md, "Reading the
// stream"). The only file of the tool that includes <nats.h>.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::cli {

struct jetstream_source {
    std::vector<std::string> servers; // nats://[user:password@]host:port
    std::string stream = "PINGAN";
    std::string subject = "pingan.events"; // the broker's jetstream.subject
    std::string creds;                     // a NATS credentials file (JWT and seed), or empty
    std::string inbox;                     // the inbox prefix its permissions allow, or empty
    std::string district, school;          // narrow the consumer to this scope
    std::uint64_t from = 1;
    bool follow = false; // on past the stream's end, as records arrive
    std::chrono::milliseconds timeout{5000};
};

// Calls `each(offset, stored bytes)` for every record of the scope from
// `from`, in offset order, through an ordered consumer (flow control and
// heartbeats; recreated by libnats after a reconnect). Without `follow` it
// returns once the consumer has nothing more pending; `each` returning false
// ends it too. `idle` is called whenever nothing is waiting (to flush output).
// Throws: pingan::error(io_error) when the servers cannot be reached;
// pingan::error(forbidden) when the servers refuse the consumer or a
// subscription (NATS permissions), naming the subject;
// pingan::error(not_found) when the unfiltered stream skips an offset (a
// gap: records removed from the stream), naming the offsets missing.
void read_jetstream(const jetstream_source& src,
                    const std::function<bool(std::uint64_t, std::string_view)>& each,
                    const std::function<void()>& idle);

} // namespace pingan::cli
