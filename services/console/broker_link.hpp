// The console's two conversations with the broker, each on its own thread
// (ZeroMQ sockets stay on one thread):
//
// - the follower reads the log: catch-up by replay from offset 1, then the
//   live feed, filling any jump in offsets (and, when the feed is quiet,
//   whatever a broker restart may have lost) by replay; every event reaches
//   the io_context once, in offset order; or, with a JetStream source, the
//   same from the broker's replicated stream (catch-up then live in one
//   ordered consumer), which goes on while the broker is away;
// - the actor publishes the console's events (acknowledgements, notes,
//   access.viewed) through ingest, on the broker's own time.
#pragma once

#include "common/client.hpp"
#include "common/event.hpp"
#include "common/stream_reader.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace pingan::console {

struct broker_endpoints {
    std::string ingest = "tcp://127.0.0.1:7401";
    std::string feed = "tcp://127.0.0.1:7402";
    std::string query = "tcp://127.0.0.1:7403";
    std::optional<curve_client> curve;
    std::optional<jetstream_source> stream; // read the log from JetStream, not feed and replays
};

class follower {
  public:
    // `deliver` and `caught_up` run on `ioc`'s thread.
    follower(boost::asio::io_context& ioc, zmq::context_t& ctx, const broker_endpoints& ep,
             std::function<void(event)> deliver, std::function<void()> caught_up);
    ~follower();
    void start();
    void stop();

  private:
    void run();
    void run_stream();
    // Decodes the record at `off` (minors' details redacted when `redact`)
    // and hands it to the io_context.
    void pass_on(std::uint64_t off, std::string_view bytes, bool redact);
    boost::asio::io_context& ioc_;
    zmq::context_t& ctx_;
    broker_endpoints ep_;
    std::function<void(event)> deliver_;
    std::function<void()> caught_up_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// What became of one published event.
struct publish_outcome {
    bool ok = false;
    std::uint64_t offset = 0;
    std::string error; // when not ok
};

class actor {
  public:
    actor(boost::asio::io_context& ioc, zmq::context_t& ctx, const broker_endpoints& ep);
    ~actor();
    void start();
    void stop();
    // Publishes `e` with occurred_at and id taken from the broker's clock;
    // `done` runs on the io_context's thread.
    void publish(event e, std::function<void(publish_outcome)> done);
    // Reads the broker's clock (CLOCK, or this machine's time if the broker
    // refuses); `done` runs on the io_context's thread.
    void read_clock(std::function<void(timestamp)> done);

  private:
    void run();
    boost::asio::io_context& ioc_;
    zmq::context_t& ctx_;
    broker_endpoints ep_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::pair<event, std::function<void(publish_outcome)>>> jobs_;
    std::deque<std::function<void(timestamp)>> clock_jobs_;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace pingan::console
