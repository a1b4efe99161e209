// Tests for broker/admission/admit.hpp: what the broker accepts and why it refuses.
#include "broker/admission/admit.hpp"
#include "broker/admission/access.hpp"
#include "broker/server/config.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::test;

namespace {
const timestamp now = at("2026-11-29T02:00:00Z");
}

TEST_CASE("an admitted event gets its district from the registry and the actor", "[admit]") {
    event e;
    auto p = admit(encode(sample_hazard("420506M003")), false, yichang(), "school:x", now, {}, e);
    if (!yichang().find("420506M003")) {
        CHECK(p.code == errc::unknown_school);
        return;
    }
    REQUIRE_FALSE(p);
    CHECK(e.district == "420506");
    CHECK(e.actor == "school:x");
}

TEST_CASE("unknown schools are refused by name", "[admit]") {
    event e;
    auto p = admit(encode(sample_hazard("999999X999")), false, yichang(), "a", now, {}, e);
    CHECK(p.code == errc::unknown_school);
    CHECK(p.detail == "school \"999999X999\" is not in the registry");
}

TEST_CASE("a district that contradicts the registry is refused", "[admit]") {
    auto h = sample_hazard();
    h.district = "420503";
    event e;
    CHECK(admit(encode(h), false, yichang(), "a", now, {}, e).code == errc::bad_value);
}

TEST_CASE("garbage bytes and garbage json are refused", "[admit]") {
    event e;
    CHECK(admit("hello garbage", false, yichang(), "a", now, {}, e).code == errc::undecodable);
    CHECK(admit("{\"type\":", true, yichang(), "a", now, {}, e).code == errc::malformed_json);
}

TEST_CASE("oversize events are refused before decoding", "[admit]") {
    admit_limits l;
    l.max_event_bytes = 100;
    event e;
    CHECK(admit(std::string(101, 'x'), false, yichang(), "a", now, l, e).code ==
          errc::message_too_large);
}

TEST_CASE("publishers cannot claim status System", "[admit]") {
    auto h = sample_hazard();
    h.status = status::system;
    event e;
    CHECK(admit(encode(h), false, yichang(), "a", now, {}, e).code == errc::forbidden);
}

TEST_CASE("occurred_at far in the future is refused, far in the past is kept", "[admit]") {
    auto h = sample_hazard();
    h.occurred_at = now + std::chrono::hours{48};
    event e;
    CHECK(admit(encode(h), false, yichang(), "a", now, {}, e).code == errc::bad_value);
    h.occurred_at = at("2019-01-01T00:00:00Z");
    CHECK_FALSE(admit(encode(h), false, yichang(), "a", now, {}, e));
}

TEST_CASE("json events are admitted through the documented mapping", "[admit]") {
    auto j = to_json(sample_hazard());
    event e;
    REQUIRE_FALSE(admit(j.dump(), true, yichang(), "a", now, {}, e));
    CHECK(e.type() == "hazard.reported");
    CHECK(e.district == "420502");
}

TEST_CASE("the broker's own types are refused from every client, naming the type", "[admit]") {
    for (auto type : broker_only_types) {
        INFO(type);
        auto h = sample_hazard("420502K001");
        h.body = *make_body(type);
        event e;
        auto p = admit(encode(h), false, yichang(), "anonymous", now, {}, e);
        CHECK(p.code == errc::forbidden);
        CHECK(p.detail ==
              std::string(type) + " is made only by the broker; clients may not publish it");
        auto j = to_json(h);
        CHECK(admit(j.dump(), true, yichang(), "anonymous", now, {}, e).code == errc::forbidden);
    }
    // The actions people take stay open to clients of a broker without access table.
    auto h = sample_hazard("420502K001");
    incident_acknowledged a;
    a.incident_id = "INC-1";
    h.body = a;
    event e;
    CHECK_FALSE(admit(encode(h), false, yichang(), "anonymous", now, {}, e));
    CHECK(is_action(e.type()));
    CHECK_FALSE(broker_only("notification.delivered"));
}

TEST_CASE("receipts and acknowledgements of a city-wide page need no school; reports do",
          "[admit]") {
    auto city = sample_hazard();
    city.school.clear();
    event e;
    auto p = admit(encode(city), false, yichang(), "a", now, {}, e);
    CHECK(p.code == errc::missing_field);
    CHECK(p.detail.starts_with("school is required"));

    notification_delivered d;
    d.notification_id = "N-1";
    d.incident_id = "INC-1";
    d.receiver = "city-duty";
    d.channel = "file";
    d.attempt = 1;
    city.body = d;
    REQUIRE_FALSE(admit(encode(city), false, yichang(), "a", now, {}, e));
    CHECK(e.school.empty());
    CHECK(e.district.empty());

    incident_acknowledged a;
    a.incident_id = "INC-1";
    city.body = a;
    CHECK_FALSE(admit(encode(city), false, yichang(), "a", now, {}, e));

    // A district without a school is a contradiction, not a city-wide event.
    city.district = "420502";
    CHECK(admit(encode(city), false, yichang(), "a", now, {}, e).code == errc::bad_value);
}

TEST_CASE("only a city-scoped key may publish an event of no school", "[admit]") {
    auto h = sample_hazard();
    h.school.clear();
    notification_failed f;
    f.notification_id = "N-1";
    f.incident_id = "INC-1";
    f.receiver = "city-duty";
    f.channel = "webhook";
    f.attempt = 1;
    h.body = f;
    event e;
    REQUIRE_FALSE(admit(encode(h), false, yichang(), "notify", now, {}, e));
    principal city{"notify", "", "", "", "", true, true, true, true, false};
    CHECK_FALSE(may_publish(city, e));
    principal district{"bureau", "", "", "420502", "", false, true, true, true, false};
    CHECK(may_publish(district, e).code == errc::forbidden);
    principal school{"school", "", "420502K001", "", "420502", false, true, true, true, false};
    CHECK(may_publish(school, e).code == errc::forbidden);
}

TEST_CASE("a broker configuration with a list or map as a key is refused, not an exception",
          "[admit]") {
    // Found by the config fuzz target: yaml-cpp's bad conversion escaped.
    try {
        (void)parse_broker_config("limits:\n  ? [a, b]\n  : 1\n", {}, "/etc/pingan");
        FAIL("a list as a key was taken");
    } catch (const error& e) {
        CHECK(e.code() == errc::bad_config);
        CHECK_THAT(e.detail(), Catch::Contains("a key must be a name"));
    }
}
