// Timestamps: UTC with microsecond resolution, as the event model stores them.
//
// Text forms: RFC 3339 in UTC for machines ("2026-11-29T07:31:50.123456Z"), and
// China Standard Time (UTC+8, no daylight saving since 1991) for people
// ("2026-11-29 15:31:50 CST"). No clock is read here: see clock.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pingan {

using micros = std::chrono::microseconds;
using timestamp = std::chrono::sys_time<micros>;

inline std::int64_t to_us(timestamp t) noexcept {
    return t.time_since_epoch().count();
}
inline timestamp from_us(std::int64_t us) noexcept {
    return timestamp{micros{us}};
}

// The instants an RFC 3339 text can name: 0000-01-01T00:00:00Z up to
// 9999-12-31T23:59:59.999999Z. Events carry times only in this range, so every
// stored event has a text form that parses back to the same instant.
inline constexpr std::int64_t earliest_us = -62'167'219'200'000'000;
inline constexpr std::int64_t latest_us = 253'402'300'799'999'999;
inline bool representable(timestamp t) noexcept {
    return to_us(t) >= earliest_us && to_us(t) <= latest_us;
}

// "2026-11-29T07:31:50.123456Z"; an instant outside representable() is written
// as its microsecond count, "@-9223372036854775808us", never a wrong date.
std::string format_utc(timestamp t);

// "2026-11-29 15:31:50 CST" (Asia/Shanghai)
std::string format_local(timestamp t);

// Parses RFC 3339: a date, 'T' or ' ', a time with optional fraction (up to 9
// digits, truncated to microseconds), and 'Z' or a ±hh:mm offset.
// Returns: the instant, or nothing if the text is not of that form or names an
// instant outside representable() (a year-0000 date with a positive offset).
std::optional<timestamp> parse_utc(std::string_view text);

// Parses a duration such as "90s", "10m", "2h", "7d", "1500ms" or "2h30m".
std::optional<micros> parse_duration(std::string_view text);

// "2h30m", "10m", "45s", "0s"
std::string format_duration(micros d);

} // namespace pingan
