// The receivers directory of pingan-notify without I/O: located errors,
// routing by role, tier, place and mode, and the webhook signature.
#include "services/notify/channels.hpp"
#include "services/notify/directory.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::notify;
using namespace pingan::test;

namespace {

const std::vector<std::string> roles{"principal", "safety_officer", "county_bureau", "city_bureau"};

directory parse_ok(const std::string& text) {
    directory d;
    auto p = parse_directory(text, &yichang(), roles, d);
    for (const auto& x : p)
        INFO(x.line << ":" << x.column << ": " << x.message);
    REQUIRE(p.empty());
    return d;
}

event page(const std::string& school, tier t, std::vector<std::string> rs,
           pingan::status s = pingan::status::system, bool exercise = false) {
    event e;
    e.school = school;
    e.district = school.substr(0, 6);
    e.status = s;
    notification_requested n;
    n.incident_id = "INC-0123456789abcdef";
    n.tier = t;
    n.roles = std::move(rs);
    n.exercise = exercise;
    n.text = exercise ? std::string(exercise_prefix) + "演练" : "页面";
    e.body = n;
    return e;
}

std::vector<std::string> ids(const std::vector<const receiver*>& v) {
    std::vector<std::string> out;
    for (const auto* r : v)
        out.push_back(r->id);
    return out;
}

const char* sample = R"(directory: t
receivers:
  - id: p001-principal
    role: principal
    tier: school
    school: 420502P001
    channel: webhook
    url: http://127.0.0.1:9/p
    secret: 0123456789abcdef0123
  - id: p001-drills
    role: principal
    school: 420502P001
    channel: file
    path: /tmp/x.log
    exercises: true
  - id: xiling
    roles: [county_bureau]
    district: "420502"
    channel: command
    command: [/bin/true]
    address: "+86 1"
  - id: city
    roles: [city_bureau, county_bureau]
    channel: file
    path: "-"
)";

} // namespace

TEST_CASE("a directory with mistakes names each one with its line and column", "[notify]") {
    const char* text = R"(directory: bad
receivers:
  - id: a
    role: principle
    channel: webhook
    url: ftp://x
    secret: short
  - id: a
    role: principal
    school: 999999X999
    channel: pigeon
  - id: c
    role: principal
    tier: county
    channel: command
    command: sms-send
)";
    directory d;
    auto p = parse_directory(text, &yichang(), roles, d);
    std::vector<std::string> got;
    for (const auto& x : p)
        got.push_back(std::to_string(x.line) + ":" + std::to_string(x.column) + ": " + x.message);
    INFO(Catch::Detail::stringify(got));
    REQUIRE(p.size() == 8);
    CHECK(got[0].starts_with("4:11: role \"principle\" is not declared"));
    CHECK(got[1].starts_with("6:10: url \"ftp://x\""));
    CHECK(got[2].starts_with("7:13: secret: at least 16"));
    CHECK(got[3] == "8:9: id \"a\" is used by another receiver");
    CHECK(got[4] == "10:13: school \"999999X999\" is not in the registry");
    CHECK(got[5].starts_with("11:14: channel \"pigeon\" is not one of"));
    CHECK(got[6].starts_with("14:11: tier \"county\" is not one of"));
    CHECK(got[7] == "16:14: command: \"sms-send\" must be an absolute path");
}

TEST_CASE("a YAML syntax error is located", "[notify]") {
    directory d;
    auto p = parse_directory("receivers:\n  - id: [a\n", nullptr, roles, d);
    REQUIRE(p.size() == 1);
    CHECK(p[0].line >= 2);
}

TEST_CASE("pages go to receivers of their role, tier and place", "[notify]") {
    auto d = parse_ok(sample);
    CHECK(ids(route(d, page("420502P001", tier::school, {"principal", "safety_officer"}))) ==
          std::vector<std::string>{"p001-principal", "p001-drills"});
    CHECK(ids(route(d, page("420502P002", tier::school, {"principal"}))).empty());
    CHECK(ids(route(d, page("420502P001", tier::district, {"county_bureau"}))) ==
          std::vector<std::string>{"xiling", "city"});
    CHECK(ids(route(d, page("420503P001", tier::district, {"county_bureau"}))) ==
          std::vector<std::string>{"city"});
}

TEST_CASE("exercise pages reach only exercise receivers and test pages only files", "[notify]") {
    auto d = parse_ok(sample);
    auto x = page("420502P001", tier::school, {"principal"}, pingan::status::exercise, true);
    CHECK(ids(route(d, x)) == std::vector<std::string>{"p001-drills"});
    CHECK(page_text(x).starts_with(exercise_prefix));
    auto t = page("420502P001", tier::district, {"county_bureau"}, pingan::status::test);
    CHECK(ids(route(d, t)) == std::vector<std::string>{"city"});
}

TEST_CASE("an exercise page without the marker gets it in front", "[notify]") {
    auto x = page("420502P001", tier::school, {"principal"}, pingan::status::exercise, false);
    std::get<notification_requested>(x.body).text = "疏散";
    CHECK(page_text(x) == std::string(exercise_prefix) + "疏散");
}

TEST_CASE("the webhook signature is HMAC-SHA256 of the body", "[notify]") {
    // RFC 4231 test case 2.
    CHECK(sign_body("Jefe", "what do ya want for nothing?") ==
          "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("the role names come from the rule file", "[notify]") {
    auto r = declared_roles(read_file(source_path("config/rules/yichang-default.yaml")));
    CHECK(std::find(r.begin(), r.end(), "county_bureau") != r.end());
    CHECK_THROWS_AS(declared_roles("rules: []"), error);
}

TEST_CASE("the example directory file is valid", "[notify]") {
    directory d;
    auto r = declared_roles(read_file(source_path("config/rules/yichang-default.yaml")));
    auto p =
        parse_directory(read_file(source_path("config/notify-directory.yaml")), &yichang(), r, d);
    for (const auto& x : p)
        INFO(x.line << ":" << x.column << ": " << x.message);
    CHECK(p.empty());
    CHECK(d.receivers.size() == 3);
}
