// The Prometheus text exposition format (version 0.0.4), for every program's
// GET /metrics: counters, gauges and histograms with labels, written in one
// place so that names, escaping and the HELP/TYPE lines are the same
// everywhere. No I/O: the caller takes the text and serves it.
//
// Names follow the Prometheus conventions: `pingan_<program>_<what>`, counters
// end in `_total`, and units are in the name (`_seconds`, `_events`).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pingan::prom {

// The content type of the text format.
inline constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

using labels = std::vector<std::pair<std::string, std::string>>;

struct sample {
    prom::labels labels;
    double value = 0;
};

// A histogram's state: cumulative counts per upper bound (`le`), then +Inf.
struct histogram_snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> counts; // per bound, not cumulative; one more for +Inf
    double sum = 0;
};

// A histogram updated from one thread or many (relaxed atomics; a scrape may
// see a sum a moment ahead of its counts, as Prometheus allows).
template <std::size_t N> class histogram {
  public:
    explicit histogram(std::array<double, N> bounds) : bounds_(bounds) {}
    void observe(double v) noexcept {
        std::size_t i = 0;
        while (i < N && v > bounds_[i])
            ++i;
        counts_[i].fetch_add(1, std::memory_order_relaxed);
        // Sums as integer micro-units: atomic double add is not portable.
        sum_micro_.fetch_add(static_cast<std::int64_t>(v * 1e6), std::memory_order_relaxed);
    }
    histogram_snapshot snapshot() const {
        histogram_snapshot s;
        s.bounds.assign(bounds_.begin(), bounds_.end());
        for (const auto& c : counts_)
            s.counts.push_back(c.load(std::memory_order_relaxed));
        s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
        return s;
    }

  private:
    std::array<double, N> bounds_;
    std::array<std::atomic<std::uint64_t>, N + 1> counts_{};
    std::atomic<std::int64_t> sum_micro_{0};
};

// Builds one exposition. Each family is written once, with its HELP and TYPE.
class writer {
  public:
    writer& counter(std::string_view name, std::string_view help, double value);
    writer& gauge(std::string_view name, std::string_view help, double value);
    // A family with labelled samples; `type` is "counter" or "gauge".
    writer& family(std::string_view name, std::string_view type, std::string_view help,
                   std::span<const sample> samples);
    writer& histogram(std::string_view name, std::string_view help, const histogram_snapshot& h,
                      const labels& l = {});
    std::string str() const { return out_.str(); }

  private:
    void head(std::string_view name, std::string_view type, std::string_view help);
    void line(std::string_view name, const labels& l, double value);

    std::ostringstream out_;
};

// A label value with backslash, double quote and newline escaped.
std::string escape_label(std::string_view v);

} // namespace pingan::prom
