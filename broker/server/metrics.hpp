// The broker's metrics: counters the ingest, writer and query threads bump
// (relaxed atomics, one line at each place), and a small HTTP listener that
// serves them as GET /metrics in the Prometheus text format.
//
// The counters are one process-wide object, so that the threads need no new
// member to reach it; the listener is off unless `--metrics HOST:PORT` (or
// `metrics:` in broker.yaml) asks for it, and binds to loopback by default.
#pragma once

#include "broker/store/store.hpp"
#include "common/errc.hpp"
#include "common/prometheus.hpp"
#include "common/wire.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace pingan {

class broker_metrics {
  public:
    // The process's one set of broker counters.
    static broker_metrics& get();

    // Ingest: the results of one answered request (acks and nacks by code).
    void answered(std::span<const wire::result> results) noexcept;
    // Ingest: a whole request refused before admission (one nack).
    void refused(errc code) noexcept;
    // Ingest: events admitted and not yet committed.
    void queue_depth(std::size_t n) noexcept { ingest_queue_.store(n, relaxed); }
    // Writer: one group commit of `events` events.
    void committed(std::size_t events, std::chrono::steady_clock::duration took) noexcept;
    // Writer: what a transaction stored (events and derived events, by type).
    void stored(const batch_output& out) noexcept;
    // Writer: live subscriptions on the feed, and messages it sent or could not send.
    void feed_subscriptions(std::size_t n) noexcept { feed_subs_.store(n, relaxed); }
    void feed_sent(bool sent) noexcept { (sent ? feed_sent_ : feed_drops_).fetch_add(1, relaxed); }
    // Now: feed subscriptions, and events admitted and not yet committed.
    std::size_t subscriptions_now() const noexcept { return feed_subs_.load(relaxed); }
    std::size_t queued_now() const noexcept { return ingest_queue_.load(relaxed); }
    // Query: replay streams open now.
    void replay_streams(std::size_t n) noexcept { replays_.store(n, relaxed); }

    // The exposition; `more` adds families (the engine's incidents).
    std::string render(const std::function<void(prom::writer&)>& more = {}) const;

  private:
    broker_metrics();
    static constexpr auto relaxed = std::memory_order_relaxed;
    static constexpr std::size_t codes = 32; // errc values are below this

    std::unique_ptr<std::atomic<std::uint64_t>[]> by_type_; // known_types() order, then other
    std::size_t types_ = 0;
    std::atomic<std::uint64_t> acks_stored_{0}, acks_duplicate_{0};
    std::array<std::atomic<std::uint64_t>, codes> nacks_{};
    std::atomic<std::uint64_t> ingest_queue_{0};
    prom::histogram<13> batch_events_{
        {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}};
    prom::histogram<12> commit_seconds_{
        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
    std::atomic<std::uint64_t> feed_subs_{0}, feed_sent_{0}, feed_drops_{0};
    std::atomic<std::uint64_t> replays_{0};
};

// GET /metrics on its own thread and io_context, until stop().
class metrics_server {
  public:
    // Binds HOST:PORT (port 0: any). Throws: pingan::error(bad_config) for an
    // address that is not HOST:PORT or cannot be bound.
    metrics_server(const std::string& host_port, std::function<std::string()> render);
    ~metrics_server();
    // The bound address, HOST:PORT.
    std::string bound() const;
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace pingan
