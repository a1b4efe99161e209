// Tests for broker/engine/engine.hpp: scenarios per rule of the default pack (events
// and times in, pages out), the edge cases of issue 3, exercise and test
// isolation, and byte-for-byte determinism of replays.
#include "broker/engine/engine.hpp"
#include "engine_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <tuple>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;

namespace {

struct input {
    micros at; // after t0()
    event e;
};

struct page {
    micros at;
    std::string rule;
    tier to;
    std::vector<std::string> roles;
    std::string school = "420502J001";

    auto tie() const { return std::tie(at, school, rule, to, roles); }
    bool operator<(const page& o) const { return tie() < o.tie(); }
    bool operator==(const page& o) const { return tie() == o.tie(); }
};

std::ostream& operator<<(std::ostream& os, const page& p) {
    os << format_duration(p.at) << " " << p.school << " " << p.rule << " " << enum_name(p.to)
       << " [";
    for (auto& r : p.roles)
        os << r << " ";
    return os << "]";
}

struct scenario {
    std::string name;
    std::vector<input> inputs;
    micros until;
    std::vector<page> pages;
    bool absence = false; // pages come from absence timers, not from the inputs
    // The broker was down from the first input on: no timer fires until
    // `until`, when all that fell due fire at once (a catch-up after a jump).
    bool jump = false;
    // The engine starts at t0() before any input, as a broker started silent.
    bool silent_start = false;
    std::shared_ptr<const rules::ruleset> rules = nullptr; // the default pack if null
    std::shared_ptr<const registry> schools = nullptr;     // the small registry if null
    // Further assertions on the run, in each mode it is played in.
    std::function<void(const harness&, pingan::status)> check = nullptr;
};

constexpr tier school_ = tier::school, district_ = tier::district, city_ = tier::city,
               regulator_ = tier::regulator;

// ---- event makers -------------------------------------------------------------------

event ev(body b, std::string school = "420502J001") {
    return make_event(std::move(b), school);
}

event rectified(std::string id, std::string by) {
    hazard_rectified r;
    r.hazard_id = std::move(id);
    r.rectified_by = std::move(by);
    return ev(r);
}

event verified(std::string id, std::string verifier, verify_result result) {
    hazard_verified v;
    v.hazard_id = std::move(id);
    v.verifier = std::move(verifier);
    v.result = result;
    return ev(v);
}

// A remediation plan due `due_after_t0` after t0().
event planned(std::string id, micros due_after_t0) {
    hazard_remediation_planned p;
    p.hazard_id = std::move(id);
    p.plan_id = "PLAN-1";
    p.due = t0() + due_after_t0;
    p.responsible = "facilities_manager";
    p.measures = {"更换护栏", "加装防护网"};
    p.funds_cny = 12000;
    p.planned_by = "principal";
    return ev(p);
}

event appealed(std::string id, verify_result disputed) {
    hazard_appealed a;
    a.hazard_id = std::move(id);
    a.appeal_id = "AP-1";
    a.appellant = disputed == verify_result::fail ? appellant::school : appellant::reporter;
    a.disputed = disputed;
    a.grounds = "验收结论与现场不符";
    a.filed_by = "principal";
    return ev(a);
}

event decided(std::string id, appeal_outcome o) {
    hazard_appeal_decided d;
    d.hazard_id = std::move(id);
    d.appeal_id = "AP-1";
    d.outcome = o;
    d.decided_by = "county_inspector";
    d.reason = "现场复核";
    return ev(d);
}

event major(std::string id, bool interim) {
    auto h = hazard(std::move(id), hazard_grade::major);
    if (!interim) h.interim_control.reset();
    return ev(h);
}

event with_supplier(food_alert f, std::string school) {
    f.supplier = "supplier-7";
    return ev(f, std::move(school));
}

event sample(std::string meal, double grams) {
    food_sample s;
    s.canteen_id = "canteen-1";
    s.meal_id = std::move(meal);
    s.dish = "番茄炒蛋";
    s.grams = grams;
    s.stored_at = t0();
    return ev(s);
}

event food_kind(food_alert_kind k, std::string meal) {
    food_alert f;
    f.canteen_id = "canteen-1";
    f.kind = k;
    f.meal_id = std::move(meal);
    return ev(f);
}

event reading(double celsius) {
    food_temp_reading r;
    r.canteen_id = "canteen-1";
    r.sensor_id = "cold-1";
    r.zone = food_zone::cold_storage;
    r.celsius = celsius;
    return ev(r);
}

event drill(std::string id, std::uint32_t seconds, std::string school = "420502J001",
            std::uint32_t reported = 500) {
    drill_recorded d;
    d.drill_id = std::move(id);
    d.kind = drill_type::fire;
    d.started_at = t0();
    d.all_clear_at = t0() + std::chrono::seconds(seconds);
    d.evacuation_seconds = seconds;
    d.headcount_expected = 500;
    d.headcount_reported = reported;
    return ev(d, std::move(school));
}

event psych(risk_level l, std::vector<std::string> codes = {"SH01"}) {
    psych_alert p;
    p.alert_id = "PA-1";
    p.student_ref = "stu-7f3a9c";
    p.level = l;
    p.source = psych_source::teacher;
    p.indicator_codes = std::move(codes);
    p.reported_by_role = "head_teacher";
    auto e = ev(p);
    e.scope = scope::private_;
    return e;
}

event bullying(bool serious, std::optional<determination> d = std::nullopt) {
    bullying_reported b;
    b.case_id = "BC-1";
    b.victim_refs = {"stu-1"};
    b.actor_refs = {"stu-2"};
    b.forms = {bullying_form::verbal};
    b.injury = serious ? injury::serious : injury::none;
    b.discovered_at = t0();
    b.determination = d;
    auto e = ev(b);
    e.scope = scope::private_;
    return e;
}

// A case whose determination is appealed on day `filed` (after t0()).
event bullying_appeal(micros filed) {
    auto e = bullying(false, determination::bullying);
    std::get<bullying_reported>(e.body).appeal_filed_at = t0() + filed;
    return e;
}

event cluster(std::uint32_t cases, std::uint32_t days, bool notifiable = false) {
    health_cluster c;
    c.cluster_id = "HC-1";
    c.class_id = "7-3";
    c.disease = "influenza";
    c.cases = cases;
    c.window_days = days;
    c.suspected_notifiable = notifiable;
    return ev(c);
}

event trip(std::uint32_t boarded, std::uint32_t alighted, double speed) {
    bus_trip b;
    b.bus_id = "鄂E-12345";
    b.trip_id = "T-1";
    b.boarded = boarded;
    b.alighted = alighted;
    b.max_speed_kmh = speed;
    b.speed_limit_kmh = 60;
    return ev(b, "420502P001");
}

incident_reported report(std::uint32_t deaths, std::string id = "IR-1") {
    incident_reported r;
    r.incident_id = std::move(id);
    r.category = incident_category::accident;
    r.deaths = deaths;
    r.provisional_level = deaths ? incident_level::III : incident_level::IV;
    r.reporter_role = "principal";
    r.summary = "学生在操场摔伤";
    return r;
}

report_submitted submitted(std::string id, tier to) {
    report_submitted r;
    r.incident_id = std::move(id);
    r.to = to;
    r.recipient = to == tier::city ? "city_bureau" : "county_bureau";
    r.submitted_by = to == tier::city ? "county_bureau" : "principal";
    r.kind = to == tier::city ? report_kind::relay : report_kind::initial;
    r.summary = "书面报告";
    return r;
}

incident_resolved resolve(std::string id) {
    incident_resolved r;
    r.incident_id = std::move(id);
    r.resolution = "处置完毕";
    return r;
}

event equipment(micros expires_after_t0) {
    equipment_inspection i;
    i.equipment_id = "EL-1";
    i.kind = "elevator";
    i.cert_expires_on = t0() + expires_after_t0;
    return ev(i);
}

const std::vector<std::string> food_school{"canteen_manager", "principal", "school_doctor"};
const std::string meal_subject = "canteen-1/2026-11-02-lunch";
// 25 November and 1 December 2026, 00:00 in Yichang.
const micros nov25 = 22 * 24h + 15h;
const micros dec1 = 28 * 24h + 15h;

// Derived events stored at `at` after t0().
std::vector<event> derived_at(const harness& h, micros at) {
    std::vector<event> v;
    for (const auto& e : h.derived())
        if (e.received_at == t0() + at) v.push_back(e);
    return v;
}

// Pages sent by the timers due 2 h after an illness report, fired at 5 h
// after the broker was down: each says it is late, and so do the overdue
// and the escalation.
void pages_say_late(const harness& h, pingan::status mode) {
    auto out = derived_at(h, 5h);
    auto overdue = bodies<incident_overdue>(out);
    REQUIRE(overdue.size() == 2);
    for (const auto& o : overdue) {
        CHECK(o.late);
        CHECK(o.deadline == t0() + 2h);
    }
    for (const auto& x : bodies<escalation_raised>(out))
        CHECK(x.late);
    auto fired = of_type(h.log, timer_fired::type);
    REQUIRE_FALSE(fired.empty());
    CHECK(std::get<timer_fired>(fired[0].body).late);
    CHECK(fired[0].status == pingan::status::system);
    // The page itself says it is late, not only the overdue and the escalation.
    auto pages = bodies<notification_requested>(out);
    REQUIRE(pages.size() == (mode == pingan::status::test ? 0u : 2u));
    for (const auto& n : pages)
        CHECK(n.late);
}

// Pages sent by timers fired at their due time are not late.
void pages_on_time(const harness& h, pingan::status mode) {
    auto pages = bodies<notification_requested>(derived_at(h, 2h));
    REQUIRE(pages.size() == (mode == pingan::status::test ? 0u : 2u));
    for (const auto& n : bodies<notification_requested>(h.derived()))
        CHECK_FALSE(n.late);
}

// After a catch-up, every effect of an incident's deadline references the
// timer event of that incident, and every hazard timer event has effects.
void effects_follow_their_timer(const harness& h, pingan::status) {
    std::map<std::string, const event*> fired; // id → timer event
    for (const auto& e : h.log)
        if (e.type() == timer_fired::type) fired[e.id.str()] = &e;
    std::size_t checked = 0;
    for (const auto& e : h.derived()) {
        std::string inc;
        if (const auto* x = std::get_if<escalation_raised>(&e.body)) inc = x->incident_id;
        if (const auto* o = std::get_if<incident_overdue>(&e.body)) inc = o->incident_id;
        if (inc.empty()) continue;
        REQUIRE(e.references.size() == 1);
        auto it = fired.find(e.references[0].str());
        REQUIRE(it != fired.end());
        const auto& f = std::get<timer_fired>(it->second->body);
        INFO(f.timer_id << " caused an effect for " << inc);
        CHECK(f.timer_id.starts_with(inc + "/"));
        CHECK(e.school == it->second->school);
        ++checked;
    }
    CHECK(checked >= 8);
    // Every timer event caused something: none is left without its effects.
    std::set<std::string> causes;
    for (const auto& e : h.derived())
        if (!e.references.empty()) causes.insert(e.references[0].str());
    for (const auto& [id, f] : fired)
        if (std::get<timer_fired>(f->body).timer_id.find("/hazard.general/") != std::string::npos)
            CHECK(causes.count(id));
}

// Two junior schools: one of six floors (target 120 s + 2 × 30 s), one of four.
std::shared_ptr<const registry> tall_registry() {
    static const auto r = std::make_shared<const registry>(registry::from_csv(
        "school_id,name,district_code,type,students,boarding,school_bus,canteen,max_floors,lat,"
        "lon\n"
        "420502J009,西陵第9初级中学,420502,junior,1200,0,0,1,6,30.69,111.32\n"
        "420502J001,西陵第1初级中学,420502,junior,1090,0,0,1,4,30.69,111.32\n"));
    return r;
}

// The default pack with 60 s per floor above four floors.
std::shared_ptr<const rules::ruleset> slow_floors_pack() {
    auto text = default_pack_text();
    auto at = text.find("per_floor_above: 30");
    REQUIRE(at != std::string::npos);
    text.replace(at, 19, "per_floor_above: 60");
    auto tuned = rules::parse(text);
    REQUIRE(tuned.errors.empty());
    return tuned.rules;
}

// The basis of every page of rule `rule` is `basis`.
std::function<void(const harness&, pingan::status)> basis_of(std::string rule, std::string basis) {
    return [rule, basis](const harness& h, pingan::status) {
        for (const auto& n : bodies<notification_requested>(h.derived()))
            if (n.rule_id == rule) CHECK(n.basis == basis);
    };
}

// `s` with further settings.
scenario with(scenario s, const std::function<void(scenario&)>& set) {
    set(s);
    return s;
}

std::vector<scenario> scenarios() {
    return {
        {"hazard.general escalates at the due time, +3 days and +7 days",
         {{0s, ev(hazard("HZ-1"))}},
         15 * 24h,
         {{0s, "hazard.general", school_, {"safety_officer"}},
          {7 * 24h, "hazard.general", school_, {"safety_officer"}},
          {10 * 24h, "hazard.general", school_, {"principal"}},
          {14 * 24h, "hazard.general", district_, {"county_bureau"}}}},
        {"hazard.general stops escalating once rectified",
         {{0s, ev(hazard("HZ-1"))}, {8 * 24h, rectified("HZ-1", "worker-1")}},
         20 * 24h,
         {{0s, "hazard.general", school_, {"safety_officer"}},
          {7 * 24h, "hazard.general", school_, {"safety_officer"}}}},
        {"hazard.major goes to the district and regulator at once and to the city when overdue",
         {{0s, major("HZ-2", true)}},
         31 * 24h,
         {{0s, "hazard.major", school_, {"principal", "safety_vp"}},
          {0s, "hazard.major", district_, {"county_bureau"}},
          {0s, "hazard.major", regulator_, {"safety_regulator"}},
          {7 * 24h, "hazard.major.plan", school_, {"principal"}},
          {7 * 24h, "hazard.major.plan", district_, {"county_bureau"}},
          {30 * 24h, "hazard.major.plan", district_, {"county_bureau"}},
          {30 * 24h, "hazard.major", city_, {"city_bureau"}}}},
        {"a remediation plan meets the 7-day deadline and its due date becomes the hazard's",
         {{0s, major("HZ-2", true)}, {3 * 24h, planned("HZ-2", 20 * 24h)}},
         31 * 24h,
         {{0s, "hazard.major", school_, {"principal", "safety_vp"}},
          {0s, "hazard.major", district_, {"county_bureau"}},
          {0s, "hazard.major", regulator_, {"safety_regulator"}},
          {20 * 24h, "hazard.major.plan", district_, {"county_bureau"}},
          {20 * 24h, "hazard.major", city_, {"city_bureau"}}}},
        {"a major hazard rectified before its plan's deadline escalates nothing more",
         {{0s, major("HZ-2", true)},
          {3 * 24h, planned("HZ-2", 20 * 24h)},
          {15 * 24h, rectified("HZ-2", "worker-1")}},
         31 * 24h,
         {{0s, "hazard.major", school_, {"principal", "safety_vp"}},
          {0s, "hazard.major", district_, {"county_bureau"}},
          {0s, "hazard.major", regulator_, {"safety_regulator"}}}},
        {"an appeal of a failed verification holds the deadlines; upheld, they run later by the "
         "hold",
         {{0s, ev(hazard("HZ-A"))},
          {24h, rectified("HZ-A", "worker-1")},
          {2 * 24h, verified("HZ-A", "inspector-2", verify_result::fail)},
          {3 * 24h, appealed("HZ-A", verify_result::fail)},
          {8 * 24h, decided("HZ-A", appeal_outcome::upheld)}},
         22 * 24h,
         {{0s, "hazard.general", school_, {"safety_officer"}},
          {3 * 24h, "hazard.appeal", district_, {"county_bureau"}},
          {3 * 24h, "hazard.appeal", school_, {"safety_officer"}},
          {14 * 24h, "hazard.general", school_, {"safety_officer"}},
          {17 * 24h, "hazard.general", school_, {"principal"}},
          {21 * 24h, "hazard.general", district_, {"county_bureau"}}}},
        {"an appeal that overturns a failed verification closes the hazard",
         {{0s, ev(hazard("HZ-A"))},
          {24h, rectified("HZ-A", "worker-1")},
          {2 * 24h, verified("HZ-A", "inspector-2", verify_result::fail)},
          {3 * 24h, appealed("HZ-A", verify_result::fail)},
          {4 * 24h, decided("HZ-A", appeal_outcome::overturned)}},
         30 * 24h,
         {{0s, "hazard.general", school_, {"safety_officer"}},
          {3 * 24h, "hazard.appeal", district_, {"county_bureau"}},
          {3 * 24h, "hazard.appeal", school_, {"safety_officer"}}}},
        {"an appeal of a passed verification reopens the hazard; overturned, rectification is due "
         "again",
         {{0s, ev(hazard("HZ-A"))},
          {24h, rectified("HZ-A", "worker-1")},
          {2 * 24h, verified("HZ-A", "inspector-2", verify_result::pass)},
          {3 * 24h, appealed("HZ-A", verify_result::pass)},
          {5 * 24h, decided("HZ-A", appeal_outcome::overturned)}},
         20 * 24h,
         {{0s, "hazard.general", school_, {"safety_officer"}},
          {3 * 24h, "hazard.appeal", district_, {"county_bureau"}},
          {3 * 24h, "hazard.appeal", school_, {"safety_officer"}},
          {12 * 24h, "hazard.general", school_, {"safety_officer"}},
          {15 * 24h, "hazard.general", school_, {"principal"}},
          {19 * 24h, "hazard.general", district_, {"county_bureau"}}}},
        {"an appeal not decided within 15 days goes to the city, and the hazard stays held",
         {{0s, ev(hazard("HZ-A"))},
          {24h, rectified("HZ-A", "worker-1")},
          {2 * 24h, verified("HZ-A", "inspector-2", verify_result::fail)},
          {3 * 24h, appealed("HZ-A", verify_result::fail)}},
         30 * 24h,
         {{0s, "hazard.general", school_, {"safety_officer"}},
          {3 * 24h, "hazard.appeal", district_, {"county_bureau"}},
          {3 * 24h, "hazard.appeal", school_, {"safety_officer"}},
          {18 * 24h, "hazard.appeal", city_, {"city_bureau"}}}},
        {"bullying.appeal: the county re-examines within 15 days of the filing, else the city",
         {{4 * 24h, bullying_appeal(24h)}},
         20 * 24h,
         {{4 * 24h, "bullying.report", school_, {"safety_officer"}},
          {4 * 24h, "bullying.report", school_, {"guardian"}},
          {4 * 24h, "bullying.appeal", district_, {"county_bureau"}},
          {16 * 24h, "bullying.appeal", city_, {"city_bureau"}}}},
        {"hazard.major without interim control tells the principal and then the county",
         {{0s, major("HZ-3", false)}},
         24h,
         {{0s, "hazard.major", school_, {"principal", "safety_vp"}},
          {0s, "hazard.major", district_, {"county_bureau"}},
          {0s, "hazard.major", regulator_, {"safety_regulator"}},
          {0s, "hazard.major.no_interim", school_, {"principal"}},
          {4h, "hazard.major.no_interim", district_, {"county_bureau"}}}},
        {"hazard.repeat: three hazards of one area at one school in 7 days",
         {{0s, ev(hazard("HZ-a"))}, {24h, ev(hazard("HZ-b"))}, {48h, ev(hazard("HZ-c"))}},
         72h,
         {{0s, "hazard.general", school_, {"safety_officer"}},
          {24h, "hazard.general", school_, {"safety_officer"}},
          {48h, "hazard.general", school_, {"safety_officer"}},
          {48h, "hazard.repeat", district_, {"county_bureau"}}}},
        {"food.illness: school at once, district and regulators at 2 h",
         {{0s, ev(illness(2))}},
         3h,
         {{0s, "food.illness", school_, food_school},
          {2h, "food.illness", district_, {"county_bureau"}},
          {2h, "food.illness", regulator_, {"market_reg", "cdc"}}}},
        {"food.illness acknowledged 1 s before the 2 h deadline pages no one else",
         {{0s, ev(illness(2))}, {2h - 1s, ev(ack(meal_subject))}},
         3h,
         {{0s, "food.illness", school_, food_school}}},
        {"food.illness acknowledged 1 s after the 2 h deadline has already escalated",
         {{0s, ev(illness(2))}, {2h + 1s, ev(ack(meal_subject))}},
         3h,
         {{0s, "food.illness", school_, food_school},
          {2h, "food.illness", district_, {"county_bureau"}},
          {2h, "food.illness", regulator_, {"market_reg", "cdc"}}}},
        // The 2 h deadlines to the county and regulators are met: they were
        // told at once. The public-health incident runs the emergency rules.
        {"food.illness.major: 5 or more cases go out at once and open a public-health incident",
         {{0s, ev(illness(6))}},
         3h,
         {{0s, "food.illness", school_, food_school},
          {0s, "food.illness.major", district_, {"county_bureau"}},
          {0s, "food.illness.major", city_, {"city_bureau"}},
          {0s, "food.illness.major", regulator_, {"market_reg", "cdc"}},
          {0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {30min, "incident.initial", city_, {"city_bureau"}},
          {1h, "incident.initial", school_, {"principal"}},
          {2h, "incident.initial", city_, {"city_bureau"}}}},
        {"food.illness.major: a death is a major public-health incident for the city at once",
         {{0s,
           [] {
               auto f = illness(2);
               f.deaths = 1;
               return ev(f);
           }()},
          {10min, ev(ack(meal_subject))}},
         3h,
         {{0s, "food.illness", school_, food_school},
          {0s, "food.illness.major", district_, {"county_bureau"}},
          {0s, "food.illness.major", city_, {"city_bureau"}},
          {0s, "food.illness.major", regulator_, {"market_reg", "cdc"}},
          {0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {0s, "incident.major", city_, {"city_bureau", "emergency_office"}},
          {1h, "incident.initial", school_, {"principal"}},
          {2h, "incident.initial", city_, {"city_bureau"}}}},
        {"food.illness.major: an update to 5 cases upgrades the open incident",
         {{0s, ev(illness(2))}, {30min, ev(illness(5))}, {40min, ev(ack(meal_subject))}},
         3h,
         {{0s, "food.illness", school_, food_school},
          {30min, "food.illness.major", district_, {"county_bureau"}},
          {30min, "food.illness.major", city_, {"city_bureau"}},
          {30min, "food.illness.major", regulator_, {"market_reg", "cdc"}},
          {30min, "incident.initial", school_, {"principal", "safety_officer"}},
          {30min, "incident.initial", district_, {"county_bureau"}},
          {90min, "incident.initial", school_, {"principal"}},
          {150min, "incident.initial", city_, {"city_bureau"}}}},
        {"food.illness.samples_missing: unsealed samples go to the county at once",
         {{0s,
           [] {
               auto f = illness(3);
               f.samples_sealed = false;
               return ev(f);
           }()},
          {1h, ev(ack(meal_subject))}},
         3h,
         {{0s, "food.illness", school_, food_school},
          {0s, "food.illness.samples_missing", district_, {"county_bureau"}}}},
        {"food.supplier_cluster: illness at two schools sharing a supplier within 3 days",
         {{0s, with_supplier(illness(2), "420502J001")},
          {1h, ev(ack(meal_subject))},
          {24h, with_supplier(illness(2), "420503J001")},
          {25h, make_event(ack(meal_subject), "420503J001")}},
         48h,
         {{0s, "food.illness", school_, food_school},
          {24h, "food.illness", school_, food_school, "420503J001"},
          {24h, "food.supplier_cluster", city_, {"city_bureau"}, ""},
          {24h, "food.supplier_cluster", regulator_, {"market_reg", "cdc"}, ""}}},
        {"food.supplier_cluster: a third school pages the city and regulators again",
         {{0s, with_supplier(illness(2), "420502J001")},
          {1h, ev(ack(meal_subject))},
          {24h, with_supplier(illness(2), "420503J001")},
          {25h, make_event(ack(meal_subject), "420503J001")},
          {36h, with_supplier(illness(2), "420502P001")},
          {37h, make_event(ack(meal_subject), "420502P001")},
          {40h, with_supplier(illness(3), "420502P001")}},
         48h,
         {{0s, "food.illness", school_, food_school},
          {24h, "food.illness", school_, food_school, "420503J001"},
          {24h, "food.supplier_cluster", city_, {"city_bureau"}, ""},
          {24h, "food.supplier_cluster", regulator_, {"market_reg", "cdc"}, ""},
          {36h, "food.illness", school_, food_school, "420502P001"},
          {36h, "food.supplier_cluster", city_, {"city_bureau"}, ""},
          {36h, "food.supplier_cluster", regulator_, {"market_reg", "cdc"}, ""}}},
        {"food.sample.breach: a short sample, then the principal if unfixed",
         {{0s, sample("m1", 100)}},
         7h,
         {{0s, "food.sample.breach", school_, {"canteen_manager"}},
          {6h, "food.sample.breach", school_, {"principal"}}}},
        {"food.sample.repeat: three breaches in 30 days go to the county",
         {{0s, sample("m1", 100)},
          {1h, ev(resolve("canteen-1/m1"))},
          {24h, sample("m2", 90)},
          {25h, ev(resolve("canteen-1/m2"))},
          {48h, sample("m3", 120)},
          {49h, ev(resolve("canteen-1/m3"))}},
         72h,
         {{0s, "food.sample.breach", school_, {"canteen_manager"}},
          {24h, "food.sample.breach", school_, {"canteen_manager"}},
          {48h, "food.sample.breach", school_, {"canteen_manager"}},
          {48h, "food.sample.repeat", district_, {"county_bureau"}}}},
        {"food.accompany: each missed 陪餐 to the principal, three to the county",
         {{0s, food_kind(food_alert_kind::accompany_meal, "m1")},
          {24h, food_kind(food_alert_kind::accompany_meal, "m2")},
          {48h, food_kind(food_alert_kind::accompany_meal, "m3")}},
         72h,
         {{0s, "food.accompany.missed", school_, {"principal"}},
          {24h, "food.accompany.missed", school_, {"principal"}},
          {48h, "food.accompany.missed", school_, {"principal"}},
          {48h, "food.accompany.repeat", district_, {"county_bureau"}}}},
        {"food.cold_chain: 30 minutes out of range warns, 2 hours quarantines",
         [] {
             std::vector<input> v;
             for (int m = 0; m <= 130; m += 10)
                 v.push_back({micros(std::chrono::minutes(m)), reading(10.5)});
             return v;
         }(),
         3h,
         {{30min, "food.cold_chain.warn", school_, {"canteen_manager"}},
          {2h, "food.cold_chain.quarantine", school_, {"principal"}}}},
        {"food.cold_chain: a reading back in range restarts the clock",
         {{0s, reading(10)},
          {20min, reading(10)},
          {25min, reading(5)},
          {30min, reading(10)},
          {50min, reading(10)}},
         1h,
         {}},
        {"drill.too_slow: over the building's target, and twice in a row to the county",
         {{0s, drill("D-1", 150)}, {30 * 24h, drill("D-2", 121)}},
         31 * 24h,
         {{0s, "drill.too_slow", school_, {"safety_officer", "principal"}},
          {30 * 24h, "drill.too_slow", school_, {"safety_officer", "principal"}},
          {30 * 24h, "drill.too_slow.repeat", district_, {"county_bureau"}}}},
        {"drill.too_slow.repeat: a fast drill between two slow ones breaks the run",
         {{0s, drill("D-1", 150)}, {20 * 24h, drill("D-2", 100)}, {40 * 24h, drill("D-3", 130)}},
         41 * 24h,
         {{0s, "drill.too_slow", school_, {"safety_officer", "principal"}},
          {40 * 24h, "drill.too_slow", school_, {"safety_officer", "principal"}}}},
        {"drill.too_slow: a primary school's target is 180 s",
         {{0s, drill("D-1", 170, "420502P001")}, {1h, drill("D-2", 181, "420502P001")}},
         2h,
         {{1h, "drill.too_slow", school_, {"safety_officer", "principal"}, "420502P001"}}},
        {"drill.headcount: a head-count mismatch goes to the principal at once",
         {{0s, drill("D-1", 100, "420502J001", 499)}},
         1h,
         {{0s, "drill.headcount", school_, {"principal"}}}},
        {"drill.injury: an injury in a drill also opens an accident incident",
         {{0s,
           [] {
               auto e = drill("D-1", 100);
               std::get<drill_recorded>(e.body).injuries = 2;
               return e;
           }()},
          {10min, ev(ack("D-1"))}},
         1h,
         {{0s, "drill.headcount", school_, {"principal"}},
          {0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {1h, "incident.initial", school_, {"principal"}}}},
        {"drill.cadence: monthly for schools, quarterly for kindergartens",
         {{0s, drill("D-1", 100)}},
         29 * 24h,
         {{nov25, "drill.cadence", school_, {"safety_officer"}, "420502P001"},
          {nov25, "drill.cadence", school_, {"safety_officer"}, "420503J001"},
          {dec1, "drill.cadence", school_, {"principal"}, "420502P001"},
          {dec1, "drill.cadence", district_, {"county_bureau"}, "420502P001"},
          {dec1, "drill.cadence", school_, {"principal"}, "420503J001"},
          {dec1, "drill.cadence", district_, {"county_bureau"}, "420503J001"},
          {dec1, "drill.cadence", school_, {"safety_officer"}, "420502K001"}},
         true},
        {"drill.cadence: a drill after the reminder closes the school's absence",
         {{0s, drill("D-1", 100)}, {26 * 24h, drill("D-2", 100, "420502P001")}},
         29 * 24h,
         {{nov25, "drill.cadence", school_, {"safety_officer"}, "420502P001"},
          {nov25, "drill.cadence", school_, {"safety_officer"}, "420503J001"},
          {dec1, "drill.cadence", school_, {"principal"}, "420503J001"},
          {dec1, "drill.cadence", district_, {"county_bureau"}, "420503J001"},
          {dec1, "drill.cadence", school_, {"safety_officer"}, "420502K001"}},
         true},
        {"psych.red: school roles and guardian at once, principal at 10 min, county at 15",
         {{0s, psych(risk_level::red)}},
         1h,
         {{0s, "psych.red", school_, {"psych_teacher", "head_teacher", "principal", "safety_vp"}},
          {0s, "psych.red", school_, {"guardian"}},
          {10min, "psych.red", school_, {"principal"}},
          {15min, "psych.red", district_, {"county_centre"}}}},
        {"psych.red acknowledged within 10 minutes goes no further",
         {{0s, psych(risk_level::red)}, {9min, ev(ack("PA-1"))}},
         1h,
         {{0s, "psych.red", school_, {"psych_teacher", "head_teacher", "principal", "safety_vp"}},
          {0s, "psych.red", school_, {"guardian"}}}},
        {"psych.orange: assessment within 24 h",
         {{0s, psych(risk_level::orange)}},
         25h,
         {{0s, "psych.orange", school_, {"psych_teacher", "head_teacher"}},
          {24h, "psych.orange", school_, {"principal"}}}},
        {"psych.yellow: interview within 7 days",
         {{0s, psych(risk_level::yellow)}},
         8 * 24h,
         {{0s, "psych.yellow", school_, {"psych_teacher"}},
          {7 * 24h, "psych.yellow", school_, {"psych_teacher"}}}},
        {"psych.self_harm: also an emergency incident, acknowledged with the alert",
         {{0s, psych(risk_level::red, {"self_harm"})}, {5min, ev(ack("PA-1"))}},
         1h,
         {{0s, "psych.red", school_, {"psych_teacher", "head_teacher", "principal", "safety_vp"}},
          {0s, "psych.red", school_, {"guardian"}},
          {0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {1h, "incident.initial", school_, {"principal"}}}},
        {"psych.abuse: police and county at once",
         {{0s, psych(risk_level::red, {"abuse"})}, {5min, ev(ack("PA-1"))}},
         1h,
         {{0s, "psych.red", school_, {"psych_teacher", "head_teacher", "principal", "safety_vp"}},
          {0s, "psych.red", school_, {"guardian"}},
          {0s, "psych.abuse", regulator_, {"police"}},
          {0s, "psych.abuse", district_, {"county_bureau"}}}},
        {"bullying.report: 10-day investigation, then principal, +3 days county",
         {{0s, bullying(false)}},
         14 * 24h,
         {{0s, "bullying.report", school_, {"safety_officer"}},
          {0s, "bullying.report", school_, {"guardian"}},
          {10 * 24h, "bullying.report", school_, {"principal"}},
          {13 * 24h, "bullying.report", district_, {"county_bureau"}}}},
        {"bullying.determined stops the investigation deadlines",
         {{0s, bullying(false)}, {5 * 24h, bullying(false, determination::not_bullying)}},
         14 * 24h,
         {{0s, "bullying.report", school_, {"safety_officer"}},
          {0s, "bullying.report", school_, {"guardian"}}}},
        {"bullying.serious: police and county at once, and an emergency incident",
         {{0s, bullying(true)}, {3 * 24h, bullying(true, determination::bullying)}},
         14 * 24h,
         {{0s, "bullying.report", school_, {"safety_officer"}},
          {0s, "bullying.report", school_, {"guardian"}},
          {0s, "bullying.serious", regulator_, {"police"}},
          {0s, "bullying.serious", district_, {"county_bureau"}},
          {0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {30min, "incident.initial", city_, {"city_bureau"}},
          {1h, "incident.initial", school_, {"principal"}},
          {2h, "incident.initial", city_, {"city_bureau"}},
          {7 * 24h, "incident.initial", district_, {"county_bureau"}}}},
        {"epidemic.class_cluster: 3 cases in a day, county and CDC within 24 h",
         {{0s, cluster(3, 1)}},
         25h,
         {{0s, "epidemic.class_cluster", school_, {"school_doctor", "principal"}},
          {24h, "epidemic.class_cluster", district_, {"county_bureau"}},
          {24h, "epidemic.class_cluster", regulator_, {"cdc"}}}},
        {"epidemic.class_cluster: 4 cases in 3 days is below the limit, 5 is not",
         {{0s, cluster(4, 3)}, {1h, cluster(5, 3)}, {2h, ev(ack("7-3/influenza"))}},
         25h,
         {{1h, "epidemic.class_cluster", school_, {"school_doctor", "principal"}}}},
        {"epidemic.notifiable: a suspected notifiable disease goes out at once",
         {{0s, cluster(1, 1, true)}},
         25h,
         {{0s, "epidemic.notifiable", district_, {"county_bureau"}},
          {0s, "epidemic.notifiable", regulator_, {"cdc"}}}},
        {"bus.headcount: fewer off than on, at once",
         {{0s, trip(30, 29, 50)}},
         1h,
         {{0s,
           "bus.headcount",
           school_,
           {"bus_attendant", "principal", "guardian"},
           "420502P001"}}},
        {"bus.speed: over the limit to the transport manager",
         {{0s, trip(30, 30, 75)}},
         1h,
         {{0s, "bus.speed", school_, {"transport_manager"}, "420502P001"}}},
        {"incident.initial: school and county at once, city if the county is silent 30 min",
         {{0s, ev(report(0))}},
         8 * 24h,
         {{0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {30min, "incident.initial", city_, {"city_bureau"}},
          {1h, "incident.initial", school_, {"principal"}},
          {2h, "incident.initial", city_, {"city_bureau"}},
          {7 * 24h, "incident.initial", district_, {"county_bureau"}}}},
        {"incident.major: deaths go to the city at once, then daily progress",
         {{0s, ev(report(1))}, {20min, ev(ack("IR-1"))}},
         3 * 24h,
         {{0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {0s, "incident.major", city_, {"city_bureau", "emergency_office"}},
          {1h, "incident.initial", school_, {"principal"}},
          {2h, "incident.initial", city_, {"city_bureau"}},
          {24h, "incident.major", city_, {"city_bureau"}},
          {48h, "incident.major", city_, {"city_bureau"}},
          {72h, "incident.major", city_, {"city_bureau"}}}},
        {"incident.initial: a report to the county and the county's relay to the city meet "
         "their deadlines; an acknowledgement does not",
         {{0s, ev(report(0))},
          {10min, ev(ack("IR-1"))},
          {50min, ev(submitted("IR-1", tier::district))},
          {3h, ev(submitted("IR-1", tier::city))}},
         3h,
         {{0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}},
          {2h, "incident.initial", city_, {"city_bureau"}}}},
        {"incident.initial: resolving closes every deadline",
         {{0s, ev(report(0))}, {10min, ev(resolve("IR-1"))}},
         8 * 24h,
         {{0s, "incident.initial", school_, {"principal", "safety_officer"}},
          {0s, "incident.initial", district_, {"county_bureau"}}}},
        {"equipment.expiring: 30 days before expiry with no inspection booked",
         {{0s, equipment(20 * 24h)}},
         1h,
         {{0s, "equipment.expiring", school_, {"facilities_manager"}}}},
        {"equipment.expired: lock-out, principal and county",
         {{0s, equipment(-24h)}},
         1h,
         {{0s, "equipment.expired", school_, {"principal", "facilities_manager"}},
          {0s, "equipment.expired", district_, {"county_bureau"}}}},
        with({"timers that fall due while the broker is down fire at once, their pages marked late",
              {{0s, ev(illness(2))}},
              5h,
              {{0s, "food.illness", school_, food_school},
               {5h, "food.illness", district_, {"county_bureau"}},
               {5h, "food.illness", regulator_, {"market_reg", "cdc"}}}},
             [](scenario& s) {
                 s.jump = true;
                 s.check = pages_say_late;
             }),
        with({"pages of timers fired at their due time are not marked late",
              {{0s, ev(illness(2))}},
              5h,
              {{0s, "food.illness", school_, food_school},
               {2h, "food.illness", district_, {"county_bureau"}},
               {2h, "food.illness", regulator_, {"market_reg", "cdc"}}}},
             [](scenario& s) { s.check = pages_on_time; }),
        // Month end: every deadline of the month, and the drill calendar, at once.
        with({"after a long clock jump each escalation references its own timer event",
              {{0s, ev(hazard("HZ-A"))},
               {1h, make_event(hazard("HZ-B"), "420503J001")},
               {2h, ev(illness(2))}},
              31 * 24h,
              {{0s, "hazard.general", school_, {"safety_officer"}},
               {1h, "hazard.general", school_, {"safety_officer"}, "420503J001"},
               {2h, "food.illness", school_, food_school},
               {31 * 24h, "hazard.general", school_, {"safety_officer"}},
               {31 * 24h, "hazard.general", school_, {"principal"}},
               {31 * 24h, "hazard.general", district_, {"county_bureau"}},
               {31 * 24h, "hazard.general", school_, {"safety_officer"}, "420503J001"},
               {31 * 24h, "hazard.general", school_, {"principal"}, "420503J001"},
               {31 * 24h, "hazard.general", district_, {"county_bureau"}, "420503J001"},
               {31 * 24h, "food.illness", district_, {"county_bureau"}},
               {31 * 24h, "food.illness", regulator_, {"market_reg", "cdc"}}}},
             [](scenario& s) {
                 s.jump = true;
                 s.check = effects_follow_their_timer;
             }),
        with({"drill.cadence: a broker that starts with no event still checks",
              {},
              nov25,
              {{nov25, "drill.cadence", school_, {"safety_officer"}},
               {nov25, "drill.cadence", school_, {"safety_officer"}, "420502P001"},
               {nov25, "drill.cadence", school_, {"safety_officer"}, "420503J001"}},
              true},
             [](scenario& s) { s.silent_start = true; }),
        // Six floors: 120 s + 2 × 30 s, a proposal (M); four floors: 120 s, sourced (S).
        with({"drill.too_slow.tall: the target for taller buildings comes from the pack, marked M",
              {{0s, drill("D-1", 180, "420502J009")},
               {1h, drill("D-2", 181, "420502J009")},
               {2h, drill("D-3", 121, "420502J001")}},
              3h,
              {{1h, "drill.too_slow.tall", school_, {"safety_officer", "principal"}, "420502J009"},
               {2h, "drill.too_slow", school_, {"safety_officer", "principal"}}}},
             [](scenario& s) {
                 s.schools = tall_registry();
                 s.check = [](const harness& h, pingan::status mode) {
                     basis_of("drill.too_slow.tall", "M")(h, mode);
                     basis_of("drill.too_slow", "S")(h, mode);
                 };
             }),
        with(
            {"drill.too_slow.tall: the allowance per floor is a setting of the pack",
             {{0s, drill("D-1", 240, "420502J009")}, {1h, drill("D-2", 241, "420502J009")}},
             2h,
             {{1h, "drill.too_slow.tall", school_, {"safety_officer", "principal"}, "420502J009"}}},
            [](scenario& s) {
                s.schools = tall_registry();
                s.rules = slow_floors_pack();
                CHECK(s.rules->evacuation.per_floor_above == 60);
            }),
    };
}

// A harness with the scenario's rule set and schools.
harness harness_for(const scenario& s) {
    return harness(s.rules ? s.rules : default_pack(), s.schools ? s.schools : small_registry());
}

struct outcome {
    explicit outcome(const scenario& s) : h(harness_for(s)) {}
    harness h;
    std::vector<page> pages;
};

// Runs a scenario with every input given `mode`; returns the pages, sorted.
std::unique_ptr<outcome> play(const scenario& s, pingan::status mode = pingan::status::actual) {
    auto o = std::make_unique<outcome>(s);
    if (s.silent_start) {
        o->h.eng.start(o->h.st, t0());
        CHECK(o->h.eng.started(o->h.st));
    }
    o->h.fire_timers = !s.jump;
    for (auto in : s.inputs) {
        in.e.status = mode;
        o->h.put(in.e, t0() + in.at);
    }
    if (s.jump)
        o->h.fire_at(t0() + s.until);
    else
        o->h.advance(t0() + s.until);
    if (s.check) s.check(o->h, mode);
    for (const auto& e : o->h.derived()) {
        const auto* n = std::get_if<notification_requested>(&e.body);
        if (!n) continue;
        // Absence pages come from the calendar, not the inputs: only absence
        // scenarios expect them.
        if (!s.absence && (n->rule_id == "drill.cadence" || n->rule_id == "drill.bus.cadence"))
            continue;
        o->pages.push_back({e.received_at - t0(), n->rule_id, n->tier, n->roles, e.school});
    }
    std::sort(o->pages.begin(), o->pages.end());
    return o;
}

// The rule a derived event names; empty for rule set announcements.
std::string rule_of(const event& e) {
    return std::visit(
        [](const auto& b) -> std::string {
            if constexpr (requires { b.rule_id; })
                return b.rule_id;
            else
                return {};
        },
        e.body);
}

// Derived events caused by the scenario's inputs, not by the drill calendar.
std::vector<event> caused(const harness& h) {
    std::vector<event> v;
    for (auto& e : h.derived()) {
        auto r = rule_of(e);
        if (r != "drill.cadence" && r != "drill.bus.cadence" && e.type() != ruleset_loaded::type)
            v.push_back(e);
    }
    return v;
}

std::vector<page> sorted(std::vector<page> v) {
    std::sort(v.begin(), v.end());
    return v;
}

} // namespace

TEST_CASE("every scenario of the default pack pages exactly as expected", "[engine]") {
    for (const auto& s : scenarios()) {
        DYNAMIC_SECTION(s.name) {
            auto o = play(s);
            CHECK(o->pages == sorted(s.pages));
        }
    }
}

TEST_CASE("every scenario run as an exercise has only exercise effects", "[engine]") {
    for (const auto& s : scenarios()) {
        if (s.absence) continue; // absence pages are the calendar's, checked below
        DYNAMIC_SECTION(s.name) {
            auto o = play(s, pingan::status::exercise);
            CHECK(o->pages == sorted(s.pages));
            for (const auto& e : caused(o->h)) {
                INFO(e.type());
                CHECK(e.status == pingan::status::exercise);
                if (const auto* n = std::get_if<notification_requested>(&e.body)) {
                    CHECK(n->exercise);
                    CHECK(n->text.starts_with("【演练 EXERCISE】"));
                }
            }
        }
    }
}

TEST_CASE("every scenario run as a test pages no one", "[engine]") {
    for (const auto& s : scenarios()) {
        if (s.absence) continue;
        DYNAMIC_SECTION(s.name) {
            auto o = play(s, pingan::status::test);
            CHECK(o->pages.empty());
            CHECK(of_type(caused(o->h), escalation_raised::type).empty());
            for (const auto& e : caused(o->h))
                CHECK(e.status == pingan::status::test);
            // The rules still ran: a test shows that they match.
            if (!s.pages.empty())
                CHECK_FALSE(of_type(o->h.derived(), incident_opened::type).empty());
        }
    }
}

TEST_CASE("exercise drill records do not count for the real drill cadence", "[engine]") {
    harness h;
    auto d = drill("D-1", 100);
    d.status = pingan::status::exercise;
    h.put(d, t0());
    auto out = h.advance(t0() + nov25);
    std::set<std::string> schools;
    for (const auto& e : of_type(out, notification_requested::type)) {
        schools.insert(e.school);
        CHECK(e.status == pingan::status::system);
        CHECK_FALSE(std::get<notification_requested>(e.body).exercise);
    }
    CHECK(schools == std::set<std::string>{"420502J001", "420502P001", "420503J001"});
}

TEST_CASE("every scenario gives byte-identical derived events when run again", "[engine]") {
    for (const auto& s : scenarios()) {
        DYNAMIC_SECTION(s.name) {
            auto a = play(s), b = play(s);
            REQUIRE(a->h.log.size() == b->h.log.size());
            for (std::size_t i = 0; i < a->h.log.size(); ++i)
                if (a->h.log[i].source == "pingan-broker/engine")
                    CHECK(encode(a->h.log[i]) == encode(b->h.log[i]));
        }
    }
}

TEST_CASE("replaying a log through a fresh engine reproduces it byte for byte", "[engine]") {
    for (const auto& s : scenarios()) {
        DYNAMIC_SECTION(s.name) {
            auto live = play(s);
            // Inputs are everything not derived, plus the timer events the
            // broker appended; the replay fires nothing of its own.
            auto replay = harness_for(s);
            replay.fire_timers = false;
            for (const auto& e : live->h.log) {
                bool input = e.source != "pingan-broker/engine" || e.type() == timer_fired::type;
                if (input) replay.store(e, e.received_at);
            }
            REQUIRE(replay.log.size() == live->h.log.size());
            for (std::size_t i = 0; i < live->h.log.size(); ++i)
                CHECK(encode(replay.log[i]) == encode(live->h.log[i]));
        }
    }
}

TEST_CASE("derived events name their rule and the rule set hash", "[engine]") {
    harness h;
    auto out = h.put(ev(illness(6)), t0());
    REQUIRE(out.size() > 3);
    auto hash = default_pack()->hash;
    auto loaded = bodies<ruleset_loaded>(out);
    REQUIRE(loaded.size() == 1);
    CHECK(loaded[0].hash == hash);
    CHECK(loaded[0].rule_count == default_pack()->rules.size());
    CHECK_FALSE(loaded[0].previous_hash);
    for (const auto& n : bodies<notification_requested>(out)) {
        CHECK(n.ruleset_hash == hash);
        CHECK(default_pack()->find(n.rule_id));
        CHECK((n.basis == "S" || n.basis == "L" || n.basis == "M"));
    }
    for (const auto& o : bodies<incident_opened>(out))
        CHECK(o.ruleset_hash == hash);
    // Derived events reference their cause and have UUIDv8 ids.
    for (const auto& e : out) {
        CHECK(e.references.size() == 1);
        CHECK(e.id.str()[14] == '8');
    }
    // The rule set is announced once.
    CHECK(bodies<ruleset_loaded>(h.put(ev(illness(2, "dinner")), t0() + 1s)).empty());
}

TEST_CASE("a new rule set is announced with the previous hash", "[engine]") {
    harness h;
    h.put(ev(illness(2)), t0());
    auto text = default_pack_text() + "\n# tuned\n";
    auto r = rules::parse(text);
    REQUIRE(r.rules);
    engine next(r.rules, small_registry());
    std::vector<event> out;
    auto e = ev(illness(2, "dinner"));
    e.received_at = t0() + 1h;
    next.apply(h.st, e, out);
    auto loaded = bodies<ruleset_loaded>(out);
    REQUIRE(loaded.size() == 1);
    CHECK(loaded[0].hash == r.rules->hash);
    CHECK(loaded[0].previous_hash == default_pack()->hash);
}

TEST_CASE("late events for a resolved incident do not reopen it; new evidence does", "[engine]") {
    harness h;
    h.put(ev(report(0)), t0());
    auto closed = h.put(ev(resolve("IR-1")), t0() + 1h);
    REQUIRE(bodies<incident_closed>(closed).size() == 1);
    // A copy of the report that happened before the resolution, delivered late.
    auto late = ev(report(0));
    late.occurred_at = t0() + 10min;
    auto out = h.put(late, t0() + 2h);
    CHECK(out.empty());
    // A new report about the same incident after it was closed reopens it.
    auto fresh = ev(report(0));
    fresh.occurred_at = t0() + 3h;
    out = h.put(fresh, t0() + 3h);
    CHECK(bodies<incident_reopened>(out).size() == 1);
    CHECK(bodies<notification_requested>(out).size() == 2);
    const auto& inc = h.st.incidents.begin()->second;
    CHECK_FALSE(inc.closed);
    CHECK(inc.reopened == 1);
    CHECK(inc.events == 3);
}

TEST_CASE("two acknowledgements racing leave one acknowledged incident", "[engine]") {
    harness h;
    h.put(ev(illness(2)), t0());
    auto a = ev(ack(meal_subject));
    a.actor = "bureau:duty-1";
    auto b = ev(ack(meal_subject));
    b.actor = "bureau:duty-2";
    CHECK(h.put(a, t0() + 1h).empty());
    CHECK(h.put(b, t0() + 1h).empty());
    CHECK(of_type(h.advance(t0() + 5h), notification_requested::type).empty());
    REQUIRE(h.st.incidents.size() == 1);
    const auto& inc = h.st.incidents.begin()->second;
    CHECK(inc.milestones.count("acknowledged"));
    CHECK(inc.acked_by == std::vector<std::string>{"bureau:duty-1", "bureau:duty-2"});
}

TEST_CASE("an acknowledgement after a deadline the broker had not fired yet still escalates",
          "[engine]") {
    harness h;
    h.fire_timers = false;
    h.put(ev(illness(2)), t0());
    auto out = h.put(ev(ack(meal_subject)), t0() + 2h + 1s);
    auto pages = bodies<notification_requested>(out);
    REQUIRE(pages.size() == 2);
    CHECK(pages[0].tier == tier::district);
    CHECK(bodies<incident_overdue>(out).size() == 2);
    // Only the drill calendar's timers are left.
    for (const auto& [id, t] : h.st.timers)
        CHECK(t.kind == engine_timer::what::absence);
}

TEST_CASE("a cross-school cluster carries its schools, districts and reports", "[engine]") {
    harness h;
    auto first = with_supplier(illness(2), "420502J001");
    auto second = with_supplier(illness(2), "420503J001");
    h.put(first, t0());
    auto opened_now = h.put(second, t0() + 24h);
    // Its opening references its cause, then the window's other reports.
    bool opened = false;
    for (const auto& e : of_type(opened_now, incident_opened::type))
        if (std::get<incident_opened>(e.body).kind == "supplier_cluster") {
            opened = true;
            CHECK(e.references == std::vector<event_id>{second.id, first.id});
        }
    CHECK(opened);
    h.put(with_supplier(illness(2), "420502P001"), t0() + 36h);
    h.put(with_supplier(illness(4), "420502P001"), t0() + 40h);
    const incident* c = nullptr;
    for (const auto& [id, i] : h.st.incidents)
        if (i.kind == "supplier_cluster") c = &i;
    REQUIRE(c);
    CHECK(c->school.empty());
    CHECK(c->schools == std::set<std::string>{"420502J001", "420502P001", "420503J001"});
    CHECK(c->districts == std::set<std::string>{"420502", "420503"});
    CHECK(c->reports.size() == 4);
    CHECK(c->count == 3);
    CHECK(c->title.find("3 所学校") != std::string::npos);
    auto j = incident_to_json(*c);
    CHECK(j["schools"].size() == 3);
    CHECK(j["districts"] == json::array({"420502", "420503"}));
    // Its events reach the district of the report that caused them.
    std::set<std::string> districts;
    for (const auto& e : h.derived())
        if (const auto* n = std::get_if<notification_requested>(&e.body);
            n && n->incident_id == c->id) {
            districts.insert(e.district);
            if (e.received_at == t0() + 36h) CHECK(n->text.starts_with("【扩大 GROWN】"));
        }
    CHECK(districts == std::set<std::string>{"420502", "420503"});
}

TEST_CASE("a typed incident references its report and the report names its incident", "[engine]") {
    harness h;
    auto out = h.put(ev(illness(6)), t0());
    auto reports = of_type(out, incident_reported::type);
    REQUIRE(reports.size() == 1);
    const auto& r = std::get<incident_reported>(reports[0].body);
    CHECK(r.category == incident_category::public_health);
    CHECK(r.injuries == 6);
    CHECK(reports[0].source == "pingan-broker/engine");
    CHECK(engine::made_by_engine(reports[0]));
    const incident* food = nullptr;
    const incident* emergency = nullptr;
    for (const auto& [id, i] : h.st.incidents)
        (i.kind == "food_illness" ? food : emergency) = &i;
    REQUIRE(food);
    REQUIRE(emergency);
    CHECK(r.incident_id == food->id);
    CHECK(emergency->kind == "emergency");
    CHECK(emergency->parent == food->id);
    CHECK(emergency->subject == food->id);
    // What the emergency rules derived follows the report, not the food alert.
    for (const auto& e : out)
        if (const auto* o = std::get_if<incident_opened>(&e.body); o && o->kind == "emergency")
            CHECK(e.references[0] == reports[0].id);
    // A second report of the same meal opens no second emergency.
    out = h.put(ev(illness(8)), t0() + 10min);
    CHECK(of_type(out, incident_reported::type).empty());
}

TEST_CASE("a deadline step with if_told: remind says it is a reminder", "[engine]") {
    harness h;
    h.put(psych(risk_level::red), t0());
    auto out = h.advance(t0() + 11min);
    auto pages = bodies<notification_requested>(out);
    REQUIRE(pages.size() == 1);
    CHECK(pages[0].roles == std::vector<std::string>{"principal"});
    CHECK(pages[0].text.starts_with("【催办 REMINDER】"));
    CHECK(bodies<incident_overdue>(out).size() == 1);
    CHECK(bodies<escalation_raised>(out).empty()); // the principal already knows
}

TEST_CASE("test event ids stay distinct past sixteen events", "[engine]") {
    std::set<std::string> ids;
    for (int i = 0; i < 300; ++i)
        ids.insert(test_id(t0()).str());
    CHECK(ids.size() == 300);
}

TEST_CASE("occurred_at far in the past or future does not move deadlines or windows", "[engine]") {
    harness h;
    for (int i = 0; i < 3; ++i) {
        auto e = ev(hazard("OLD-" + std::to_string(i)));
        e.occurred_at = at("2016-01-01T00:00:00Z");
        h.put(e, t0() + std::chrono::hours(i));
    }
    // Old hazards count for deadlines from their receipt, not for the 7-day window.
    CHECK(bodies<incident_opened>(h.derived()).size() == 3);
    for (const auto& [id, inc] : h.st.incidents)
        CHECK(inc.kind == "hazard");
    auto due = h.st.incidents.begin()->second.due_us;
    REQUIRE(due);
    CHECK(*due >= to_us(t0() + 7 * 24h));
    auto future = ev(hazard("FUTURE"));
    future.occurred_at = at("2100-01-01T00:00:00Z");
    auto out = h.put(future, t0() + 4h);
    auto opened = bodies<incident_opened>(out);
    REQUIRE(opened.size() == 1);
    CHECK(opened[0].due == t0() + 4h + 7 * 24h);
    CHECK(bodies<incident_opened>(h.put(ev(hazard("NOW-1")), t0() + 5h)).size() == 1);
    // The future hazard counted as now: with NOW-1 that is two recent hazards, not three.
    CHECK(h.st.incidents.size() == 5);
}

TEST_CASE("a hazard closes only when verified by someone other than the fixer", "[engine]") {
    harness h;
    h.put(ev(hazard("HZ-9")), t0());
    h.put(rectified("HZ-9", "worker-1"), t0() + 24h);
    hazard_verified v;
    v.hazard_id = "HZ-9";
    v.verifier = "worker-1";
    v.result = verify_result::pass;
    auto out = h.put(ev(v), t0() + 25h);
    CHECK(bodies<incident_closed>(out).empty());
    auto rejected = bodies<notification_requested>(out);
    REQUIRE(rejected.size() == 1);
    CHECK(rejected[0].text.find("worker-1") != std::string::npos);
    // A failed verification by another person reopens the rectification.
    v.verifier = "inspector-2";
    v.result = verify_result::fail;
    out = h.put(ev(v), t0() + 26h);
    CHECK(bodies<incident_reopened>(out).size() == 1);
    auto& inc = h.st.incidents.begin()->second;
    CHECK_FALSE(inc.milestones.count("rectified"));
    REQUIRE(inc.due_us);
    CHECK(*inc.due_us == to_us(t0() + 26h + 7 * 24h));
    // The new deadline escalates like the first one did.
    auto later = h.advance(t0() + 26h + 7 * 24h);
    REQUIRE(bodies<incident_overdue>(later).size() == 1);
    h.put(rectified("HZ-9", "worker-3"), t0() + 34 * 24h);
    v.result = verify_result::pass;
    out = h.put(ev(v), t0() + 35 * 24h);
    auto closed = bodies<incident_closed>(out);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].reason == "verified by inspector-2");
    CHECK(inc.closed);
    CHECK(inc.milestones.count("verified"));
    // An incident.resolved cannot close a hazard: it needs verification.
    harness h2;
    h2.put(ev(hazard("HZ-10")), t0());
    CHECK(bodies<incident_closed>(h2.put(ev(resolve("HZ-10")), t0() + 1h)).empty());
}

TEST_CASE("exercise and real reports of one hazard never merge", "[engine]") {
    harness h;
    auto real = ev(hazard("HZ-1"));
    auto drill_copy = ev(hazard("HZ-1"));
    drill_copy.status = pingan::status::exercise;
    h.put(real, t0());
    h.put(drill_copy, t0() + 1min);
    CHECK(h.st.incidents.size() == 2);
    // An exercise acknowledgement does not silence the real incident.
    auto a = ev(ack("HZ-1"));
    a.status = pingan::status::exercise;
    h.put(a, t0() + 2min);
    for (const auto& [id, inc] : h.st.incidents)
        CHECK(inc.milestones.count("acknowledged") ==
              (inc.mode == pingan::status::exercise ? 1u : 0u));
}

TEST_CASE("minors' details appear in no page, title or incident record, at any tier", "[engine]") {
    harness h;
    h.put(psych(risk_level::red, {"SH01", "abuse"}), t0());
    auto out = h.advance(t0() + 1h);
    auto all = bodies<notification_requested>(h.derived());
    REQUIRE(all.size() >= 4);
    for (const auto& n : all) {
        CHECK(n.text.find("stu-7f3a9c") == std::string::npos);
        CHECK(n.text.find("SH01") == std::string::npos);
    }
    for (const auto& o : bodies<incident_opened>(h.derived())) {
        CHECK(o.title.find("stu-7f3a9c") == std::string::npos);
        CHECK(o.subject.find("stu-7f3a9c") == std::string::npos);
    }
    REQUIRE_FALSE(h.st.incidents.empty());
    for (const auto& [id, inc] : h.st.incidents) {
        CHECK(inc.facts.find("stu-7f3a9c") == std::string::npos);
        CHECK(inc.facts.find("SH01") == std::string::npos);
    }
    for (const auto& e : h.derived())
        if (e.type() != ruleset_loaded::type) CHECK(e.scope == scope::private_);
}

TEST_CASE("a second report of an open incident joins it and pages no one again", "[engine]") {
    harness h;
    h.put(ev(illness(2)), t0());
    auto out = h.put(ev(illness(3)), t0() + 10min);
    CHECK(out.empty());
    REQUIRE(h.st.incidents.size() == 1);
    CHECK(h.st.incidents.begin()->second.events == 2);
}

TEST_CASE("derived and system events are never inputs", "[engine]") {
    harness h;
    auto out = h.put(ev(illness(6)), t0());
    auto before = h.st.incidents.size();
    for (auto e : out) {
        std::vector<event> again;
        h.eng.apply(h.st, e, again);
        CHECK(again.empty());
    }
    CHECK(h.st.incidents.size() == before);
}

TEST_CASE("timer keys sort by due time, earliest first, including before 1970", "[engine]") {
    CHECK(timer_key(-5, "b") < timer_key(3, "a"));
    CHECK(timer_key(3, "a") < timer_key(3, "b"));
    CHECK(timer_key(3, "z") < timer_key(4, "a"));
    CHECK(timer_key(0, "").size() == 8);
}

TEST_CASE("incidents round trip through their stored form", "[engine]") {
    harness h;
    h.put(ev(hazard("HZ-1")), t0());
    h.put(rectified("HZ-1", "w"), t0() + 1h);
    const auto& inc = h.st.incidents.begin()->second;
    incident back;
    REQUIRE(decode_incident(encode_incident(inc), back));
    CHECK(encode_incident(back) == encode_incident(inc));
    CHECK(back.rectified_by == "w");
    CHECK(back.milestones == inc.milestones);
    CHECK_FALSE(decode_incident("garbage", back));
    auto j = incident_to_json(inc);
    CHECK(j["state"] == "rectified");
    CHECK(j["kind"] == "hazard");
}

TEST_CASE("a page that reached no one goes to the next tier: school to county, district to city",
          "[engine]") {
    harness h;
    auto failed = [](tier t, std::string incident) {
        notification_failed f;
        f.notification_id = "N-" + incident;
        f.incident_id = std::move(incident);
        f.tier = t;
        f.error = "no receiver confirmed";
        f.final = true;
        return f;
    };
    auto p = bodies<notification_requested>(h.put(ev(failed(tier::school, "INC-1")), t0()));
    REQUIRE(p.size() == 1);
    CHECK(p[0].rule_id == "notify.undeliverable");
    CHECK(p[0].tier == tier::district);
    p = bodies<notification_requested>(
        h.put(ev(failed(tier::district, "INC-2")), t0() + std::chrono::minutes(1)));
    REQUIRE(p.size() == 1);
    CHECK(p[0].rule_id == "notify.undeliverable_district");
    CHECK(p[0].tier == tier::city);
    CHECK(p[0].roles == std::vector<std::string>{"city_bureau"});
    // An attempt that is not the last pages no one.
    auto retrying = failed(tier::district, "INC-3");
    retrying.final = false;
    CHECK(h.put(ev(retrying), t0() + std::chrono::minutes(2)).empty());
}

TEST_CASE("an acknowledgement from another school does not silence an incident", "[engine]") {
    harness h;
    h.put(ev(illness(2)), t0());
    REQUIRE(h.st.incidents.size() == 1);
    auto id = h.st.incidents.begin()->first;
    // A key of another school names the incident by its id.
    auto other = ev(ack(id), "420503J001");
    other.actor = "school:420503J001";
    CHECK(h.put(other, t0() + std::chrono::minutes(10)).empty());
    const auto& inc = h.st.incidents.begin()->second;
    CHECK_FALSE(inc.milestones.count("acknowledged"));
    CHECK(inc.acked_by.empty());
    // Its deadline still escalates.
    CHECK_FALSE(
        of_type(h.advance(t0() + std::chrono::hours(3)), notification_requested::type).empty());
    // The incident's own school acknowledges it.
    auto own = ev(ack(id));
    own.actor = "school:420502J001";
    h.put(own, t0() + std::chrono::hours(3) + std::chrono::minutes(1));
    CHECK(h.st.incidents.begin()->second.milestones.count("acknowledged"));
}
