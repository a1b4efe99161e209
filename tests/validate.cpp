// Tests for common/validate.hpp.
#include "common/validate.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::test;

TEST_CASE("a well formed event validates", "[validate]") {
    CHECK_FALSE(validate(sample_hazard()));
}

TEST_CASE("utf-8 validation accepts chinese and rejects malformed sequences", "[validate]") {
    CHECK(valid_utf8("平安校园 safe campus"));
    CHECK(valid_utf8(""));
    CHECK_FALSE(valid_utf8("\xc3\x28"));
    CHECK_FALSE(valid_utf8("\xe4\xb8"));         // truncated
    CHECK_FALSE(valid_utf8("\xc0\xaf"));         // overlong
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));     // surrogate
    CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80")); // past U+10FFFF
    CHECK_FALSE(valid_utf8("abcdefghij\xff"));
}

TEST_CASE("invalid utf-8 in a body text names the field", "[validate]") {
    auto e = sample_hazard();
    std::get<hazard_reported>(e.body).description = "ok \xff";
    auto p = validate(e);
    CHECK(p.code == errc::invalid_utf8);
    CHECK(p.detail == "body.description: invalid UTF-8 at byte 3");
}

TEST_CASE("text over its limit names the field and the limit", "[validate]") {
    auto e = sample_hazard();
    std::get<hazard_reported>(e.body).description = std::string(2001, 'x');
    auto p = validate(e);
    CHECK(p.code == errc::too_long);
    CHECK(p.detail == "body.description is 2001 bytes; the limit is 2000");
    std::get<hazard_reported>(e.body).description = "x";
    std::get<hazard_reported>(e.body).photos.assign(17, "p");
    CHECK(validate(e).code == errc::too_long);
}

TEST_CASE("keys must be non-empty and without spaces", "[validate]") {
    auto e = sample_hazard();
    std::get<hazard_reported>(e.body).hazard_id = "";
    CHECK(validate(e).code == errc::missing_field);
    std::get<hazard_reported>(e.body).hazard_id = "HZ 1";
    CHECK(validate(e).code == errc::bad_value);
}

TEST_CASE("psych alerts must be private and carry codes, never free text", "[validate]") {
    auto e = sample_hazard();
    psych_alert a;
    a.alert_id = "PA-1";
    a.student_ref = "3f9a0c";
    a.level = risk_level::red;
    a.indicator_codes = {"SH.1"};
    a.reported_by_role = "psych_teacher";
    e.body = a;
    e.scope = scope::restricted;
    CHECK(validate(e).code == errc::bad_value);
    e.scope = scope::private_;
    CHECK_FALSE(validate(e));
    std::get<psych_alert>(e.body).indicator_codes = {"说了想死"};
    auto p = validate(e);
    CHECK(p.code == errc::bad_value);
    CHECK(p.detail.find("body.indicator_codes[0]") == 0);
}

TEST_CASE("a drill cannot end before it starts", "[validate]") {
    auto e = sample_hazard();
    drill_recorded d;
    d.drill_id = "D1";
    d.started_at = at("2026-11-29T02:00:00Z");
    d.all_clear_at = at("2026-11-29T01:59:00Z");
    e.body = d;
    CHECK(validate(e).code == errc::bad_value);
}

TEST_CASE("a nil id is refused", "[validate]") {
    auto e = sample_hazard();
    e.id = event_id{};
    CHECK(validate(e).code == errc::bad_id);
}
