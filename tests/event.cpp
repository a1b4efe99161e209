// Tests for common/event.hpp and common/event_id.hpp.
#include "common/event.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

using namespace pingan;

TEST_CASE("every body type has a unique name that makes its body", "[event]") {
    std::set<std::string_view> seen;
    for (auto t : known_types()) {
        CHECK(seen.insert(t).second);
        auto b = make_body(t);
        REQUIRE(b);
        CHECK(type_name(*b) == t);
    }
    CHECK(seen.count("hazard.reported"));
    CHECK(seen.count("psych.alert"));
    CHECK_FALSE(make_body("hazard.nonexistent"));
}

TEST_CASE("event ids are uuidv7 and round trip as text", "[event]") {
    auto t = *parse_utc("2026-11-29T07:31:50Z");
    auto id = new_event_id(t);
    auto s = id.str();
    CHECK(s.size() == 36);
    CHECK(s[14] == '7');
    auto back = event_id::parse(s);
    REQUIRE(back);
    CHECK(*back == id);
    CHECK_FALSE(event_id::parse("not-a-uuid"));
    CHECK_FALSE(event_id::parse("0192zzzz-8a41-7cc2-9f3e-1b2d3c4d5e6f"));
}

TEST_CASE("event ids made later sort later", "[event]") {
    auto a = new_event_id(*parse_utc("2026-11-29T07:31:50Z"));
    auto b = new_event_id(*parse_utc("2026-11-29T07:31:51Z"));
    CHECK(a < b);
}

TEST_CASE("enum names parse back and list their choices", "[event]") {
    CHECK(enum_name(status::exercise) == "Exercise");
    CHECK(enum_parse<severity>("Severe") == severity::severe);
    CHECK_FALSE(enum_parse<severity>("severe"));
    CHECK(enum_choices<hazard_grade>() == "general, major");
}
