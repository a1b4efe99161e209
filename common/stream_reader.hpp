// Reading the replicated log from the NATS JetStream stream a broker writes
// (docs/replication.md, "Reading the stream"), instead of asking the broker:
// pingan replay --jetstream and pingan-notify --jetstream. The stream's
// sequence is the log's offset; each message's data is a record's stored
// bytes. Linked as pingan_stream_reader (libnats).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan {

struct jetstream_source {
    std::vector<std::string> servers; // nats://[user:password@]host:port
    std::string stream = "PINGAN";
    std::string subject = "pingan.events"; // the broker's jetstream.subject
    std::string creds;                     // a NATS credentials file (JWT and seed), or empty
    std::string inbox;                     // the inbox prefix its permissions allow, or empty
    std::string district, school;          // narrow the consumer to this scope
    std::string city; // in a province: the city whose mirror `stream` is, named in errors
    std::uint64_t from = 1;
    bool follow = false; // on past the stream's end, as records arrive
    std::chrono::milliseconds timeout{5000};
    std::string client = "pingan"; // the name the servers show for the connection
};

// NATS server URLs given as options, each one URL or a comma-separated list.
std::vector<std::string> server_list(const std::vector<std::string>& options);

// Calls `each(offset, stored bytes)` for every record of the scope from
// `from`, in offset order, through an ordered consumer (flow control and
// heartbeats; recreated by libnats after a reconnect). Without `follow` it
// returns once the consumer has nothing more pending; `each` returning false
// ends it too. `idle` is called whenever nothing is waiting (to flush output);
// its returning false ends it too.
// Throws: pingan::error(io_error) when the servers cannot be reached;
// pingan::error(forbidden) when the servers refuse the consumer or a
// subscription (NATS permissions), naming the subject;
// pingan::error(not_found) when the unfiltered stream skips an offset (a
// gap: records removed from the stream), naming the offsets missing.
void read_jetstream(const jetstream_source& src,
                    const std::function<bool(std::uint64_t, std::string_view)>& each,
                    const std::function<bool()>& idle);

} // namespace pingan
