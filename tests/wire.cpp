// Tests for common/wire.hpp.
#include "common/wire.hpp"
#include "common/codec.hpp"
#include "common/packed_events.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace pingan;

TEST_CASE("result frames round trip", "[wire]") {
    wire::result r;
    r.what = wire::outcome::rejected;
    r.code = errc::unknown_school;
    r.id = new_event_id(*parse_utc("2026-11-29T00:00:00Z"));
    r.offset = 0x0102030405060708ULL;
    r.message = "school \"X\" is not in the registry";
    auto f = wire::encode_result(r);
    CHECK(f.size() == wire::result_header + r.message.size());
    CHECK(f[2] == static_cast<char>(errc::unknown_school));
    auto back = wire::decode_result(f);
    REQUIRE(back);
    CHECK(back->what == r.what);
    CHECK(back->code == r.code);
    CHECK(back->id == r.id);
    CHECK(back->offset == r.offset);
    CHECK(back->message == r.message);
    CHECK_FALSE(wire::decode_result("short"));
}

TEST_CASE("json results name the error code", "[wire]") {
    wire::result r;
    r.what = wire::outcome::rejected;
    r.code = errc::missing_field;
    r.message = "body.area is required";
    auto j = json::parse(wire::result_json(r, 3));
    CHECK(j["index"] == 3);
    CHECK(j["error"]["code"] == "missing_field");
    r.what = wire::outcome::duplicate;
    r.offset = 9;
    j = json::parse(wire::result_json(r, 0));
    CHECK(j["duplicate"] == true);
    CHECK(j["offset"] == 9);
}

TEST_CASE("topics allow prefix filters by type district and school", "[wire]") {
    auto t = wire::type_topic("hazard.reported", "420502", "420502K001");
    auto p = wire::place_topic("420502", "420502K001", "hazard.reported");
    CHECK(t.starts_with(wire::subscription("hazard.", "", "")));
    CHECK(p.starts_with(wire::subscription("", "420502", "")));
    CHECK(p.starts_with(wire::subscription("", "", "420502K001")));
    CHECK_FALSE(p.starts_with(wire::subscription("", "420503", "")));
    CHECK(wire::subscription("", "", "") == "t/");
}

TEST_CASE("u64 little endian helpers round trip", "[wire]") {
    CHECK(wire::read_u64_le(wire::u64_le(1234567890123ULL)) == 1234567890123ULL);
    CHECK_FALSE(wire::read_u64_le("1234"));
}

TEST_CASE("packed replay frames round trip and refuse an entry cut short", "[wire]") {
    std::string frame;
    wire::append_packed(frame, 1, "first");
    wire::append_packed(frame, 0x0102030405060708ULL, "");
    wire::append_packed(frame, 3, std::string(70000, 'x'));
    CHECK(frame.size() == 3 * wire::packed_entry_head + 5 + 70000);
    wire::packed_reader r(frame);
    std::uint64_t off = 0;
    std::string_view bytes;
    REQUIRE(r.next(off, bytes));
    CHECK(off == 1);
    CHECK(bytes == "first");
    REQUIRE(r.next(off, bytes));
    CHECK(off == 0x0102030405060708ULL);
    CHECK(bytes.empty());
    REQUIRE(r.next(off, bytes));
    CHECK(off == 3);
    CHECK(bytes.size() == 70000);
    CHECK_FALSE(r.next(off, bytes));
    CHECK_FALSE(r.malformed());

    // Every cut of the frame that does not fall between entries is malformed.
    const std::size_t ends[] = {wire::packed_entry_head + 5, 2 * wire::packed_entry_head + 5};
    for (std::size_t cut = 1; cut < 2 * wire::packed_entry_head + 5 + 10; ++cut) {
        wire::packed_reader part(std::string_view(frame).substr(0, cut));
        std::size_t n = 0;
        while (part.next(off, bytes))
            ++n;
        bool boundary = std::find(std::begin(ends), std::end(ends), cut) != std::end(ends);
        INFO("cut at " << cut);
        CHECK(part.malformed() == !boundary);
    }
    wire::packed_reader none("");
    CHECK_FALSE(none.next(off, bytes));
    CHECK_FALSE(none.malformed());
}
