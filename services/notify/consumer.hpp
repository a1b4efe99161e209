// The page feed: catch-up then live, with no gap and no duplicate.
//
// Like `pingan tail --from`, it subscribes to the live feed first, replays the
// log from the position on, then takes live pages, skipping offsets it has
// seen and replaying any range the feed skipped. While idle it asks the broker
// once a second for pages after its position, which also tells it the head
// (for the lag metric) and finds a page whose live copy was dropped. It runs
// on its own thread with the synchronous clients; every page and every
// progress report is posted, in log order, to the io_context.
//
// With a JetStream source (--jetstream) it reads the replicated log from the
// stream instead of the broker: an ordered consumer from the position on,
// catch-up then live in one, which keeps going while the broker is away (a
// failover). Records removed from the stream (a gap) are read from the
// broker's replay, and the stream is read on after them.
#pragma once

#include "common/curve.hpp"
#include "common/stream_reader.hpp"
#include "services/common/net.hpp"

#include <spdlog/logger.h>
#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace pingan::notify {

struct consumer_options {
    std::string feed, query;
    std::optional<curve_client> curve;
    std::optional<jetstream_source> jetstream; // read the stream, not the broker's feed
};

class consumer {
  public:
    using page_fn = std::function<void(std::uint64_t offset, std::string bytes)>;
    // The log was examined up to `position`; the store's head is `head`.
    using progress_fn = std::function<void(std::uint64_t position, std::uint64_t head)>;

    consumer(svc::net::io_context& ioc, consumer_options o, std::shared_ptr<spdlog::logger> log,
             page_fn on_page, progress_fn on_progress);
    ~consumer();

    // Starts after offset `position`.
    void start(std::uint64_t position);
    void stop();

  private:
    void run(std::uint64_t position);
    void run_stream(std::uint64_t position);
    // Pages after `last` from the broker's replay, up to its head.
    // Returns: the last offset examined.
    std::uint64_t pages_from_broker(std::uint64_t last);
    void post_page(std::uint64_t offset, std::string_view bytes);
    // Waits about a second, or less if stopped.
    void pause();

    svc::net::io_context& ioc_;
    consumer_options opts_;
    std::shared_ptr<spdlog::logger> log_;
    page_fn on_page_;
    progress_fn on_progress_;
    std::atomic<bool> stop_{false};
    // Shut down from stop(): a replay or receive waiting on the broker ends at once.
    zmq::context_t ctx_{1};
    std::thread thread_;
};

} // namespace pingan::notify
