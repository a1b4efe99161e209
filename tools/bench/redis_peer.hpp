// The Redis Streams peer row of pingan-bench: the obvious alternative to the
// broker, measured on the same machine, payload and number of events in flight.
//
// It starts its own redis-server (found on PATH) on an ephemeral port with the
// append-only file and `appendfsync always` in a temporary directory, so that
// each XADD is answered only after fsync, as the broker's acks are. Built only
// when hiredis is found (PINGAN_HAVE_HIREDIS); skipped at run time when
// redis-server is not installed.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace pingan::bench {

struct peer_result {
    double events_per_s = 0;
    double p50_ms = 0, p99_ms = 0;
    double server_cpu_us = 0; // redis-server's CPU per event (from /proc)
    double client_cpu_us = 0; // this process's CPU per event while driving it
};

// Whether this build can run the peer row and redis-server is on PATH.
// Returns: the path of redis-server, or nothing (and `why` says what is missing).
std::optional<std::string> find_redis_server(std::string& why);

// XADDs every event of `events` to one stream from `clients` connections, each
// with `window / clients` commands in flight, against a fresh redis-server
// started under `dir`.
// Throws: pingan::error when the server does not start or a command fails.
peer_result run_redis_peer(const std::string& server, const std::string& dir,
                           const std::vector<std::string>& events, std::size_t window,
                           std::size_t clients = 10);

} // namespace pingan::bench
