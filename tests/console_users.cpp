// The console's users file (services/console/users.hpp): scopes, roles,
// password hashes and the file's permissions.
#include "services/console/users.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <fstream>

using namespace pingan::console;

TEST_CASE("scopes are city, a district code or a school id", "[console_users]") {
    CHECK(parse_scope("city")->at == user_scope::level::city);
    auto d = parse_scope("district:420502");
    REQUIRE(d);
    CHECK(d->at == user_scope::level::district);
    CHECK(d->code == "420502");
    CHECK(parse_scope("school:420502K001")->code == "420502K001");
    CHECK_FALSE(parse_scope("district:42050"));
    CHECK_FALSE(parse_scope("district:abcdef"));
    CHECK_FALSE(parse_scope("province"));
    CHECK(scope_text(*parse_scope("school:420502K001")) == "school:420502K001");
}

TEST_CASE("each role includes the ones below it", "[console_users]") {
    user u;
    u.roles = {"responder"};
    CHECK(u.has_role("viewer"));
    CHECK(u.has_role("responder"));
    CHECK_FALSE(u.has_role("supervisor"));
    CHECK_FALSE(u.has_role("admin"));
}

TEST_CASE("a password hash verifies only the password it was made from", "[console_users]") {
    auto h = hash_password("correct horse");
    CHECK(h.starts_with("$argon2id$"));
    CHECK(check_password(h, "correct horse"));
    CHECK_FALSE(check_password(h, "correct horsf"));
    CHECK_FALSE(check_password("not a hash", "correct horse"));
    CHECK_THROWS_AS(hash_password("short"), pingan::error);
}

TEST_CASE("the users file round-trips and is written with mode 0600", "[console_users]") {
    pingan::test::temp_dir d;
    user_store s;
    user u;
    u.name = "chen";
    u.password_hash = hash_password("chen-password");
    u.scope = *parse_scope("district:420502");
    u.roles = {"supervisor"};
    u.minors_clearance = true;
    s.add(u);
    CHECK_THROWS_AS(s.add(u), pingan::error);
    save_users(d / "users.json", s);
    struct stat st {};
    REQUIRE(::stat((d / "users.json").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto back = load_users(d / "users.json");
    auto* c = back.find("chen");
    REQUIRE(c);
    CHECK(c->scope.code == "420502");
    CHECK(c->minors_clearance);
    CHECK(check_password(c->password_hash, "chen-password"));
}

TEST_CASE("a wrong users file is refused naming the user and field", "[console_users]") {
    auto bad = [](const char* text) {
        try {
            user_store::parse(text);
        } catch (const pingan::error& e) {
            return e.detail();
        }
        return std::string("accepted");
    };
    CHECK(bad("[]").find("\"users\"") != std::string::npos);
    CHECK(bad(R"({"users":[{"name":"a","password_hash":"h","scope":"moon","roles":["viewer"]}]})")
              .find("user \"a\": scope") != std::string::npos);
    CHECK(bad(R"({"users":[{"name":"a","password_hash":"h","scope":"city","roles":["root"]}]})")
              .find("roles") != std::string::npos);
    CHECK(
        bad(R"({"users":[{"name":"a","password_hash":"h","scope":"city","roles":[],"clearance":["all"]}]})")
            .find("clearance") != std::string::npos);
    CHECK(bad(R"({"users":[{"name":"a b","password_hash":"h","scope":"city","roles":[]}]})")
              .find("name") != std::string::npos);
}
