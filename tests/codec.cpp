// Tests for common/codec.hpp: binary and JSON forms of events.
#include "common/codec.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <limits>

using namespace pingan;
using namespace pingan::test;

TEST_CASE("binary encoding round trips every field", "[codec]") {
    auto e = sample_hazard();
    e.offset = 42;
    e.district = "420502";
    e.actor = "school:420502K001";
    e.received_at = at("2026-11-29T01:00:01.5Z");
    e.references.push_back(new_event_id(at("2026-11-28T00:00:00Z")));
    std::get<hazard_reported>(e.body).deadline = at("2026-12-06T00:00:00Z");
    auto bytes = encode(e);
    event back;
    REQUIRE_FALSE(decode(bytes, back));
    CHECK(encode(back) == bytes);
    CHECK(back.offset == 42);
    CHECK(back.type() == "hazard.reported");
    CHECK(std::get<hazard_reported>(back.body).description == "二楼走廊护栏松动");
    CHECK(std::get<hazard_reported>(back.body).deadline == at("2026-12-06T00:00:00Z"));
}

TEST_CASE("every body type round trips through binary and json", "[codec]") {
    for (auto t : known_types()) {
        auto e = sample_hazard();
        e.body = *make_body(t);
        auto bytes = encode(e);
        event back;
        INFO(t);
        REQUIRE_FALSE(decode(bytes, back));
        CHECK(back.type() == t);
        event from;
        REQUIRE_FALSE(from_json(to_json(e), from));
        CHECK(encode(from) == bytes);
    }
}

TEST_CASE("peek reads offset type school and district without decoding", "[codec]") {
    auto e = sample_hazard();
    e.offset = 7;
    e.district = "420502";
    auto bytes = encode(e);
    event_head h;
    REQUIRE(peek(bytes, h));
    CHECK(h.offset == 7);
    CHECK(h.type == "hazard.reported");
    CHECK(h.school == "420502K001");
    CHECK(h.district == "420502");
    CHECK_FALSE(peek("garbage", h));
}

TEST_CASE("received_at's position read from the bytes matches the one computed from the event",
          "[codec]") {
    auto e = sample_hazard();
    e.district = "420502";
    e.actor = "school-420502K001";
    auto bytes = encode(e);
    auto pos = received_at_position(std::string_view(bytes));
    REQUIRE(pos);
    CHECK(*pos == received_at_position(e));
    CHECK_FALSE(received_at_position(std::string_view(bytes).substr(0, *pos + 4)));
    CHECK_FALSE(received_at_position(std::string_view("garbage")));
}

TEST_CASE("decoding garbage or truncated bytes reports undecodable", "[codec]") {
    event out;
    CHECK(decode("", out).code == errc::undecodable);
    CHECK(decode(std::string(100, '\xff'), out).code != errc::ok);
    auto bytes = encode(sample_hazard());
    for (std::size_t n : {std::size_t{1}, std::size_t{10}, bytes.size() / 2, bytes.size() - 1})
        CHECK(decode(bytes.substr(0, n), out).code != errc::ok);
    CHECK(decode(bytes + "x", out).code == errc::undecodable);
}

TEST_CASE("a time outside years 0000 to 9999 is refused in binary, as json cannot name it",
          "[codec]") {
    for (auto us : {std::numeric_limits<std::int64_t>::min(), earliest_us - 1, latest_us + 1,
                    std::numeric_limits<std::int64_t>::max()}) {
        auto e = sample_hazard();
        e.occurred_at = from_us(us);
        event out;
        auto p = decode(encode(e), out);
        INFO(us);
        CHECK(p.code == errc::undecodable);
        CHECK(p.detail.find("outside years 0000 to 9999") != std::string::npos);
        CHECK(format_utc(e.occurred_at) == "@" + std::to_string(us) + "us");
        CHECK(format_local(e.occurred_at) == "@" + std::to_string(us) + "us");
    }
    for (auto us : {earliest_us, latest_us}) {
        auto e = sample_hazard();
        e.occurred_at = from_us(us);
        event out;
        REQUIRE_FALSE(decode(encode(e), out));
        event from;
        REQUIRE_FALSE(from_json(to_json(out), from));
        CHECK(from.occurred_at == e.occurred_at);
    }
    CHECK(format_utc(from_us(earliest_us)) == "0000-01-01T00:00:00.000000Z");
    CHECK(format_utc(from_us(latest_us)) == "9999-12-31T23:59:59.999999Z");
}

TEST_CASE("a huge length prefix is refused without allocating", "[codec]") {
    auto bytes = encode(sample_hazard());
    // The type string's length is at byte 26; claim 2^60 bytes.
    bytes[26 + 7] = 0x10;
    event out;
    CHECK(decode(bytes, out).code == errc::undecodable);
}

TEST_CASE("a newer body version is refused as unsupported", "[codec]") {
    auto bytes = encode(sample_hazard());
    // The body version follows the references count; find it by re-encoding a marker.
    event e = sample_hazard();
    auto head = encode(e);
    // The last body field is a bool and the body starts with its u32 version;
    // locate it by scanning for the hazard body's version (2) right after the
    // references count (0).
    auto pos = head.find(std::string("\0\0\0\0\0\0\0\0\x02\0\0\0", 12));
    REQUIRE(pos != std::string::npos);
    head[pos + 8] = 9;
    event out;
    CHECK(decode(head, out).code == errc::unsupported_version);
}

TEST_CASE("json names the missing field", "[codec]") {
    json j = to_json(sample_hazard());
    j["body"].erase("area");
    event e;
    auto p = from_json(j, e);
    CHECK(p.code == errc::missing_field);
    CHECK(p.detail == "body.area is required");
}

TEST_CASE("json names an unknown enumerator and lists the choices", "[codec]") {
    json j = to_json(sample_hazard());
    j["body"]["area"] = "roof";
    event e;
    auto p = from_json(j, e);
    CHECK(p.code == errc::unknown_enum);
    CHECK(p.detail.find("body.area") == 0);
    CHECK(p.detail.find("surroundings") != std::string::npos);
}

TEST_CASE("json refuses unknown types, wrong types and unknown body fields", "[codec]") {
    event e;
    json j = to_json(sample_hazard());
    j["type"] = "hazard.imagined";
    CHECK(from_json(j, e).code == errc::unknown_type);
    j = to_json(sample_hazard());
    j["body"]["area_closed"] = "yes";
    CHECK(from_json(j, e).code == errc::wrong_type);
    j = to_json(sample_hazard());
    j["body"]["colour"] = "red";
    CHECK(from_json(j, e).code == errc::bad_value);
    j = to_json(sample_hazard());
    j["status"] = "Maybe";
    CHECK(from_json(j, e).code == errc::unknown_enum);
    j = to_json(sample_hazard());
    j.erase("status");
    CHECK(from_json(j, e).code == errc::missing_field);
}

TEST_CASE("invalid utf-8 in json text is reported as invalid_utf8", "[codec]") {
    json j;
    std::string text = R"({"type":"hazard.reported","school":"420502K001","x":")";
    text += "\xc3\x28";
    text += R"("})";
    CHECK(parse_json(text, j).code == errc::invalid_utf8);
    CHECK(parse_json("{not json", j).code == errc::malformed_json);
}

TEST_CASE("a number too large for a double is malformed json, not an exception", "[codec]") {
    json j;
    auto p = parse_json(R"({"id":5e6123456789})", j);
    CHECK(p.code == errc::malformed_json);
    CHECK(p.detail.find("5e6123456789") != std::string::npos);
    CHECK(parse_json(R"({"n":-1e99999})", j).code == errc::malformed_json);
}

TEST_CASE("invalid utf-8 in a json event names the field and the byte within it", "[codec]") {
    json j;
    std::string text =
        R"({"type":"hazard.reported","school":"420502K001","body":{"hazard_id":"H1",)"
        R"("description":"ok \"q\" )";
    text += "\xff";
    text += R"( rest","photos":["a.jpg","b)";
    text += "\xc3\x28";
    text += R"("]}})";
    auto p = parse_json(text, j);
    CHECK(p.code == errc::invalid_utf8);
    CHECK(p.detail == "body.description: invalid UTF-8 at byte 9");

    std::string list = R"({"body":{"photos":["a.jpg","b)";
    list += "\xc3\x28";
    list += R"("]}})";
    p = parse_json(list, j);
    CHECK(p.code == errc::invalid_utf8);
    CHECK(p.detail == "body.photos[1]: invalid UTF-8 at byte 1");

    std::string key = R"({"body":{"de)";
    key += "\xff";
    key += R"(":"x"}})";
    p = parse_json(key, j);
    CHECK(p.code == errc::invalid_utf8);
    CHECK(p.detail == "a key after body: invalid UTF-8 at byte 2");
}

TEST_CASE("times in json are rfc 3339 utc", "[codec]") {
    auto j = to_json(sample_hazard());
    CHECK(j["occurred_at"] == "2026-11-29T01:00:00.000000Z");
    j["occurred_at"] = "2026-11-29T09:00:00+08:00";
    event e;
    REQUIRE_FALSE(from_json(j, e));
    CHECK(e.occurred_at == at("2026-11-29T01:00:00Z"));
    j["occurred_at"] = "yesterday";
    CHECK(from_json(j, e).code == errc::bad_value);
}

TEST_CASE("a sample reading encodes to about 300 bytes", "[codec]") {
    auto e = sample_reading("420502K001", 1);
    e.district = "420502";
    e.actor = "school:420502K001";
    auto n = encode(e).size();
    CHECK(n > 200);
    CHECK(n < 400);
}

TEST_CASE("a boolean byte other than 0 or 1 is refused, never loaded into a bool", "[codec]") {
    // Found by the event_binary fuzz target (tests/fuzz/corpus/event_binary/crash-22a9…):
    // an optional field's presence byte is 0x0c.
    const std::string hex =
        "010101937c5e8a417cc29f3e1b2d3c4d5e6f00000000000000200f0000000000000068617a6172642e7265"
        "706f727465640a000000000000003633393630314b3030310000000000000000150000000000000070696e"
        "67616e2d68617a6172642f6b696f736b2d320000000000000000006404d05f61060000340cd05f610600"
        "00020100010000000000000000010000000400000000000000485a2d370201001b00000000000000e5aebf"
        "e8888de6a5bce6b688e998b2e9809ae98193e5a0b5e5a19e0d0000000000000033e58fb7e5aebfe8888de6"
        "a5bc0e000000000000007361666574795f6f66666963657200000000000000000000010600000000000000"
        "e5b081e997ad0c";
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    event e;
    auto p = decode(bytes, e);
    REQUIRE(p);
    CHECK(p.code == errc::undecodable);
}

TEST_CASE("a hazard's photo references round trip, and a version 1 hazard still decodes",
          "[codec]") {
    auto e = sample_hazard();
    auto& h = std::get<hazard_reported>(e.body);
    h.photo_refs = {{std::string(64, 'a'), 48213, "image/jpeg"},
                    {std::string(64, 'b'), 1024, "image/png"}};
    auto bytes = encode(e);
    event back;
    REQUIRE_FALSE(decode(bytes, back));
    CHECK(encode(back) == bytes);
    const auto& refs = std::get<hazard_reported>(back.body).photo_refs;
    REQUIRE(refs.size() == 2);
    CHECK(refs[1].hash == std::string(64, 'b'));
    CHECK(refs[1].size == 1024);
    CHECK(refs[1].type == "image/png");

    auto j = to_json(e);
    CHECK(j["body"]["photo_refs"][0] ==
          json({{"hash", std::string(64, 'a')}, {"size", 48213}, {"type", "image/jpeg"}}));
    event from;
    REQUIRE_FALSE(from_json(j, from));
    CHECK(encode(from) == bytes);
    j["body"]["photo_refs"][0].erase("size");
    j["body"]["photo_refs"][1]["note"] = "x";
    auto p = from_json(j, from);
    CHECK(p.detail == "body.photo_refs[1].note: unknown field");
    j["body"]["photo_refs"][0]["size"] = -1;
    CHECK(from_json(j, from).detail == "body.photo_refs[0].size: must not be negative");

    // The same hazard as version 1 wrote it: no photo_refs after area_closed.
    h.photo_refs.clear();
    auto v2 = encode(e);
    std::string needle("\x02\0\0\0", 4);
    for (int i = 0; i < 8; ++i)
        needle += static_cast<char>(i == 0 ? h.hazard_id.size() : 0);
    needle += h.hazard_id;
    auto at_version = v2.find(needle);
    REQUIRE(at_version != std::string::npos);
    auto v1 = v2.substr(0, v2.size() - 8);
    v1[at_version] = '\x01';
    event old;
    REQUIRE_FALSE(decode(v1, old));
    CHECK(std::get<hazard_reported>(old.body).photo_refs.empty());
    CHECK(std::get<hazard_reported>(old.body).description == h.description);
}
