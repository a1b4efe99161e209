// Synchronous clients of the broker's three sockets, for tools, tests and
// benchmarks (services use the asynchronous outbox publisher instead).
//
// Each client owns one socket and must stay on one thread. Sockets close
// with linger 0: a client that gives up must not hang the process.
//
// Each socket is watched by a ZeroMQ socket monitor, so that a client knows
// whether the broker ever answered the handshake: a broker that requires a
// CURVE key (or refuses this one) fails the handshake, and waiting for its
// reply would otherwise last forever. Every error names the endpoint.
#pragma once

#include "common/codec.hpp"
#include "common/curve.hpp"
#include "common/wire.hpp"

#include <zmq.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pingan {

using namespace std::chrono_literals;

// Makes `s` a CURVE client of the broker (before connect).
void apply_curve(zmq::socket_t& s, const curve_client& c);

// What a client socket's monitor has seen of its connection to the broker.
class link_watch {
  public:
    // Starts monitoring `s`, which is about to connect to `endpoint`.
    link_watch(zmq::context_t& ctx, zmq::socket_t& s, std::string endpoint, bool curve);
    ~link_watch();
    link_watch(const link_watch&) = delete;
    link_watch& operator=(const link_watch&) = delete;

    // Waits up to `timeout` for `s` to become readable, reading the monitor's
    // events meanwhile. Returns: whether `s` is readable.
    // Throws: pingan::error(unauthorized) when the latest handshake with the
    // broker failed (on every call, until a handshake succeeds).
    bool wait(std::chrono::milliseconds timeout);

    // Waits until `s` can take a message, reading the monitor's events meanwhile.
    // A DEALER whose only connection was refused at the handshake has nowhere
    // left to queue a message and would block on send for ever.
    // Throws: pingan::error(unauthorized) when the latest handshake with the
    // broker failed (on every call, until a handshake succeeds);
    // pingan::error(io_error) when `s` could not take a message within
    // `timeout`.
    void writable(std::chrono::milliseconds timeout);

    // A ZMTP handshake with the broker completed (the broker is there and let us in).
    bool answered() const noexcept { return answered_; }
    const std::string& endpoint() const noexcept { return endpoint_; }

    // Calls `say` once, with a line such as "waiting for the broker at
    // tcp://127.0.0.1:7401 (no answer yet)", if no handshake completed
    // within `after` of the watch starting.
    void notice_after(std::chrono::milliseconds after, std::function<void(const std::string&)> say);

  private:
    void drain();

    zmq::socket_t& sock_;
    zmq::socket_t mon_;
    std::string endpoint_;
    bool curve_ = false;
    bool answered_ = false;
    bool tcp_connected_ = false;
    std::optional<error> refusal_; // the latest handshake failed: why
    std::chrono::steady_clock::time_point started_;
    std::chrono::milliseconds notice_after_{0};
    std::function<void(const std::string&)> say_;
};

// A reply to one publish request.
struct publish_reply {
    std::string tag;
    bool refused = false;              // ERR: the whole request was refused
    errc code = errc::ok;              // when refused
    std::string message;               // when refused
    std::vector<wire::result> results; // one per event, in request order
};

class ingest_client {
  public:
    // With `curve`, the connection is encrypted and authenticated (CURVE).
    ingest_client(zmq::context_t& ctx, const std::string& endpoint,
                  const curve_client* curve = nullptr);

    // Sends one request of binary (PUB) or JSON (PUBJ) events; does not wait.
    void send(std::span<const std::string> frames, bool json, std::string_view tag);

    // Waits up to `timeout` for the next reply.
    // Returns: the reply, or nothing on timeout.
    // Throws: pingan::error(bad_command) if the reply is not of the protocol.
    std::optional<publish_reply> receive(std::chrono::milliseconds timeout);

    // Publishes binary events and waits for their reply, resending the same
    // request (same ids, so it is stored once) after each timeout, up to `tries`.
    // Throws: pingan::error(io_error) when no reply came.
    publish_reply publish(std::span<const event> events, std::chrono::milliseconds timeout = 5s,
                          int tries = 3);

    zmq::socket_t& socket() noexcept { return sock_; }
    link_watch& link() noexcept { return *link_; }

  private:
    zmq::socket_t sock_;
    std::unique_ptr<link_watch> link_;
    std::uint64_t next_tag_ = 0;
};

// A replay request; see docs/protocol.md (REPLAY).
struct replay_request {
    std::uint64_t from = 1;
    std::uint64_t to = 0;
    std::string from_time, to_time; // RFC 3339, empty for none
    std::string type, school, district;
    std::uint64_t limit = 0;
    std::uint64_t credit = 1000; // granted per round trip
    bool json = false;
    // Binary events many to a frame (docs/protocol.md, "packed"); false asks
    // for the one-frame-per-event binary format of brokers before it.
    bool packed = true;
    // "export": the broker logs what it sent as access.viewed (pingan export).
    std::string purpose;
};

struct replay_end {
    std::uint64_t next = 0;  // first offset not examined
    std::uint64_t count = 0; // events sent
    std::uint64_t head = 0;  // the store's head when the replay ended
};

class query_client {
  public:
    query_client(zmq::context_t& ctx, const std::string& endpoint,
                 const curve_client* curve = nullptr);

    // Streams a replay, granting more credit as events arrive. `visit` gets
    // each event's offset and payload (binary event, or a JSON line) and may
    // return false to cancel.
    // Throws: pingan::error with the broker's code if it refused the request,
    // or io_error if it stopped answering for `timeout`.
    replay_end replay(const replay_request& r,
                      const std::function<bool(std::uint64_t, std::string_view)>& visit,
                      std::chrono::milliseconds timeout = 10s);

    // Returns: the STATS reply (head, events, file_bytes, map_bytes, by_type).
    json stats(std::chrono::milliseconds timeout = 5s);

    // Moves a broker's manual clock: {"advance": "10m"} or {"set": "<time>"}; {}
    // only reads it. Returns: {"now": "<time>"}.
    // Throws: pingan::error(forbidden) if the broker's clock is not manual.
    json clock(const json& params, std::chrono::milliseconds timeout = 5s);

    // Any single-reply command (STATS, CLOCK, INCIDENTS, INCIDENT).
    // Returns: the reply's JSON frame.
    // Throws: pingan::error with the broker's code if it refused the request,
    // or io_error if it did not answer within `timeout`.
    json request(std::string_view cmd, const json& params, std::chrono::milliseconds timeout);

    link_watch& link() noexcept { return *link_; }

  private:
    zmq::socket_t sock_;
    std::unique_ptr<link_watch> link_;
    std::uint64_t next_tag_ = 0;
};

// The live feed. Subscribe before replaying, so nothing falls between the two.
class feed_client {
  public:
    feed_client(zmq::context_t& ctx, const std::string& endpoint,
                const curve_client* curve = nullptr);
    void subscribe(const std::string& prefix);

    struct message {
        std::string topic;
        std::uint64_t offset = 0;
        std::string bytes; // binary event
    };
    // Returns: the next feed message, or nothing on timeout.
    std::optional<message> receive(std::chrono::milliseconds timeout);

    zmq::socket_t& socket() noexcept { return sock_; }
    link_watch& link() noexcept { return *link_; }

  private:
    zmq::socket_t sock_;
    std::unique_ptr<link_watch> link_;
};

} // namespace pingan
