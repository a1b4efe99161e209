// Tests of the intake's credentials and guard checks without sockets
// (services/common/credentials.hpp, guard.hpp).
#include "services/common/credentials.hpp"
#include "services/common/guard.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::svc;
using namespace std::chrono_literals;

namespace {

timestamp at(const char* t) {
    return *parse_utc(t);
}

credential officer(credential_store& s, std::string& token) {
    credential c;
    c.name = "zhang.wei";
    REQUIRE(add_scope(c, "school:420502K001"));
    c.roles = {"safety_officer"};
    c.issued_at = at("2026-09-01T00:00:00Z");
    token = issue_token(c);
    s.add(c);
    return c;
}

} // namespace

TEST_CASE("a token issued for a credential authenticates it and its hash alone is stored",
          "[credentials]") {
    credential_store s;
    std::string token;
    auto c = officer(s, token);
    CHECK(token.rfind("pgn_" + c.id + ".", 0) == 0);
    auto text = s.dump();
    CHECK(text.find(token.substr(17)) == std::string::npos); // the secret is not in the file
    auto again = credential_store::parse(text);
    auto r = again.authenticate("Bearer " + token, at("2026-09-02T00:00:00Z"));
    CHECK(r.verdict == auth_verdict::ok);
    REQUIRE(r.who);
    CHECK(r.who->name == "zhang.wei");
    CHECK(again.authenticate("bearer  " + token + " ", at("2026-09-02T00:00:00Z")).verdict ==
          auth_verdict::ok);
}

TEST_CASE("a missing, malformed, unknown, revoked or expired token is refused with its reason",
          "[credentials]") {
    credential_store s;
    std::string token;
    officer(s, token);
    auto now = at("2026-09-02T00:00:00Z");
    CHECK(s.authenticate("", now).verdict == auth_verdict::missing);
    CHECK(s.authenticate("Basic dXNlcjpwYXNz", now).verdict == auth_verdict::malformed);
    CHECK(s.authenticate("Bearer pgn_short", now).verdict == auth_verdict::malformed);
    auto wrong = token;
    wrong.back() = wrong.back() == '0' ? '1' : '0';
    CHECK(s.authenticate("Bearer " + wrong, now).verdict == auth_verdict::unknown);
    auto other = token;
    other[4] = other[4] == 'a' ? 'b' : 'a'; // another id
    CHECK(s.authenticate("Bearer " + other, now).verdict == auth_verdict::unknown);

    s.find("zhang.wei")->expires_at = at("2026-09-01T12:00:00Z");
    CHECK(s.authenticate("Bearer " + token, now).verdict == auth_verdict::expired);
    s.find("zhang.wei")->revoked_at = at("2026-09-01T06:00:00Z");
    CHECK(s.authenticate("Bearer " + token, now).verdict == auth_verdict::revoked);
}

TEST_CASE("a credential covers its schools and every school of its districts", "[credentials]") {
    auto reg = test::yichang();
    credential c;
    REQUIRE(add_scope(c, "school:420502K001"));
    REQUIRE(add_scope(c, "district:420503"));
    CHECK_FALSE(add_scope(c, "city"));
    CHECK_FALSE(add_scope(c, "district:42"));
    CHECK(c.covers(reg, "420502K001"));
    CHECK_FALSE(c.covers(reg, "420502K002"));
    const school* in_503 = nullptr;
    for (const auto& sc : reg.schools())
        if (sc.district_code == "420503") in_503 = &sc;
    REQUIRE(in_503);
    CHECK(c.covers(reg, in_503->id));
    CHECK(c.scope_text() == "school:420502K001,district:420503");
}

TEST_CASE("the credentials file refuses a wrong entry naming it and its field", "[credentials]") {
    auto bad = [](const std::string& text, const std::string& want) {
        try {
            credential_store::parse(text);
            FAIL("accepted: " << text);
        } catch (const error& e) {
            CHECK(e.code() == errc::bad_config);
            CHECK_THAT(e.detail(), Catch::Contains(want));
        }
    };
    bad("[]", "\"credentials\" list");
    bad(R"({"credentials":[{"name":"a b"}]})", "name is not valid");
    std::string ok_head = R"({"credentials":[{"name":"k1","id":"0123456789ab","secret_hash":")" +
                          std::string(64, 'a') + R"(","issued_at":"2026-09-01T00:00:00Z",)";
    bad(ok_head + R"("scope":["city"],"roles":["teacher"]}]})", "credential \"k1\": scope");
    bad(ok_head + R"("scope":["school:420502K001"],"roles":["janitor"]}]})", "unknown role");
    CHECK(
        credential_store::parse(ok_head + R"("scope":["school:420502K001"],"roles":["teacher"]}]})")
            .all()
            .size() == 1);
}

TEST_CASE("reporter fields must name the credential or one of its roles, and are filled when "
          "left out",
          "[credentials]") {
    credential c;
    c.name = "li.na";
    c.roles = {"psych_teacher"};
    json body = {{"school", "420502K001"}};
    CHECK(check_reporter(body, c, policy_of("/hazard/report")).empty());
    CHECK(body["found_by"] == "li.na");

    body = {{"found_by", "psych_teacher"}, {"verifier", "somebody.else"}};
    auto wrong = check_reporter(body, c, policy_of("/hazard/verify"));
    REQUIRE(wrong.size() == 1);
    CHECK(wrong[0].first == "verifier");
    CHECK_THAT(wrong[0].second, Catch::Contains("li.na"));

    body = json::object();
    CHECK(check_reporter(body, c, policy_of("/psych/alert")).empty());
    CHECK(body["reported_by_role"] == "psych_teacher");
    body = {{"reported_by_role", "principal"}};
    wrong = check_reporter(body, c, policy_of("/psych/alert"));
    REQUIRE(wrong.size() == 1);
    CHECK(wrong[0].first == "reported_by_role");

    // Two roles: which one acts must be said.
    c.roles = {"principal", "psych_teacher"};
    body = json::object();
    wrong = check_reporter(body, c, policy_of("/psych/alert"));
    REQUIRE(wrong.size() == 1);
    CHECK_THAT(wrong[0].second, Catch::Contains("required"));
}

TEST_CASE("only the intake's own origin and the allowed ones may post", "[credentials]") {
    CHECK(origin_allowed("http://127.0.0.1:8081", "127.0.0.1:8081", false, {}));
    CHECK(origin_allowed("HTTPS://School.Example:8443", "school.example:8443", true, {}));
    CHECK_FALSE(origin_allowed("http://school.example:8443", "school.example:8443", true, {}));
    CHECK_FALSE(origin_allowed("https://evil.example", "127.0.0.1:8081", false, {}));
    CHECK_FALSE(origin_allowed("null", "127.0.0.1:8081", false, {}));
    CHECK(origin_allowed("https://gateway.school:443", "127.0.0.1:8081", false,
                         {"https://gateway.school:443"}));
}

TEST_CASE("only application/json is a JSON media type", "[credentials]") {
    CHECK(is_json_media_type("application/json"));
    CHECK(is_json_media_type("Application/JSON; charset=utf-8"));
    CHECK_FALSE(is_json_media_type("text/plain"));
    CHECK_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
    CHECK_FALSE(is_json_media_type("multipart/form-data; boundary=x"));
    CHECK_FALSE(is_json_media_type("application/jsonp"));
    CHECK_FALSE(is_json_media_type(""));
}

TEST_CASE("a rate limiter lets a burst through, then the sustained rate", "[credentials]") {
    rate_limiter r(2, 3); // 2 per second, 3 at once
    auto t0 = std::chrono::steady_clock::time_point{} + 100s;
    CHECK(r.allow("a", t0));
    CHECK(r.allow("a", t0));
    CHECK(r.allow("a", t0));
    CHECK_FALSE(r.allow("a", t0));
    CHECK(r.allow("b", t0)); // another key has its own bucket
    CHECK(r.allow("a", t0 + 500ms));
    CHECK_FALSE(r.allow("a", t0 + 500ms));
}

TEST_CASE("connection slots are limited per key and given back when dropped", "[credentials]") {
    connection_slots s;
    auto a = s.take("10.0.0.1", 2);
    auto b = s.take("10.0.0.1", 2);
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(s.take("10.0.0.1", 2));
    CHECK(s.take("10.0.0.2", 2));
    a.reset();
    CHECK(s.take("10.0.0.1", 2));
}

TEST_CASE("the changes between two readings of the credentials are issued, revoked, removed and "
          "changed, each with every school and district it covered",
          "[credentials]") {
    credential_store before;
    std::string token;
    officer(before, token);
    credential kiosk;
    kiosk.name = "kiosk-1";
    REQUIRE(add_scope(kiosk, "district:420503"));
    kiosk.roles = {"device"};
    issue_token(kiosk);
    before.add(kiosk);
    credential gone;
    gone.name = "old.phone";
    REQUIRE(add_scope(gone, "school:420502K002"));
    gone.roles = {"teacher"};
    issue_token(gone);
    before.add(gone);

    CHECK(credential_changes(before, before).empty());

    auto after = credential_store::parse(before.dump());
    after.find("zhang.wei")->revoked_at = at("2026-10-01T00:00:00Z");
    auto* k = after.find("kiosk-1");
    k->districts.clear();
    REQUIRE(add_scope(*k, "school:420502K001"));
    auto fresh = after; // old.phone removed below, li.na issued
    credential_store next;
    for (const auto& c : fresh.all())
        if (c.name != "old.phone") next.add(c);
    credential li;
    li.name = "li.na";
    REQUIRE(add_scope(li, "school:420502K001"));
    li.roles = {"teacher"};
    issue_token(li);
    next.add(li);

    auto d = credential_changes(before, next);
    REQUIRE(d.size() == 4);
    CHECK(d[0].now.name == "zhang.wei");
    CHECK(d[0].change == credential_change::revoked);
    CHECK(d[0].schools == std::vector<std::string>{"420502K001"});
    CHECK(d[1].now.name == "kiosk-1");
    CHECK(d[1].change == credential_change::changed);
    CHECK(d[1].schools == std::vector<std::string>{"420502K001"});
    CHECK(d[1].districts == std::vector<std::string>{"420503"}); // covered before
    CHECK(d[2].now.name == "li.na");
    CHECK(d[2].change == credential_change::issued);
    CHECK(d[3].now.name == "old.phone");
    CHECK(d[3].change == credential_change::removed);
    CHECK(d[3].schools == std::vector<std::string>{"420502K002"});
}
