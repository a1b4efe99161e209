// The one source of "now" for the broker, services and simulator.
//
// Code that needs the time takes a `const clock&`; tests and the simulator
// drive a manual or scaled clock so that a simulated term runs in minutes and a
// deadline can be tested to the second. The escalation engine never reads a
// clock: its time is the input event's received_at.
#pragma once

#include "time.hpp"

#include <atomic>
#include <memory>
#include <string_view>

namespace pingan {

class clock {
  public:
    virtual ~clock() = default;
    virtual timestamp now() const noexcept = 0;
};

// The operating system's real-time clock.
class system_clock final : public clock {
  public:
    timestamp now() const noexcept override;
};

// Time moves only when told to. Thread-safe.
class manual_clock final : public clock {
  public:
    explicit manual_clock(timestamp start) : us_(to_us(start)) {}
    timestamp now() const noexcept override { return from_us(us_.load()); }
    void set(timestamp t) noexcept { us_.store(to_us(t)); }
    void advance(micros d) noexcept { us_.fetch_add(d.count()); }

  private:
    std::atomic<std::int64_t> us_;
};

// Simulated time that starts at `start` and runs `factor` times faster than real time.
class scaled_clock final : public clock {
  public:
    scaled_clock(timestamp start, double factor);
    timestamp now() const noexcept override;

  private:
    timestamp start_;
    std::int64_t real_start_us_;
    double factor_;
};

// Makes a clock from its configuration text:
//   "system"
//   "manual:2026-09-01T00:00:00Z"
//   "scaled:60:2026-09-01T00:00:00Z"   (60 simulated seconds per real second)
// Throws: pingan::error(bad_config) naming what is wrong.
std::unique_ptr<clock> make_clock(std::string_view spec);

} // namespace pingan
