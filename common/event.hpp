// The event model: one append-only log of facts.
//
// Every fact is an event: a school's report, a sensor reading, an
// acknowledgement by the safety office, an escalation the broker raised. An
// event is an envelope (who, where, when, how sure, how urgent, in CAP 1.2
// vocabulary) and a typed body. The event type is the body's type name, so the
// two cannot disagree. docs/events.md documents the JSON mapping of every field.
//
// No I/O here: see codec.hpp for bytes and JSON, validate.hpp for checks.
#pragma once

#include "event_id.hpp"
#include "fields.hpp"
#include "time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pingan {

// ---- CAP 1.2 vocabulary ----------------------------------------------------

// Actual: a real event. Exercise: a drill; only ever produces Exercise effects.
// System: made by the broker itself. Test: never pages anyone.
enum class status : std::uint8_t { actual, exercise, system, test };
enum class severity : std::uint8_t { extreme, severe, moderate, minor, unknown };
enum class urgency : std::uint8_t { immediate, expected, future, past, unknown };
enum class certainty : std::uint8_t { observed, likely, possible, unlikely, unknown };
enum class scope : std::uint8_t { public_, restricted, private_ };

template <> struct enum_names<status> {
    static constexpr std::array names{"Actual", "Exercise", "System", "Test"};
};
template <> struct enum_names<severity> {
    static constexpr std::array names{"Extreme", "Severe", "Moderate", "Minor", "Unknown"};
};
template <> struct enum_names<urgency> {
    static constexpr std::array names{"Immediate", "Expected", "Future", "Past", "Unknown"};
};
template <> struct enum_names<certainty> {
    static constexpr std::array names{"Observed", "Likely", "Possible", "Unlikely", "Unknown"};
};
template <> struct enum_names<scope> {
    static constexpr std::array names{"Public", "Restricted", "Private"};
};

// Severity rank for "at least as severe as": Extreme 4 … Minor 1, Unknown 0.
constexpr int severity_rank(severity s) noexcept {
    switch (s) {
    case severity::extreme:
        return 4;
    case severity::severe:
        return 3;
    case severity::moderate:
        return 2;
    case severity::minor:
        return 1;
    default:
        return 0;
    }
}

// ---- Domain vocabulary -----------------------------------------------------

enum class hazard_area : std::uint8_t {
    surroundings,
    building,
    fire,
    food,
    lab,
    traffic,
    equipment,
    utilities
};
enum class hazard_grade : std::uint8_t { general, major };
enum class verify_result : std::uint8_t { pass, fail };
enum class drill_type : std::uint8_t { fire, earthquake, bus, intruder };
enum class drill_mode : std::uint8_t { live, tabletop };
enum class food_alert_kind : std::uint8_t { illness, sample, accompany_meal, cold_chain };
enum class food_zone : std::uint8_t { cold_storage, freezer, hot_holding, sample_fridge };
enum class risk_level : std::uint8_t { red, orange, yellow };
enum class psych_source : std::uint8_t { screening, teacher, self, peer, parent };
enum class referral : std::uint8_t { none, school_counsellor, county_centre, hospital, police };
enum class bullying_form : std::uint8_t { physical, verbal, property, exclusion, cyber, sexual };
enum class injury : std::uint8_t { none, minor, serious };
enum class determination : std::uint8_t { pending, bullying, not_bullying };
enum class incident_category : std::uint8_t {
    disaster,
    accident,
    public_health,
    social_security,
    exam,
    cyber
};
enum class incident_level : std::uint8_t { I, II, III, IV };
enum class tier : std::uint8_t { school, district, city, regulator };

template <> struct enum_names<hazard_area> {
    static constexpr std::array names{"surroundings", "building", "fire",      "food",
                                      "lab",          "traffic",  "equipment", "utilities"};
};
template <> struct enum_names<hazard_grade> {
    static constexpr std::array names{"general", "major"};
};
template <> struct enum_names<verify_result> { static constexpr std::array names{"pass", "fail"}; };
template <> struct enum_names<drill_type> {
    static constexpr std::array names{"fire", "earthquake", "bus", "intruder"};
};
template <> struct enum_names<drill_mode> {
    static constexpr std::array names{"live", "tabletop"};
};
template <> struct enum_names<food_alert_kind> {
    static constexpr std::array names{"illness", "sample", "accompany_meal", "cold_chain"};
};
template <> struct enum_names<food_zone> {
    static constexpr std::array names{"cold_storage", "freezer", "hot_holding", "sample_fridge"};
};
template <> struct enum_names<risk_level> {
    static constexpr std::array names{"red", "orange", "yellow"};
};
template <> struct enum_names<psych_source> {
    static constexpr std::array names{"screening", "teacher", "self", "peer", "parent"};
};
template <> struct enum_names<referral> {
    static constexpr std::array names{"none", "school_counsellor", "county_centre", "hospital",
                                      "police"};
};
template <> struct enum_names<bullying_form> {
    static constexpr std::array names{"physical",  "verbal", "property",
                                      "exclusion", "cyber",  "sexual"};
};
template <> struct enum_names<injury> {
    static constexpr std::array names{"none", "minor", "serious"};
};
template <> struct enum_names<determination> {
    static constexpr std::array names{"pending", "bullying", "not_bullying"};
};
template <> struct enum_names<incident_category> {
    static constexpr std::array names{"disaster",        "accident", "public_health",
                                      "social_security", "exam",     "cyber"};
};
template <> struct enum_names<incident_level> {
    static constexpr std::array names{"I", "II", "III", "IV"};
};
template <> struct enum_names<tier> {
    static constexpr std::array names{"school", "district", "city", "regulator"};
};

// ---- Bodies ------------------------------------------------------------------
// Each body names its event type and its current version, and lists its fields.

// A photo in a school service's photo store (docs/services.md), named by the
// BLAKE2b-256 of its bytes: the hash in the chained record makes the photo
// tamper-evident.
struct photo_ref {
    std::string hash; // 64 lower-case hex digits
    std::uint64_t size = 0;
    std::string type; // image/jpeg or image/png

    template <class F> void fields(F&& f) {
        f("hash", hash, code);
        f("size", size, key);
        f("type", type, key);
    }
};
inline constexpr field_opts photo_list{field_opts::kind::key, 64, 16, 2};

// 隐患: a hazard found at a school (DOMAIN §4).
struct hazard_reported {
    static constexpr std::string_view type = "hazard.reported";
    static constexpr std::uint32_t version = 2;
    std::string hazard_id;
    hazard_area area{};
    hazard_grade grade{};
    std::optional<std::string> criterion_code; // clause of the 判定指南
    std::string description;
    std::string location;
    std::string found_by;
    std::vector<std::string> photos; // references to stored photos, never the bytes
    std::optional<std::string> owner;
    std::optional<timestamp> deadline;
    std::optional<std::string> interim_control;
    bool area_closed = false;
    std::vector<photo_ref> photo_refs; // version 2

    template <class F> void fields(F&& f) {
        f("hazard_id", hazard_id, key);
        f("area", area, key);
        f("grade", grade, key);
        f("criterion_code", criterion_code, code);
        f("description", description, text(2000));
        f("location", location, text(200));
        f("found_by", found_by, key);
        f("photos", photos, text(256, 16));
        f("owner", owner, key);
        f("deadline", deadline, key);
        f("interim_control", interim_control, text(500));
        f("area_closed", area_closed, key);
        f("photo_refs", photo_refs, photo_list);
    }
};

struct hazard_rectified {
    static constexpr std::string_view type = "hazard.rectified";
    static constexpr std::uint32_t version = 2;
    std::string hazard_id;
    std::string rectified_by;
    std::string description;
    std::vector<std::string> photos;
    std::vector<photo_ref> photo_refs; // version 2

    template <class F> void fields(F&& f) {
        f("hazard_id", hazard_id, key);
        f("rectified_by", rectified_by, key);
        f("description", description, text(2000));
        f("photos", photos, text(256, 16));
        f("photo_refs", photo_refs, photo_list);
    }
};

// Verification must be by someone other than the fixer (DOMAIN §4 rule 3).
struct hazard_verified {
    static constexpr std::string_view type = "hazard.verified";
    static constexpr std::uint32_t version = 2;
    std::string hazard_id;
    std::string verifier;
    verify_result result{};
    std::string evidence;
    std::vector<std::string> photos;
    std::vector<photo_ref> photo_refs; // version 2

    template <class F> void fields(F&& f) {
        f("hazard_id", hazard_id, key);
        f("verifier", verifier, key);
        f("result", result, key);
        f("evidence", evidence, text(2000));
        f("photos", photos, text(256, 16));
        f("photo_refs", photo_refs, photo_list);
    }
};

struct equipment_inspection {
    static constexpr std::string_view type = "equipment.inspection";
    static constexpr std::uint32_t version = 1;
    std::string equipment_id;
    std::string kind;
    timestamp cert_expires_on{};
    bool inspection_booked = false;
    std::optional<timestamp> inspected_at;
    bool passed = false;

    template <class F> void fields(F&& f) {
        f("equipment_id", equipment_id, key);
        f("kind", kind, text(64));
        f("cert_expires_on", cert_expires_on, key);
        f("inspection_booked", inspection_booked, key);
        f("inspected_at", inspected_at, key);
        f("passed", passed, key);
    }
};

// 应急疏散演练 record (DOMAIN §3).
struct drill_recorded {
    static constexpr std::string_view type = "drill.recorded";
    static constexpr std::uint32_t version = 1;
    std::string drill_id;
    drill_type kind{};
    drill_mode mode{};
    bool announced = false;
    timestamp started_at{};
    timestamp all_clear_at{};
    std::uint32_t evacuation_seconds = 0;
    std::uint32_t target_seconds = 0; // for the building's height, from the registry
    std::uint32_t floors = 0;
    std::uint32_t participants = 0;
    std::uint32_t headcount_expected = 0;
    std::uint32_t headcount_reported = 0;
    std::uint32_t injuries = 0;
    std::vector<std::string> problems;
    std::vector<std::string> corrective_actions;

    template <class F> void fields(F&& f) {
        f("drill_id", drill_id, key);
        f("drill_type", kind, key);
        f("mode", mode, key);
        f("announced", announced, key);
        f("started_at", started_at, key);
        f("all_clear_at", all_clear_at, key);
        f("evacuation_seconds", evacuation_seconds, key);
        f("target_seconds", target_seconds, key);
        f("floors", floors, key);
        f("participants", participants, key);
        f("headcount_expected", headcount_expected, key);
        f("headcount_reported", headcount_reported, key);
        f("injuries", injuries, key);
        f("problems", problems, text(500));
        f("corrective_actions", corrective_actions, text(500));
    }
};

// Canteen alert (DOMAIN §2): illness after a meal, a sample or 陪餐 breach,
// or a cold-chain excursion raised by the canteen service.
struct food_alert {
    static constexpr std::string_view type = "food.alert";
    static constexpr std::uint32_t version = 1;
    std::string canteen_id;
    food_alert_kind kind{};
    std::optional<std::string> meal_id;
    std::uint32_t cases = 0;
    std::uint32_t deaths = 0;
    bool service_stopped = false;
    bool samples_sealed = false;
    std::optional<std::string> supplier;
    std::optional<std::string> lot;
    std::optional<food_zone> zone;
    std::optional<double> celsius;
    std::optional<std::int64_t> duration_seconds;
    std::string description;

    template <class F> void fields(F&& f) {
        f("canteen_id", canteen_id, key);
        f("kind", kind, key);
        f("meal_id", meal_id, key);
        f("cases", cases, key);
        f("deaths", deaths, key);
        f("service_stopped", service_stopped, key);
        f("samples_sealed", samples_sealed, key);
        f("supplier", supplier, key);
        f("lot", lot, key);
        f("zone", zone, key);
        f("celsius", celsius, key);
        f("duration_seconds", duration_seconds, key);
        f("description", description, text(1000));
    }
};

struct food_temp_reading {
    static constexpr std::string_view type = "food.temp_reading";
    static constexpr std::uint32_t version = 1;
    std::string canteen_id;
    std::string sensor_id;
    food_zone zone{};
    double celsius = 0;

    template <class F> void fields(F&& f) {
        f("canteen_id", canteen_id, key);
        f("sensor_id", sensor_id, key);
        f("zone", zone, key);
        f("celsius", celsius, key);
    }
};

// 留样: a retained sample of one dish of one meal.
struct food_sample {
    static constexpr std::string_view type = "food.sample";
    static constexpr std::uint32_t version = 1;
    std::string canteen_id;
    std::string meal_id;
    std::string dish;
    double grams = 0;
    timestamp stored_at{};
    std::optional<timestamp> discarded_at;

    template <class F> void fields(F&& f) {
        f("canteen_id", canteen_id, key);
        f("meal_id", meal_id, key);
        f("dish", dish, text(100));
        f("grams", grams, key);
        f("stored_at", stored_at, key);
        f("discarded_at", discarded_at, key);
    }
};

// 陪餐: a school leader ate the meal with students.
struct food_accompany {
    static constexpr std::string_view type = "food.accompany_meal";
    static constexpr std::uint32_t version = 1;
    std::string canteen_id;
    std::string meal_id;
    std::string leader;
    std::string leader_role;
    std::string remarks;

    template <class F> void fields(F&& f) {
        f("canteen_id", canteen_id, key);
        f("meal_id", meal_id, key);
        f("leader", leader, key);
        f("leader_role", leader_role, key);
        f("remarks", remarks, text(500));
    }
};

// A student's psychological-health alert. Minors' data: only a pseudonymous
// reference (a keyed hash made at the school) and coded indicators, never a
// name or free text; scope is always Private (DOMAIN §5).
struct psych_alert {
    static constexpr std::string_view type = "psych.alert";
    static constexpr std::uint32_t version = 1;
    std::string alert_id;
    std::string student_ref;
    risk_level level{};
    psych_source source{};
    std::vector<std::string> indicator_codes;
    std::string reported_by_role;
    std::optional<timestamp> guardian_notified_at;
    std::optional<pingan::referral> referral;

    template <class F> void fields(F&& f) {
        f("alert_id", alert_id, key);
        f("student_ref", student_ref, classified(code));
        f("risk_level", level, key);
        f("source", source, key);
        f("indicator_codes", indicator_codes, classified(code));
        f("reported_by_role", reported_by_role, code);
        f("guardian_notified_at", guardian_notified_at, key);
        f("referral", referral, key);
    }
};

// 学生欺凌 (DOMAIN §6). Students appear only as pseudonymous references.
struct bullying_reported {
    static constexpr std::string_view type = "bullying.reported";
    static constexpr std::uint32_t version = 1;
    std::string case_id;
    std::vector<std::string> victim_refs;
    std::vector<std::string> actor_refs;
    std::vector<bullying_form> forms;
    pingan::injury injury{};
    bool repeated = false;
    bool group = false;
    bool extortion = false;
    timestamp discovered_at{};
    std::optional<timestamp> guardians_notified_at;
    std::optional<timestamp> investigation_opened_at;
    std::optional<pingan::determination> determination;
    std::optional<timestamp> determined_at;
    std::optional<timestamp> appeal_filed_at;

    template <class F> void fields(F&& f) {
        f("case_id", case_id, key);
        f("victim_refs", victim_refs, classified(code));
        f("actor_refs", actor_refs, classified(code));
        f("forms", forms, key);
        f("injury", injury, key);
        f("repeated", repeated, key);
        f("group", group, key);
        f("extortion", extortion, key);
        f("discovered_at", discovered_at, key);
        f("guardians_notified_at", guardians_notified_at, key);
        f("investigation_opened_at", investigation_opened_at, key);
        f("determination", determination, key);
        f("determined_at", determined_at, key);
        f("appeal_filed_at", appeal_filed_at, key);
    }
};

// Epidemic and seasonal disease: cases with similar symptoms (DOMAIN §7).
struct health_cluster {
    static constexpr std::string_view type = "health.cluster";
    static constexpr std::uint32_t version = 1;
    std::string cluster_id;
    std::optional<std::string> class_id;
    std::string disease;
    std::uint32_t cases = 0;
    std::uint32_t window_days = 1;
    bool suspected_notifiable = false;
    std::vector<std::string> symptoms;

    template <class F> void fields(F&& f) {
        f("cluster_id", cluster_id, key);
        f("class_id", class_id, key);
        f("disease", disease, code);
        f("cases", cases, key);
        f("window_days", window_days, key);
        f("suspected_notifiable", suspected_notifiable, key);
        f("symptoms", symptoms, code);
    }
};

// A school-bus trip's head count and speed (校车安全管理条例 arts. 35, 39).
struct bus_trip {
    static constexpr std::string_view type = "bus.trip";
    static constexpr std::uint32_t version = 1;
    std::string bus_id;
    std::string trip_id;
    std::uint32_t boarded = 0;
    std::uint32_t alighted = 0;
    std::optional<double> max_speed_kmh;
    std::optional<double> speed_limit_kmh;

    template <class F> void fields(F&& f) {
        f("bus_id", bus_id, key);
        f("trip_id", trip_id, key);
        f("boarded", boarded, key);
        f("alighted", alighted, key);
        f("max_speed_kmh", max_speed_kmh, key);
        f("speed_limit_kmh", speed_limit_kmh, key);
    }
};

// 突发事件 report (DOMAIN §1).
struct incident_reported {
    static constexpr std::string_view type = "incident.reported";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    incident_category category{};
    std::uint32_t deaths = 0;
    std::uint32_t serious_injuries = 0;
    std::uint32_t injuries = 0;
    double loss_cny = 0;
    incident_level provisional_level = incident_level::IV;
    std::string reporter_role;
    std::optional<std::string> supersedes;
    std::string summary;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("category", category, key);
        f("deaths", deaths, key);
        f("serious_injuries", serious_injuries, key);
        f("injuries", injuries, key);
        f("loss_cny", loss_cny, key);
        f("provisional_level", provisional_level, key);
        f("reporter_role", reporter_role, key);
        f("supersedes", supersedes, key);
        f("summary", summary, text(2000));
    }
};

struct incident_acknowledged {
    static constexpr std::string_view type = "incident.acknowledged";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    std::string note;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("note", note, text(500));
    }
};

// A report made to a tier, or a tier's relay to the one above (DOMAIN §1:
// "report to the county within 1 h", "each tier relays within 2 h"). It is
// not an acknowledgement: it sets the incident's milestone "reported:<tier>",
// which only it sets (docs/rules.md).
enum class report_kind : std::uint8_t { initial, progress, closing, supplementary, relay };
template <> struct enum_names<report_kind> {
    static constexpr std::array names{"initial", "progress", "closing", "supplementary", "relay"};
};

struct report_submitted {
    static constexpr std::string_view type = "report.submitted";
    static constexpr std::uint32_t version = 1;
    std::string incident_id; // the incident's id, or its subject at the event's school
    pingan::tier to{};       // the tier the report went to
    std::string recipient;   // the office or role, e.g. county_bureau
    std::string submitted_by;
    report_kind kind{};
    std::string summary;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("to", to, key);
        f("recipient", recipient, key);
        f("submitted_by", submitted_by, key);
        f("kind", kind, key);
        f("summary", summary, text(2000));
    }
};

// `withdrawn`: the incident was reported in error or taken back; it closes
// with the milestone "withdrawn" and exports as a CAP Cancel (docs/audit.md).
struct incident_resolved {
    static constexpr std::string_view type = "incident.resolved";
    static constexpr std::uint32_t version = 2;
    std::string incident_id;
    std::string resolution;
    bool withdrawn = false; // version 2

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("resolution", resolution, text(2000));
        f("withdrawn", withdrawn, since(key, 2));
    }
};

// A person's note on an incident: recorded in its timeline, changing nothing
// of its state (an acknowledgement or a resolution does that).
struct incident_note {
    static constexpr std::string_view type = "incident.note";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    std::string text;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("text", text, pingan::text(2000));
    }
};

// Raised by the escalation engine; names the rule and rule set that caused it.
struct escalation_raised {
    static constexpr std::string_view type = "escalation.raised";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    std::string rule_id;
    std::string ruleset_hash;
    pingan::tier tier{};
    std::vector<std::string> roles;
    std::string reason;
    std::optional<timestamp> deadline;
    bool late = false;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("rule_id", rule_id, key);
        f("ruleset_hash", ruleset_hash, code);
        f("tier", tier, key);
        f("roles", roles, key);
        f("reason", reason, text(500));
        f("deadline", deadline, key);
        f("late", late, key);
    }
};

// ---- Derived by the escalation engine (broker/engine/engine.hpp) -----------------------
// Each names the rule and the rule set (by hash) that caused it, so that an
// auditor can ask why something was, or was not, escalated.

// Timer ids name the incident, rule and step they belong to: longer than a key.
inline constexpr field_opts long_key{field_opts::kind::key, 200, 32, 1};

// The engine opened an incident: one per dedup key (school + kind + subject).
struct incident_opened {
    static constexpr std::string_view type = "incident.opened";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    std::string rule_id;
    std::string ruleset_hash;
    std::string kind;    // the rule's incident kind, e.g. "hazard", "food_illness"
    std::string subject; // the dedup subject, e.g. a hazard id or a supplier
    std::string title;
    std::optional<timestamp> due;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("rule_id", rule_id, key);
        f("ruleset_hash", ruleset_hash, code);
        f("kind", kind, code);
        f("subject", subject, text(200));
        f("title", title, text(500));
        f("due", due, key);
    }
};

// A deadline of an incident passed without what it waited for.
struct incident_overdue {
    static constexpr std::string_view type = "incident.overdue";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    std::string rule_id;
    std::string ruleset_hash;
    std::uint32_t step = 0; // index of the rule's step whose deadline passed
    pingan::tier tier{};
    timestamp deadline{};
    std::string waited_for; // the milestone that did not come: "acknowledged", "rectified", ...
    bool late = false;      // noticed after the deadline (the broker was down)

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("rule_id", rule_id, key);
        f("ruleset_hash", ruleset_hash, code);
        f("step", step, key);
        f("tier", tier, key);
        f("deadline", deadline, key);
        f("waited_for", waited_for, code);
        f("late", late, key);
    }
};

// An incident was closed (resolved, or a hazard verified by someone other than the fixer).
struct incident_closed {
    static constexpr std::string_view type = "incident.closed";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    std::string rule_id;
    std::string ruleset_hash;
    std::string reason;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("rule_id", rule_id, key);
        f("ruleset_hash", ruleset_hash, code);
        f("reason", reason, text(500));
    }
};

// A closed incident got new evidence, or a hazard failed its verification.
struct incident_reopened {
    static constexpr std::string_view type = "incident.reopened";
    static constexpr std::uint32_t version = 1;
    std::string incident_id;
    std::string rule_id;
    std::string ruleset_hash;
    std::string reason;

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("rule_id", rule_id, key);
        f("ruleset_hash", ruleset_hash, code);
        f("reason", reason, text(500));
    }
};

// A page for pingan-notify to deliver. Exercise pages go only to receivers
// marked for exercises, and their text always says EXERCISE.
struct notification_requested {
    static constexpr std::string_view type = "notification.requested";
    static constexpr std::uint32_t version = 2;
    std::string incident_id;
    std::string rule_id;
    std::string ruleset_hash;
    std::string basis; // S, L or M: how sure the limit behind this page is (DOMAIN.md)
    pingan::tier tier{};
    std::vector<std::string> roles;
    bool exercise = false;
    std::uint32_t repeat = 0; // 0 for the first page, n for the n-th reminder
    std::string text;
    bool late = false; // its deadline passed while the broker was down (v2)

    template <class F> void fields(F&& f) {
        f("incident_id", incident_id, key);
        f("rule_id", rule_id, key);
        f("ruleset_hash", ruleset_hash, code);
        f("basis", basis, code);
        f("tier", tier, key);
        f("roles", roles, key);
        f("exercise", exercise, key);
        f("repeat", repeat, key);
        f("text", text, pingan::text(1000));
        f("late", late, since(key, 2));
    }
};

// A processor timer fell due; the broker appends this and feeds it back.
struct timer_fired {
    static constexpr std::string_view type = "timer.fired";
    static constexpr std::uint32_t version = 1;
    std::string timer_id;
    timestamp due_at{};
    bool late = false; // fired well after due_at (the broker was down)

    template <class F> void fields(F&& f) {
        f("timer_id", timer_id, long_key);
        f("due_at", due_at, key);
        f("late", late, key);
    }
};

// A rule set came into force.
struct ruleset_loaded {
    static constexpr std::string_view type = "ruleset.loaded";
    static constexpr std::uint32_t version = 1;
    std::string hash;
    std::string name;
    std::string ruleset_version;
    std::uint32_t rule_count = 0;
    std::optional<std::string> previous_hash;

    template <class F> void fields(F&& f) {
        f("hash", hash, code);
        f("name", name, text(200));
        f("version", ruleset_version, text(64));
        f("rule_count", rule_count, key);
        f("previous_hash", previous_hash, code);
    }
};

// A view of minors' details (psych alerts, bullying reports) by a client with
// clearance; the broker logs one per replay that showed any (DOMAIN §5:
// access logs for minors' data).
struct access_viewed {
    static constexpr std::string_view type = "access.viewed";
    static constexpr std::uint32_t version = 1;
    std::string viewer;             // the client's identity
    std::string what;               // "minors_details"
    std::uint64_t first_offset = 0; // the records shown, first and last
    std::uint64_t last_offset = 0;
    std::uint32_t count = 0;
    std::vector<std::string> schools; // the schools whose records were shown

    template <class F> void fields(F&& f) {
        f("viewer", viewer, text(128));
        f("what", what, key);
        f("first_offset", first_offset, key);
        f("last_offset", last_offset, key);
        f("count", count, key);
        f("schools", schools, text(32, 4096));
    }
};

// The broker's access table was reloaded (SIGHUP, or `pingan access reload`)
// and keys that were admitted before are not any more: removed, or replaced
// by a new key. `changed` names clients that keep their key with a different
// scope or different rights. From the next message on, the broker answers a
// revoked key `unauthorized`, on connections already open too.
struct access_revoked {
    static constexpr std::string_view type = "access.revoked";
    static constexpr std::uint32_t version = 1;
    std::vector<std::string> identities; // whose old key no longer admits
    std::vector<std::string> changed;    // same key, new scope or rights
    std::string trigger;                 // "SIGHUP", or the identity that asked
    std::string file;                    // the access table that was read
    std::uint32_t clients = 0;           // clients in the table now

    template <class F> void fields(F&& f) {
        f("identities", identities, text(128, 100000));
        f("changed", changed, text(128, 100000));
        f("trigger", trigger, text(128));
        f("file", file, text(4096));
        f("clients", clients, key);
    }
};

// One attempt by pingan-notify to deliver a page to one receiver succeeded.
// Receipts carry ids, the receiver and the channel, never the page's text.
struct notification_delivered {
    static constexpr std::string_view type = "notification.delivered";
    static constexpr std::uint32_t version = 1;
    std::string notification_id; // the notification.requested event's id
    std::string incident_id;
    std::string receiver; // the receiver's id in notify's directory
    std::string channel;  // webhook, command or file
    std::uint32_t attempt = 0;
    std::uint64_t latency_ms = 0;

    template <class F> void fields(F&& f) {
        f("notification_id", notification_id, key);
        f("incident_id", incident_id, key);
        f("receiver", receiver, key);
        f("channel", channel, code);
        f("attempt", attempt, key);
        f("latency_ms", latency_ms, key);
    }
};

// One attempt to deliver a page failed; or, with `final`, no receiver got the
// page within notify's give-up time (receiver and channel are then empty), which
// a rule may escalate to the next tier.
struct notification_failed {
    static constexpr std::string_view type = "notification.failed";
    static constexpr std::uint32_t version = 1;
    std::string notification_id;
    std::string incident_id;
    pingan::tier tier{}; // the tier the page was for
    std::string receiver;
    std::string channel;
    std::uint32_t attempt = 0;
    std::uint64_t latency_ms = 0;
    std::string error;
    bool final = false;

    template <class F> void fields(F&& f) {
        f("notification_id", notification_id, key);
        f("incident_id", incident_id, key);
        f("tier", tier, key);
        f("receiver", receiver, text(64));
        f("channel", channel, text(16));
        f("attempt", attempt, key);
        f("latency_ms", latency_ms, key);
        f("error", error, text(500));
        f("final", final, key);
    }
};

// An outside CAP 1.2 alert (a city's weather, flood or earthquake warning)
// for one school inside its areas, imported by `pingan cap import`. The
// envelope carries the alert's status, severity, urgency and certainty, and
// for an Update or Cancel the ids of the events of the alerts it references.
struct alert_external {
    static constexpr std::string_view type = "alert.external";
    static constexpr std::uint32_t version = 1;
    std::string cap_identifier; // the alert's <identifier>
    std::string cap_sender;     // its <sender>
    std::string msg_type;       // Alert, Update or Cancel
    std::string category;       // CAP <category>: Met, Geo, Env, ...
    std::string event;          // <event>, e.g. 暴雨 or Earthquake
    std::string headline;
    std::string description;
    std::string instruction;
    std::optional<timestamp> expires;
    std::string area; // the <areaDesc> that holds the school
    std::string language;

    template <class F> void fields(F&& f) {
        f("cap_identifier", cap_identifier, text(256));
        f("cap_sender", cap_sender, text(256));
        f("msg_type", msg_type, code);
        f("category", category, code);
        f("event", event, text(200));
        f("headline", headline, text(500));
        f("description", description, text(4000));
        f("instruction", instruction, text(2000));
        f("expires", expires, key);
        f("area", area, text(1000));
        f("language", language, text(35));
    }
};

// The broker signed its head: the chain hash at `offset` and its clock at
// `signed_at`, with the Ed25519 key whose public half is `public_key`
// (common/signing.hpp). The same checkpoint is written as a file to the
// directory another party keeps; `pingan verify --checkpoint` proves a store
// or an export against it.
struct audit_checkpoint {
    static constexpr std::string_view type = "audit.checkpoint";
    static constexpr std::uint32_t version = 1;
    std::uint64_t offset = 0; // the head signed (this event comes after it)
    std::string hash;         // the chain hash at `offset`, hex
    timestamp signed_at{};
    std::string public_key; // hex
    std::string signature;  // hex
    std::string trigger;    // "start", "interval" or "shutdown"

    template <class F> void fields(F&& f) {
        f("offset", offset, key);
        f("hash", hash, key);
        f("signed_at", signed_at, key);
        f("public_key", public_key, key);
        f("signature", signature, text(128));
        f("trigger", trigger, code);
    }
};

// A major hazard's remediation plan (整治方案, SAWS Order 16 art. 3: measures,
// funds, people and a deadline). Its `due` is the hazard's new deadline when
// a rule marks the hazard with it (docs/rules.md, "mark").
struct hazard_remediation_planned {
    static constexpr std::string_view type = "hazard.remediation_planned";
    static constexpr std::uint32_t version = 1;
    std::string hazard_id;
    std::string plan_id;
    timestamp due{};         // rectification complete by
    std::string responsible; // who carries it out
    std::vector<std::string> measures;
    std::optional<double> funds_cny;
    std::string planned_by;

    template <class F> void fields(F&& f) {
        f("hazard_id", hazard_id, key);
        f("plan_id", plan_id, key);
        f("due", due, key);
        f("responsible", responsible, key);
        f("measures", measures, text(500, 32));
        f("funds_cny", funds_cny, key);
        f("planned_by", planned_by, key);
    }
};

// Who disputes a hazard's verification: the school a failed one, the reporter
// a passed one.
enum class appellant : std::uint8_t { school, reporter };
template <> struct enum_names<appellant> {
    static constexpr std::array names{"school", "reporter"};
};
enum class appeal_outcome : std::uint8_t { upheld, overturned };
template <> struct enum_names<appeal_outcome> {
    static constexpr std::array names{"upheld", "overturned"};
};

// An appeal of a hazard verification to the tier above. A disputed failure
// holds the hazard's rectification deadlines; a disputed pass reopens the
// closed hazard. Either waits for a hazard.appeal_decided.
struct hazard_appealed {
    static constexpr std::string_view type = "hazard.appealed";
    static constexpr std::uint32_t version = 1;
    std::string hazard_id;
    std::string appeal_id;
    pingan::appellant appellant{};
    verify_result disputed{}; // the verification result the appeal disputes
    std::string grounds;
    std::string filed_by;

    template <class F> void fields(F&& f) {
        f("hazard_id", hazard_id, key);
        f("appeal_id", appeal_id, key);
        f("appellant", appellant, key);
        f("disputed", disputed, key);
        f("grounds", grounds, text(2000));
        f("filed_by", filed_by, key);
    }
};

// The tier above decides an appeal: `upheld` keeps the disputed verification,
// `overturned` reverses it.
struct hazard_appeal_decided {
    static constexpr std::string_view type = "hazard.appeal_decided";
    static constexpr std::uint32_t version = 1;
    std::string hazard_id;
    std::string appeal_id;
    appeal_outcome outcome{};
    std::string decided_by;
    std::string reason;

    template <class F> void fields(F&& f) {
        f("hazard_id", hazard_id, key);
        f("appeal_id", appeal_id, key);
        f("outcome", outcome, key);
        f("decided_by", decided_by, key);
        f("reason", reason, text(2000));
    }
};

// What became of an intake credential (services.md, "Credentials").
enum class credential_change : std::uint8_t { issued, revoked, removed, changed };
template <> struct enum_names<credential_change> {
    static constexpr std::array names{"issued", "revoked", "removed", "changed"};
};

// A school service took a change of its intake credentials into force (the
// file changed, or SIGHUP): from this event on, the credential's token is
// refused (revoked, removed) or acts within its new scope and roles
// (changed). One event per school, and per district, the credential covered
// before or after; a district's has no school. Names staff, never students.
struct credential_changed {
    static constexpr std::string_view type = "credential.changed";
    static constexpr std::uint32_t version = 1;
    std::string credential;     // its name: a person or device
    std::string credential_id;  // the token's public id (12 hex digits)
    credential_change change{}; // issued, revoked, removed, changed
    std::string scope;          // "school:…,district:…" in force now (before, if removed)
    std::vector<std::string> roles;
    std::string trigger; // "file changed" or "SIGHUP"
    std::string file;    // the credentials file read

    template <class F> void fields(F&& f) {
        f("credential", credential, key);
        f("credential_id", credential_id, key);
        f("change", change, key);
        f("scope", scope, text(4096));
        f("roles", roles, text(64, 32));
        f("trigger", trigger, text(64));
        f("file", file, text(4096));
    }
};

// Every body type. Append new types at the end; the binary form names the type
// by its string, so the order here is not part of any stored format.
using body =
    std::variant<hazard_reported, hazard_rectified, hazard_verified, equipment_inspection,
                 drill_recorded, food_alert, food_temp_reading, food_sample, food_accompany,
                 psych_alert, bullying_reported, health_cluster, bus_trip, incident_reported,
                 incident_acknowledged, incident_resolved, escalation_raised, incident_opened,
                 incident_overdue, incident_closed, incident_reopened, notification_requested,
                 timer_fired, ruleset_loaded, access_viewed, notification_delivered,
                 notification_failed, alert_external, incident_note, report_submitted,
                 access_revoked, audit_checkpoint, hazard_remediation_planned, hazard_appealed,
                 hazard_appeal_decided, credential_changed>;

// ---- Envelope ------------------------------------------------------------------

struct event {
    event_id id;              // made by the source; the idempotency key
    std::uint64_t offset = 0; // assigned by the broker from 1; 0 until stored
    std::string school;       // registry id, e.g. "420502K001"; empty for city-level events
    std::string district;     // GB/T 2260 code, filled in by the broker from the registry
    std::string source;       // service and device, e.g. "pingan-hazard/kiosk-2"
    std::string actor;        // authenticated identity of the publisher, set by the broker
    timestamp occurred_at{};  // source clock
    timestamp received_at{};  // broker clock, non-decreasing with offset
    pingan::status status = pingan::status::actual;
    pingan::severity severity = pingan::severity::unknown;
    pingan::urgency urgency = pingan::urgency::unknown;
    pingan::certainty certainty = pingan::certainty::unknown;
    pingan::scope scope = pingan::scope::restricted;
    std::vector<event_id> references;
    pingan::body body;

    std::string_view type() const noexcept;
};

// The type name of a body alternative.
std::string_view type_name(const body& b) noexcept;

// Returns: a default-constructed body of the named type, or nothing.
std::optional<body> make_body(std::string_view type);

// All known type names, in declaration order.
const std::vector<std::string_view>& known_types();

} // namespace pingan
