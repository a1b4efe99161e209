// Reading the replicated log from a NATS JetStream stream instead of the
// broker (pingan replay --jetstream; docs/replication.md, "Reading the
// stream"), and a province's mirrors of its cities' streams (pingan province;
// docs/replication.md, "Province"). The only file of the tool that includes
// <nats.h>.
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
    std::string city; // in a province: the city whose mirror `stream` is, named in errors
    std::uint64_t from = 1;
    bool follow = false; // on past the stream's end, as records arrive
    std::chrono::milliseconds timeout{5000};
};

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

// A city of a province: the city's broker stream, mirrored into the
// provincial servers' JetStream as `<province>_<city>`. The mirror's sequence
// is the city's offset.
struct province_city {
    std::string city;    // the city broker's stream (its jetstream.stream)
    std::string domain;  // the city's JetStream domain, or empty: the same JetStream
    std::string stream;  // the mirror in the provincial servers
    std::string subject; // the city broker's jetstream.subject
};

// Makes, in the JetStream of `at.servers`, a mirror of each city stream
// named in `cities` ("NAME", or "NAME@DOMAIN" for a stream in another
// JetStream domain reached through a leaf node): `<province>_<NAME>`, file
// storage, `replicas` copies, filtered to the city's `<subject>.>`. A mirror
// that exists already is left as it is. Returns: one line per city.
// Throws: pingan::error(not_found) naming a city stream that does not exist;
// pingan::error(bad_value) when two cities share a subject, or a city stream
// is not a broker's (one `<subject>.>`); pingan::error(bad_config) when a
// stream of the mirror's name is something else; io_error.
std::vector<std::string> create_province(const jetstream_source& at, const std::string& province,
                                         const std::vector<std::string>& cities, int replicas);

// The cities of `province`: the mirrors `<province>_*` at `at.servers`, by name.
// Throws: pingan::error(not_found) when there is none; forbidden; io_error.
std::vector<province_city> province_cities(const jetstream_source& at, const std::string& province);

} // namespace pingan::cli
