// Tests of services/hazard/handle_request.hpp and services/common/intake.hpp:
// a school's request becomes the right event, or one message per wrong field.
#include "common/validate.hpp"
#include "services/hazard/handle_request.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::svc;

namespace {

const manual_clock& fixed_clock() {
    static manual_clock c(test::at("2026-11-29T02:00:00Z"));
    return c;
}

intake_context ctx() {
    return {test::yichang(), fixed_clock(), "pingan-hazard/test"};
}

json good_report() {
    return json::parse(R"({"school":"420502K001","area":"building","grade":"general",
        "description":"二楼走廊护栏松动","location":"教学楼二楼","found_by":"safety_officer",
        "photos":["photo://1.jpg"]})");
}

std::vector<std::string> fields(const problems& p) {
    std::vector<std::string> f;
    for (const auto& x : p)
        f.push_back(x.field);
    return f;
}

} // namespace

TEST_CASE("a general hazard report becomes a valid hazard.reported with a 7-day deadline",
          "[hazard_request]") {
    auto req = good_report();
    auto d = hazard::report(req, ctx());
    REQUIRE(d.ok());
    REQUIRE(d.events.size() == 1);
    const auto& e = d.events[0];
    CHECK_FALSE(validate(e));
    CHECK(e.type() == "hazard.reported");
    CHECK(e.school == "420502K001");
    CHECK(e.source == "pingan-hazard/test");
    CHECK(e.status == status::actual);
    CHECK(e.severity == severity::moderate);
    CHECK(e.occurred_at == test::at("2026-11-29T02:00:00Z"));
    const auto& h = std::get<hazard_reported>(e.body);
    CHECK(h.hazard_id == "HZ-" + e.id.str());
    CHECK(h.description == "二楼走廊护栏松动");
    REQUIRE(h.deadline);
    CHECK(*h.deadline == test::at("2026-12-06T02:00:00Z"));
    CHECK(d.answer["hazard_id"] == h.hazard_id);
}

TEST_CASE("every wrong field of a report is named in its own message", "[hazard_request]") {
    auto req = json::parse(R"({"school":"000000X000","area":"roof","grade":"major",
        "description":42,"found_by":"two words","colour":"red","occurred_at":"yesterday"})");
    auto d = hazard::report(req, ctx());
    CHECK(d.events.empty());
    auto f = fields(d.errors);
    CHECK_THAT(
        f, Catch::Matchers::UnorderedEquals(std::vector<std::string>{
               "school", "occurred_at", "area", "description", "location", "colour", "found_by"}));
    for (const auto& p : d.errors) {
        CHECK(p.code != errc::ok);
        CHECK(p.message.rfind(p.field, 0) == 0); // the message starts with its field
    }
}

TEST_CASE("a major hazard needs an interim control or a closed area", "[hazard_request]") {
    auto req = good_report();
    req["grade"] = "major";
    auto d = hazard::report(req, ctx());
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0].field == "interim_control");

    req = good_report();
    req["grade"] = "major";
    req["area_closed"] = true;
    d = hazard::report(req, ctx());
    REQUIRE(d.ok());
    CHECK(d.events[0].severity == severity::severe);
    CHECK(d.events[0].urgency == urgency::immediate);
    CHECK_FALSE(std::get<hazard_reported>(d.events[0].body).deadline);
}

TEST_CASE("a verification by the person who rectified the hazard is refused", "[hazard_request]") {
    auto req = json::parse(R"({"school":"420502K001","hazard_id":"HZ-1","verifier":"zhang",
        "result":"pass","evidence":"护栏已更换","rectified_by":"zhang"})");
    auto d = hazard::verify(req, ctx());
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0].field == "verifier");

    req = json::parse(R"({"school":"420502K001","hazard_id":"HZ-1","verifier":"li",
        "result":"pass","evidence":"护栏已更换","rectified_by":"zhang"})");
    d = hazard::verify(req, ctx());
    REQUIRE(d.ok());
    CHECK(std::get<hazard_verified>(d.events[0].body).result == verify_result::pass);
}

TEST_CASE("a rectification report becomes hazard.rectified referencing nothing by default",
          "[hazard_request]") {
    auto req = json::parse(R"({"school":"420502K001","hazard_id":"HZ-1","rectified_by":"wang",
        "description":"更换护栏","references":["01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f"]})");
    auto d = hazard::rectify(req, ctx());
    REQUIRE(d.ok());
    CHECK(d.events[0].type() == "hazard.rectified");
    REQUIRE(d.events[0].references.size() == 1);
    CHECK(d.events[0].references[0].str() == "01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f");
}

TEST_CASE("text with invalid UTF-8 or over its limit is refused by field", "[hazard_request]") {
    auto req = good_report();
    req["location"] = std::string(300, 'x');
    req["photos"] = json::array();
    for (int i = 0; i < 20; ++i)
        req["photos"].push_back("p");
    auto d = hazard::report(req, ctx());
    CHECK_THAT(fields(d.errors),
               Catch::Matchers::UnorderedEquals(std::vector<std::string>{"location", "photos"}));
    for (const auto& p : d.errors)
        CHECK(p.code == errc::too_long);
}

TEST_CASE("a remediation plan becomes a hazard.remediation_planned; a deadline in the past is "
          "refused",
          "[hazard_request]") {
    auto req = json::parse(R"({"school":"420502K001","hazard_id":"HZ-7","plan_id":"PLAN-1",
        "due":"2026-12-20T02:00:00Z","responsible":"facilities_manager",
        "measures":["更换护栏","加装防护网"],"funds_cny":12000,"planned_by":"principal"})");
    auto d = hazard::plan(req, ctx());
    REQUIRE(d.ok());
    const auto& e = d.events[0];
    CHECK_FALSE(validate(e));
    CHECK(e.type() == "hazard.remediation_planned");
    CHECK(std::get<hazard_remediation_planned>(e.body).due == test::at("2026-12-20T02:00:00Z"));
    CHECK(d.answer["due"] == "2026-12-20T02:00:00.000000Z");

    auto past = json::parse(R"({"school":"420502K001","hazard_id":"HZ-7","plan_id":"PLAN-1",
        "due":"2026-11-01T00:00:00Z","responsible":"facilities_manager",
        "measures":["更换护栏"],"planned_by":"principal"})");
    auto late = hazard::plan(past, ctx());
    CHECK(fields(late.errors) == std::vector<std::string>{"due"});
}

TEST_CASE("an appeal is the school's against a failure or the reporter's against a pass",
          "[hazard_request]") {
    auto school = json::parse(R"({"school":"420502K001","hazard_id":"HZ-7","appeal_id":"AP-1",
        "appellant":"school","disputed":"fail","grounds":"护栏已更换","filed_by":"safety_vp"})");
    auto d = hazard::appeal(school, ctx());
    REQUIRE(d.ok());
    CHECK_FALSE(validate(d.events[0]));
    CHECK(d.events[0].type() == "hazard.appealed");
    CHECK(d.answer["appeal_id"] == "AP-1");

    auto reporter = json::parse(R"({"school":"420502K001","hazard_id":"HZ-7","appeal_id":"AP-2",
        "appellant":"reporter","disputed":"pass","grounds":"护栏仍松动","filed_by":"teacher-12"})");
    CHECK(hazard::appeal(reporter, ctx()).ok());

    auto wrong_side = json::parse(R"({"school":"420502K001","hazard_id":"HZ-7","appeal_id":"AP-3",
        "appellant":"school","disputed":"pass","grounds":"x","filed_by":"principal"})");
    CHECK(fields(hazard::appeal(wrong_side, ctx()).errors) == std::vector<std::string>{"disputed"});
}
