// Tests for common/time.hpp.
#include "common/time.hpp"

#include <catch2/catch.hpp>

using namespace pingan;

TEST_CASE("utc text round trips with microseconds", "[time]") {
    auto t = parse_utc("2026-11-29T07:31:50.123456Z");
    REQUIRE(t);
    CHECK(format_utc(*t) == "2026-11-29T07:31:50.123456Z");
}

TEST_CASE("offsets are converted to utc", "[time]") {
    auto t = parse_utc("2026-11-29T15:31:50+08:00");
    REQUIRE(t);
    CHECK(format_utc(*t) == "2026-11-29T07:31:50.000000Z");
}

TEST_CASE("local time is china standard time", "[time]") {
    CHECK(format_local(*parse_utc("2026-11-29T20:00:00Z")) == "2026-11-30 04:00:00 CST");
}

TEST_CASE("malformed times are refused", "[time]") {
    CHECK_FALSE(parse_utc(""));
    CHECK_FALSE(parse_utc("2026-11-29"));
    CHECK_FALSE(parse_utc("2026-13-01T00:00:00Z"));
    CHECK_FALSE(parse_utc("2026-02-30T00:00:00Z"));
    CHECK_FALSE(parse_utc("2026-11-29T07:31:50"));
    CHECK_FALSE(parse_utc("2026-11-29T07:31:50Zjunk"));
    CHECK_FALSE(parse_utc("0000-01-01T00:00:00+08:00")); // before year 0000 in UTC
    CHECK(parse_utc("0000-01-01T00:00:00Z"));
    CHECK(parse_utc("9999-12-31T23:59:59.999999Z"));
}

TEST_CASE("durations parse and format", "[time]") {
    CHECK(parse_duration("10m") == micros{600'000'000});
    CHECK(parse_duration("2h30m") == micros{9'000'000'000});
    CHECK(parse_duration("1500ms") == micros{1'500'000});
    CHECK_FALSE(parse_duration("10"));
    CHECK_FALSE(parse_duration("m"));
    // Past a 64-bit count of microseconds, in one part or in the sum: refused, not wrapped.
    CHECK_FALSE(parse_duration("452452379d"));
    CHECK_FALSE(parse_duration("1000000000w"));
    CHECK_FALSE(parse_duration("999999999h999999999h999999999h"));
    CHECK(parse_duration("1000000000s") == micros{1'000'000'000'000'000});
    CHECK(format_duration(micros{9'000'000'000}) == "2h30m");
    CHECK(format_duration(micros{0}) == "0s");
}
