// The console's security decisions (services/console/auth.hpp): sessions,
// CSRF, the login rate limit and permissions, as pure functions.
#include "services/console/auth.hpp"

#include <catch2/catch.hpp>

using namespace pingan::console;

namespace {

constexpr std::int64_t minute = 60LL * 1000000;

user make_user(std::string name, std::string scope, std::vector<std::string> roles) {
    user u;
    u.name = std::move(name);
    u.scope = *parse_scope(scope);
    u.roles = std::move(roles);
    u.password_hash = "x";
    return u;
}

// An action request as the page sends it, for an incident at 420502K001.
action_request good_request(const session& s, action what = action::acknowledge) {
    action_request r;
    r.method = "POST";
    r.csrf_header = s.csrf;
    r.origin = "http://127.0.0.1:8090";
    r.host = "127.0.0.1:8090";
    r.what = what;
    r.school = "420502K001";
    r.district = "420502";
    r.incident_known = true;
    return r;
}

} // namespace

TEST_CASE("a session is found by its key until it has been idle too long", "[console_auth]") {
    session_table t({30 * minute, 12 * 60 * minute});
    t.create("chen", "k1", "c1", 0);
    REQUIRE(t.find("k1", 10 * minute) != nullptr);
    REQUIRE(t.find("k1", 39 * minute) != nullptr); // touched at 10 min
    CHECK(t.find("k1", 70 * minute) == nullptr);   // idle 31 min
    CHECK(t.size() == 0);
    CHECK(t.find("nope", 0) == nullptr);
}

TEST_CASE("a session ends after its absolute lifetime even when in use", "[console_auth]") {
    session_table t({30 * minute, 60 * minute});
    t.create("chen", "k1", "c1", 0);
    for (std::int64_t m = 10; m <= 50; m += 10)
        REQUIRE(t.find("k1", m * minute) != nullptr);
    CHECK(t.find("k1", 61 * minute) == nullptr);
}

TEST_CASE("ending a user's sessions leaves other users logged in", "[console_auth]") {
    session_table t;
    t.create("chen", "k1", "c1", 0);
    t.create("chen", "k2", "c2", 0);
    t.create("li", "k3", "c3", 0);
    t.erase_user("chen");
    CHECK(t.find("k1", 1) == nullptr);
    CHECK(t.find("k2", 1) == nullptr);
    CHECK(t.find("k3", 1) != nullptr);
}

TEST_CASE("sessions survive a dump and load, without those past their lifetime", "[console_auth]") {
    session_table t({30 * minute, 60 * minute});
    t.create("chen", "k1", "c1", 0);
    t.create("li", "k2", "c2", 50 * minute);
    session_table back({30 * minute, 60 * minute});
    back.load(t.dump(), 70 * minute);
    CHECK(back.find("k1", 70 * minute) == nullptr);
    auto* s = back.find("k2", 70 * minute);
    REQUIRE(s != nullptr);
    CHECK(s->user == "li");
    CHECK(s->csrf == "c2");
    CHECK_THROWS_AS(back.load("[1,2]", 0), pingan::error);
}

TEST_CASE("the session key is a hash, not the cookie", "[console_auth]") {
    auto k = session_key("abc");
    CHECK(k.size() == 64);
    CHECK(k != "abc");
    CHECK(k == session_key("abc"));
    CHECK(k != session_key("abd"));
}

TEST_CASE("the session cookie is HttpOnly and SameSite=Strict, Secure over HTTPS",
          "[console_auth]") {
    auto plain = session_cookie("tok", false);
    CHECK(plain.find("pingan_session=tok") == 0);
    CHECK(plain.find("HttpOnly") != std::string::npos);
    CHECK(plain.find("SameSite=Strict") != std::string::npos);
    CHECK(plain.find("Secure") == std::string::npos);
    CHECK(session_cookie("tok", true).find("; Secure") != std::string::npos);
    CHECK(clear_session_cookie(true).find("Max-Age=0") != std::string::npos);
}

TEST_CASE("the session cookie is read from a Cookie header among others", "[console_auth]") {
    CHECK(cookie_value("a=1; pingan_session=xyz; b=2", "pingan_session") == "xyz");
    CHECK(cookie_value("pingan_session=xyz", "pingan_session") == "xyz");
    CHECK_FALSE(cookie_value("xpingan_session=1; a=2", "pingan_session"));
    CHECK_FALSE(cookie_value("", "pingan_session"));
}

TEST_CASE("the CSRF token must match exactly", "[console_auth]") {
    session s{"k", "0123abcd", "chen", 0, 0};
    CHECK(csrf_matches(s, "0123abcd"));
    CHECK_FALSE(csrf_matches(s, "0123abce"));
    CHECK_FALSE(csrf_matches(s, "0123abc"));
    CHECK_FALSE(csrf_matches(s, ""));
    session none{"k", "", "chen", 0, 0};
    CHECK_FALSE(csrf_matches(none, ""));
}

TEST_CASE("failed logins are limited per user and per address", "[console_auth]") {
    login_limiter l({10, 3, 15 * minute});
    for (int i = 0; i < 3; ++i) {
        REQUIRE(l.retry_after("10.0.0.1", "chen", i) == 0);
        l.failed("10.0.0.1", "chen", i);
    }
    // The user is locked out from any address; another user is not.
    auto wait = l.retry_after("10.0.0.2", "chen", 3);
    CHECK(wait > 0);
    CHECK(wait <= 15 * 60);
    CHECK(l.retry_after("10.0.0.1", "li", 3) == 0);
    // After the window the user may try again.
    CHECK(l.retry_after("10.0.0.1", "chen", 15 * minute + 1) == 0);
}

TEST_CASE("one address trying many user names is limited", "[console_auth]") {
    login_limiter l({5, 3, 15 * minute});
    for (int i = 0; i < 5; ++i)
        l.failed("10.0.0.9", "user" + std::to_string(i), i);
    CHECK(l.retry_after("10.0.0.9", "fresh", 10) > 0);
    CHECK(l.retry_after("10.0.0.8", "fresh", 10) == 0);
}

TEST_CASE("a good password clears the user's failures", "[console_auth]") {
    login_limiter l({10, 3, 15 * minute});
    l.failed("a", "chen", 0);
    l.failed("a", "chen", 1);
    l.succeeded("chen");
    l.failed("a", "chen", 2);
    CHECK(l.retry_after("a", "chen", 3) == 0);
}

TEST_CASE("a responder in scope may acknowledge with the CSRF token", "[console_auth]") {
    session s{"k", "csrf-1", "chen", 0, 0};
    auto u = make_user("chen", "city", {"responder"});
    CHECK(decide_action(good_request(s), &s, &u).allowed());
    CHECK(decide_action(good_request(s, action::note), &s, &u).allowed());
}

TEST_CASE("an action without a session, CSRF token or same origin is refused", "[console_auth]") {
    session s{"k", "csrf-1", "chen", 0, 0};
    auto u = make_user("chen", "city", {"supervisor"});
    CHECK(decide_action(good_request(s), nullptr, nullptr).status == 401);
    auto r = good_request(s);
    r.csrf_header = "";
    CHECK(decide_action(r, &s, &u).status == 403);
    r = good_request(s);
    r.csrf_header = "csrf-2";
    CHECK(decide_action(r, &s, &u).status == 403);
    r = good_request(s);
    r.origin = "http://evil.example";
    CHECK(decide_action(r, &s, &u).status == 403);
    r = good_request(s);
    r.method = "GET";
    CHECK(decide_action(r, &s, &u).status == 405);
}

TEST_CASE("roles decide who may acknowledge, resolve and verify", "[console_auth]") {
    session s{"k", "c", "x", 0, 0};
    auto viewer = make_user("v", "city", {"viewer"});
    auto responder = make_user("r", "city", {"responder"});
    auto supervisor = make_user("s", "city", {"supervisor"});
    CHECK(decide_action(good_request(s, action::acknowledge), &s, &viewer).status == 403);
    CHECK(decide_action(good_request(s, action::resolve), &s, &responder).status == 403);
    CHECK(decide_action(good_request(s, action::verify), &s, &responder).status == 403);
    CHECK(decide_action(good_request(s, action::resolve), &s, &supervisor).allowed());
    CHECK(decide_action(good_request(s, action::acknowledge), &s, &supervisor).allowed());
}

TEST_CASE("an incident outside the user's scope looks like no incident", "[console_auth]") {
    session s{"k", "c", "x", 0, 0};
    auto district = make_user("li", "district:420503", {"supervisor"});
    auto school = make_user("wang", "school:420502K002", {"supervisor"});
    auto own = make_user("zhao", "school:420502K001", {"responder"});
    CHECK(decide_action(good_request(s), &s, &district).status == 404);
    CHECK(decide_action(good_request(s), &s, &school).status == 404);
    CHECK(decide_action(good_request(s), &s, &own).allowed());
    auto r = good_request(s);
    r.incident_known = false;
    CHECK(decide_action(r, &s, &own).status == 404);
}

TEST_CASE("a disabled user may do nothing", "[console_auth]") {
    session s{"k", "c", "x", 0, 0};
    auto u = make_user("chen", "city", {"supervisor"});
    u.disabled = true;
    CHECK(decide_action(good_request(s), &s, &u).status == 401);
}

TEST_CASE("a closed incident takes notes but no acknowledgement", "[console_auth]") {
    session s{"k", "c", "x", 0, 0};
    auto u = make_user("chen", "city", {"supervisor"});
    auto r = good_request(s);
    r.incident_closed = true;
    CHECK(decide_action(r, &s, &u).status == 409);
    r.what = action::note;
    CHECK(decide_action(r, &s, &u).allowed());
}

TEST_CASE("city users see everything, district and school users their own", "[console_auth]") {
    auto city = make_user("c", "city", {"viewer"});
    auto district = make_user("d", "district:420502", {"viewer"});
    auto school = make_user("s", "school:420502K001", {"viewer"});
    CHECK(in_scope(city, "", ""));
    CHECK(in_scope(city, "420503P001", "420503"));
    CHECK(in_scope(district, "420502K009", "420502"));
    CHECK_FALSE(in_scope(district, "420503P001", "420503"));
    CHECK_FALSE(in_scope(district, "", "")); // city-wide records
    CHECK(in_scope(school, "420502K001", "420502"));
    CHECK_FALSE(in_scope(school, "420502K002", "420502"));
    // A cross-school incident: each district of its schools sees it.
    const std::set<std::string> members{"420502", "420503"};
    CHECK(in_scope(district, "", "420503", &members));
    CHECK(in_scope(city, "", "420503", &members));
    CHECK_FALSE(in_scope(make_user("o", "district:420504", {"viewer"}), "", "420502", &members));
    CHECK_FALSE(in_scope(school, "", "420502", &members));
}

TEST_CASE("a district user acts on a cross-school incident of its district only",
          "[console_auth]") {
    session s{"k", "c", "x", 0, 0};
    const std::set<std::string> members{"420502", "420503"};
    auto r = good_request(s);
    r.school = "";
    r.district = "420503";
    r.member_districts = &members;
    auto mine = make_user("d", "district:420502", {"responder"});
    CHECK(decide_action(r, &s, &mine).allowed());
    auto other = make_user("o", "district:420504", {"responder"});
    CHECK(decide_action(r, &s, &other).status == 404);
}

TEST_CASE("the Origin must name the console's own host", "[console_auth]") {
    CHECK(same_origin("", "127.0.0.1:8090"));
    CHECK(same_origin("http://127.0.0.1:8090", "127.0.0.1:8090"));
    CHECK(same_origin("https://console.example", "console.example"));
    CHECK_FALSE(same_origin("http://127.0.0.1:8091", "127.0.0.1:8090"));
    CHECK_FALSE(same_origin("null", "127.0.0.1:8090"));
}

TEST_CASE("asking whether a login may proceed records nothing", "[console_auth]") {
    login_limiter l({1, 1, 15 * minute});
    for (int i = 0; i < 100; ++i)
        CHECK(l.retry_after("10.0.0.1", "name" + std::to_string(i), i) == 0);
    l.failed("10.0.0.1", "chen", 200);
    CHECK(l.retry_after("10.0.0.1", "other", 201) > 0);
}
