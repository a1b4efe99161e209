// The writer (writer.cpp): group commit, escalation timers, durability and
// the live feed. It runs either on its own thread, waiting on the pipeline
// (run), or, with broker_options::commit_on_ingest, in turns of the ingest
// thread's loop (add, turn), the way the raw baseline works: read what
// arrived, commit it, answer, with no hand-off between threads.
#pragma once

#include "broker/server/broker.hpp"
#include "broker/server/pipeline.hpp"

#include <chrono>
#include <memory>
#include <vector>

namespace pingan {

class writer_loop;

class writer {
  public:
    explicit writer(broker::impl& b);
    ~writer();
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;

    // Its own thread: turns until the pipeline is closed and empty.
    void run();

    // Ingest's turns. add: events admitted by ingest, for the next turn.
    void add(std::vector<prepared_event>& events, std::vector<owner_tag>& owners);
    // One turn without waiting: what add() gave and what other threads
    // queued is committed; what is due fires; committed transactions are
    // made durable and released (pipeline::complete, without a wake-up).
    void turn();
    // When the next turn is due even if nothing arrives: `now` while acks
    // wait for a sync, else the next timer (at most 200 ms away).
    std::chrono::steady_clock::time_point
    wake_time(std::chrono::steady_clock::time_point now) const;

  private:
    std::unique_ptr<writer_loop> loop_;
};

} // namespace pingan
