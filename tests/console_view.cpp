// The console's projection of the log and its per-user view
// (services/console/view.hpp): open incidents from the engine's events, and
// what each user is shown.
#include "common/privacy.hpp"
#include "services/console/view.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::console;
using pingan::test::at;
using pingan::test::yichang;

namespace {

struct log_builder {
    std::uint64_t next = 1;
    event make(body b, std::string school, status st = status::actual) {
        event e;
        e.id = new_event_id(at("2026-11-30T01:00:00Z"));
        e.offset = next++;
        e.school = school;
        e.district = school.substr(0, 6);
        e.occurred_at = e.received_at = at("2026-11-30T01:00:00Z") + micros{std::int64_t(e.offset)};
        e.status = st;
        e.severity = severity::severe;
        e.body = std::move(b);
        return e;
    }
};

psych_alert red_alert() {
    psych_alert p;
    p.alert_id = "A1";
    p.student_ref = "stu-1";
    p.level = risk_level::red;
    p.indicator_codes = {"SI-2"};
    p.reported_by_role = "counsellor";
    return p;
}

// A psych alert and the incident and school page the engine derives from it.
std::vector<event> psych_incident(log_builder& b, const std::string& school) {
    std::vector<event> v;
    auto a = b.make(red_alert(), school);
    a.scope = scope::private_;
    v.push_back(a);
    incident_opened o;
    o.incident_id = "INC-" + school;
    o.rule_id = "psych.red";
    o.ruleset_hash = "h1";
    o.kind = "psych";
    o.subject = "A1";
    o.title = "红色心理危机预警";
    auto oe = b.make(o, school, status::system);
    oe.scope = scope::private_;
    oe.references = {a.id};
    v.push_back(oe);
    notification_requested n;
    n.incident_id = o.incident_id;
    n.rule_id = "psych.red";
    n.ruleset_hash = "h1";
    n.basis = "L";
    n.tier = tier::school;
    n.roles = {"principal"};
    n.text = "请立即联系 (stu-1)";
    auto ne = b.make(n, school, status::system);
    ne.scope = scope::private_;
    v.push_back(ne);
    return v;
}

user make_user(std::string scope, bool cleared = false) {
    user u;
    u.name = "u";
    u.scope = *parse_scope(scope);
    u.roles = {"responder"};
    u.minors_clearance = cleared;
    return u;
}

} // namespace

TEST_CASE("an incident opens, is acknowledged and closes from the engine's events",
          "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    for (auto& e : psych_incident(b, "420502K001"))
        v.apply(e);
    auto* i = v.incident("INC-420502K001");
    REQUIRE(i);
    CHECK(i->mode == status::actual); // derived System events belong to a real incident
    CHECK(i->timeline.size() == 3);   // the report, the opening, the page
    CHECK(i->timeline.front() == 1);
    CHECK(i->told == std::vector<std::string>{"school: principal"});
    incident_acknowledged a;
    a.incident_id = "INC-420502K001";
    a.note = "console user chen: on my way";
    auto ae = b.make(a, "420502K001");
    ae.actor = "bureau:console";
    v.apply(ae);
    CHECK(v.incident("INC-420502K001")->acknowledged);
    CHECK(v.incident_json(*v.incident("INC-420502K001"))["state"] == "acknowledged");
    incident_closed c;
    c.incident_id = "INC-420502K001";
    c.rule_id = "psych.red";
    c.ruleset_hash = "h1";
    c.reason = "resolved";
    v.apply(b.make(c, "420502K001", status::system));
    CHECK(v.incident_json(*v.incident("INC-420502K001"))["state"] == "closed");
}

TEST_CASE("an event at or below the last offset is applied once", "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    auto events = psych_incident(b, "420502K001");
    for (auto& e : events)
        v.apply(e);
    v.apply(events[1]); // a replay overlapping the feed
    CHECK(v.incident("INC-420502K001")->timeline.size() == 3);
    CHECK(v.since(1).size() == 3);
    CHECK(v.since(3).size() == 1);
}

TEST_CASE("the history keeps the latest events and says where it starts", "[console_view]") {
    console_view v(yichang(), 2);
    log_builder b;
    for (auto& e : psych_incident(b, "420502K001"))
        v.apply(e);
    CHECK(v.oldest_kept() == 2);
    CHECK(v.at(1) == nullptr);
    REQUIRE(v.at(3) != nullptr);
    CHECK(v.since(1).size() == 2);
}

TEST_CASE("a district user sees only the district's events and incidents", "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    auto mine = psych_incident(b, "420503P001");
    auto theirs = psych_incident(b, "420502K001");
    for (auto& e : mine)
        v.apply(e);
    for (auto& e : theirs)
        v.apply(e);
    auto li = make_user("district:420503");
    bool shown = false;
    CHECK(v.for_user(mine[0], li, false, shown));
    CHECK_FALSE(v.for_user(theirs[0], li, false, shown));
    CHECK(v.incident_for_user(*v.incident("INC-420503P001"), li, false));
    CHECK_FALSE(v.incident_for_user(*v.incident("INC-420502K001"), li, false));
}

TEST_CASE("a cross-school incident is seen by every district of its schools, with its members",
          "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    food_alert illness;
    illness.kind = food_alert_kind::illness;
    illness.supplier = "SUP-9";
    auto west = b.make(illness, "420502K001");
    auto wujia = b.make(illness, "420503K001");
    incident_opened o;
    o.incident_id = "INC-CLUSTER";
    o.rule_id = "food.supplier_cluster";
    o.ruleset_hash = "h1";
    o.kind = "supplier_cluster";
    o.subject = "SUP-9";
    auto oe = b.make(o, "", status::system);
    oe.district = "420502"; // the district of the report that caused it
    oe.references = {west.id};
    notification_requested n;
    n.incident_id = o.incident_id;
    n.rule_id = o.rule_id;
    n.ruleset_hash = "h1";
    n.tier = tier::city;
    n.roles = {"city_bureau"};
    n.text = "【扩大 GROWN】新增 420503K001";
    auto ne = b.make(n, "", status::system);
    ne.district = "420503";
    ne.references = {wujia.id};
    for (const auto* e : {&west, &wujia, &oe, &ne})
        v.apply(*e);
    const auto* i = v.incident("INC-CLUSTER");
    REQUIRE(i);
    CHECK(i->member_schools ==
          std::map<std::string, std::string>{{"420502K001", "420502"}, {"420503K001", "420503"}});
    CHECK(i->member_districts == std::set<std::string>{"420502", "420503"});
    auto j = v.incident_for_user(*i, make_user("district:420503"), false);
    REQUIRE(j);
    CHECK((*j)["member_schools"].size() == 2);
    CHECK(v.incident_for_user(*i, make_user("district:420502"), false));
    CHECK(v.incident_for_user(*i, make_user("city"), false));
    CHECK_FALSE(v.incident_for_user(*i, make_user("district:420504"), false));
    CHECK_FALSE(v.incident_for_user(*i, make_user("school:420502K001"), false));
    // Each of its events is in the feed of the district it carries.
    bool shown = false;
    CHECK(v.for_user(ne, make_user("district:420503"), false, shown));
    CHECK_FALSE(v.for_user(ne, make_user("district:420502"), false, shown));
    CHECK(v.for_user(oe, make_user("district:420502"), false, shown));
}

TEST_CASE("Test traffic is hidden unless asked for", "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    auto e = b.make(red_alert(), "420502K001", status::test);
    auto city = make_user("city");
    bool shown = false;
    CHECK_FALSE(v.for_user(e, city, false, shown));
    CHECK(v.for_user(e, city, true, shown));
}

TEST_CASE("minors' details are redacted without clearance, shown and flagged with it",
          "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    auto events = psych_incident(b, "420502K001");
    for (auto& e : events)
        v.apply(e);
    auto plain = make_user("city");
    auto cleared = make_user("city", true);
    bool shown = true;
    auto j = v.for_user(events[0], plain, false, shown);
    REQUIRE(j);
    CHECK_FALSE(shown);
    CHECK((*j)["body"]["student_ref"] == "redacted");
    CHECK((*j)["body"]["indicator_codes"][0] == "redacted");
    CHECK((*j)["body"]["risk_level"] == "red");
    // The school tier's page may name the student: redacted too.
    auto page = v.for_user(events[2], plain, false, shown);
    REQUIRE(page);
    CHECK((*page)["body"]["text"] == "redacted");
    CHECK(v.incident_for_user(*v.incident("INC-420502K001"), plain, false).value()["message"] ==
          "redacted");

    auto c = v.for_user(events[0], cleared, false, shown);
    REQUIRE(c);
    CHECK(shown);
    CHECK((*c)["body"]["student_ref"] == "stu-1");
    CHECK(v.for_user(events[2], cleared, false, shown).value()["body"]["text"] ==
          "请立即联系 (stu-1)");
    CHECK(shown);
}

TEST_CASE("a view of minors' details is flagged by what the event holds, not by its text",
          "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    auto cleared = make_user("city", true);
    // Unredacted, though another field reads "redacted": a view to record.
    auto p = red_alert();
    p.alert_id = "redacted";
    p.reported_by_role = "redacted";
    auto odd = b.make(p, "420502K001");
    v.apply(odd);
    bool shown = false;
    REQUIRE(v.for_user(odd, cleared, false, shown));
    CHECK(shown);
    // Redacted by the broker already (a console key without clearance): nothing shown.
    auto r = b.make(red_alert(), "420502K001");
    redact_minors(r);
    v.apply(r);
    shown = true;
    REQUIRE(v.for_user(r, cleared, false, shown));
    CHECK_FALSE(shown);
}

TEST_CASE("events are shown with Chinese names and CST times", "[console_view]") {
    console_view v(yichang(), 1000);
    log_builder b;
    auto e = b.make(red_alert(), "420502K001");
    auto j = v.event_json(e);
    CHECK(j["school_name"] == "西陵区第1幼儿园");
    CHECK(j["district_name"] == "西陵区");
    CHECK(j["time_cst"].get<std::string>().find("2026-11-30 09:00:00") == 0);
    CHECK(j["level"] == "orange");
}

TEST_CASE("a district user's places are the district's schools", "[console_view]") {
    console_view v(yichang(), 10);
    auto places = v.places_for(make_user("district:420503"));
    REQUIRE(places.size() == 1);
    CHECK(places[0]["code"] == "420503");
    CHECK(places[0]["schools"].size() > 0);
    CHECK(v.places_for(make_user("city")).size() == 13);
}
