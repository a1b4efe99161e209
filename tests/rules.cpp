// Tests for broker/engine/rules.hpp: the YAML rule language and its error messages.
#include "broker/engine/rules.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::test;

namespace {

std::string default_pack() {
    return read_file(source_path("config/rules/yichang-default.yaml"));
}

// A rule set with one rule whose body is `rule` (indented by the caller).
std::string one_rule(const std::string& rule) {
    return "ruleset: t\nversion: \"1\"\nroles: [principal, county_bureau]\nrules:\n" + rule;
}

const char* good_rule = R"(  - id: hazard.x
    basis: L
    title: t
    match:
      type: hazard.reported
      where:
        - {field: grade, eq: general}
    incident:
      kind: hazard
      subject: [hazard_id]
    steps:
      - tier: school
        roles: [principal]
        text: "{school_name} {body.hazard_id}"
)";

// Returns: the diagnostics of `text`, which must not parse.
std::vector<rules::diagnostic> errors_of(const std::string& text) {
    auto r = rules::parse(text);
    CHECK_FALSE(r.rules);
    return r.errors;
}

bool mentions(const std::vector<rules::diagnostic>& ds, const std::string& what, int line = -1) {
    for (const auto& d : ds)
        if (d.message.find(what) != std::string::npos && (line < 0 || d.line == line)) return true;
    return false;
}

std::string all_text(const std::vector<rules::diagnostic>& ds) {
    std::string s;
    for (const auto& d : ds)
        s += d.text() + "\n";
    return s;
}

} // namespace

TEST_CASE("the default yichang pack parses without errors", "[rules]") {
    auto r = rules::parse(default_pack());
    INFO(all_text(r.errors));
    REQUIRE(r.errors.empty());
    REQUIRE(r.rules);
    CHECK(r.rules->name == "yichang-campus-safety-default");
    CHECK(r.rules->hash.size() == 32);
    CHECK(r.rules->rules.size() >= 30);
    // Every rule states its basis and every rule can be found by id and by type.
    for (std::size_t i = 0; i < r.rules->rules.size(); ++i) {
        const auto& rule = r.rules->rules[i];
        CHECK(r.rules->find(rule.id) == &rule);
        const auto& idx = r.rules->by_type.at(rule.match.type);
        CHECK(std::find(idx.begin(), idx.end(), i) != idx.end());
    }
}

TEST_CASE("the default pack covers every area of domain section 8", "[rules]") {
    auto r = rules::parse(default_pack());
    REQUIRE(r.rules);
    for (const char* id : {"incident.initial",
                           "incident.major",
                           "food.illness",
                           "food.illness.major",
                           "food.supplier_cluster",
                           "food.sample.breach",
                           "food.accompany.repeat",
                           "food.cold_chain.warn",
                           "food.cold_chain.quarantine",
                           "drill.cadence",
                           "drill.too_slow",
                           "drill.too_slow.repeat",
                           "hazard.general",
                           "hazard.major",
                           "equipment.expired",
                           "psych.red",
                           "psych.orange",
                           "psych.yellow",
                           "bullying.report",
                           "bullying.serious",
                           "epidemic.class_cluster",
                           "bus.headcount"}) {
        INFO(id);
        CHECK(r.rules->find(id));
    }
    const auto* cadence = r.rules->find("drill.cadence");
    CHECK(cadence->trigger == rules::trigger::absence);
    CHECK(cadence->absence.by_school_type.at(school_type::kindergarten) == rules::period::quarter);
    const auto* psych = r.rules->find("psych.red");
    CHECK(psych->incident.redact_above_school);
}

TEST_CASE("the hash names the exact text of a rule set", "[rules]") {
    auto a = rules::parse(one_rule(good_rule));
    auto b = rules::parse(one_rule(good_rule) + "# a comment\n");
    REQUIRE(a.rules);
    REQUIRE(b.rules);
    CHECK(a.rules->hash != b.rules->hash);
    CHECK(a.rules->hash == rules::parse(one_rule(good_rule)).rules->hash);
}

TEST_CASE("invalid yaml is reported with its line", "[rules]") {
    auto ds = errors_of("ruleset: t\nrules:\n  - id: [unclosed\n");
    REQUIRE(ds.size() == 1);
    CHECK(ds[0].line >= 3);
    CHECK(mentions(ds, "not valid YAML"));
}

TEST_CASE("an unknown key names the keys expected there", "[rules]") {
    std::string r = good_rule;
    r.replace(r.find("    title: t"), 12, "    titel: t");
    auto ds = errors_of(one_rule(r));
    CHECK(mentions(ds, "unknown key \"titel\" in a rule; expected one of: id, basis, title", 7));
    CHECK(mentions(ds, "needs \"title\""));
}

TEST_CASE("an unknown event type lists the known types", "[rules]") {
    std::string r = good_rule;
    r.replace(r.find("hazard.reported"), 15, "hazard.reportd");
    auto ds = errors_of(one_rule(r));
    CHECK(mentions(ds, "type \"hazard.reportd\" is not a known event type; expected one of:", 9));
}

TEST_CASE("a misspelt enumerator in a condition lists the choices", "[rules]") {
    std::string r = good_rule;
    r.replace(r.find("eq: general"), 11, "eq: genral");
    auto ds = errors_of(one_rule(r));
    INFO(all_text(ds));
    CHECK(mentions(ds, "\"genral\" is not one of general, major", 11));
}

TEST_CASE("a condition on a field the type does not have names the fields", "[rules]") {
    std::string r = good_rule;
    r.replace(r.find("field: grade"), 12, "field: grdae");
    auto ds = errors_of(one_rule(r));
    CHECK(mentions(ds,
                   "field \"grdae\" is not a field of this event type; expected one of: "
                   "hazard_id, area, grade",
                   11));
}

TEST_CASE("a condition needs exactly one test", "[rules]") {
    std::string r = good_rule;
    r.replace(r.find("{field: grade, eq: general}"), 27, "{field: grade, eq: general, ne: major}");
    CHECK(mentions(errors_of(one_rule(r)), "exactly one test"));
    r = good_rule;
    r.replace(r.find("eq: general"), 11, "equals: general");
    CHECK(mentions(errors_of(one_rule(r)), "unknown condition \"equals\""));
}

TEST_CASE("bad durations, tiers, roles and basis tags each say what was expected", "[rules]") {
    std::string r = std::string(good_rule) + R"(      - tier: county
        roles: [headmaster]
        after: 2 hours
        text: late
)";
    r.replace(r.find("basis: L"), 8, "basis: X");
    auto ds = errors_of(one_rule(r));
    INFO(all_text(ds));
    CHECK(mentions(ds, "basis: \"X\" is not one of S, L, M", 6));
    CHECK(mentions(ds, "tier: \"county\" is not one of school, district, city, regulator", 19));
    CHECK(mentions(ds,
                   "role \"headmaster\" is not declared; expected one of: principal, "
                   "county_bureau",
                   20));
    CHECK(mentions(ds, "\"2 hours\" is not a duration; expected e.g. 90s, 10m, 2h", 21));
    // Errors are sorted by line.
    for (std::size_t i = 1; i < ds.size(); ++i)
        CHECK(ds[i - 1].line <= ds[i].line);
}

TEST_CASE("a template with an unknown placeholder is refused", "[rules]") {
    std::string r = good_rule;
    r.replace(r.find("{body.hazard_id}"), 16, "{body.hazard} {schol}");
    auto ds = errors_of(one_rule(r));
    CHECK(mentions(ds, "{body.hazard} is not a placeholder", 18));
    CHECK(mentions(ds, "{schol} is not a placeholder", 18));
}

TEST_CASE("until must name a milestone, including those set by mark rules", "[rules]") {
    std::string r = std::string(good_rule) + R"(      - tier: district
        roles: [county_bureau]
        after: 10d
        until: decided
        text: late
)";
    auto ds = errors_of(one_rule(r));
    CHECK(mentions(ds, "until: \"decided\" is not a milestone; expected one of: acknowledged", 22));
    std::string marker = R"(  - id: hazard.decided
    basis: S
    title: d
    match: {type: hazard.verified}
    incident: {kind: hazard, subject: [hazard_id]}
    mark: decided
)";
    auto ok = rules::parse(one_rule(r + marker));
    INFO(all_text(ok.errors));
    CHECK(ok.rules);
}

TEST_CASE("rule ids are unique and well formed", "[rules]") {
    auto ds = errors_of(one_rule(std::string(good_rule) + good_rule));
    CHECK(mentions(ds, "rule id \"hazard.x\" is used twice"));
    std::string r = good_rule;
    r.replace(r.find("hazard.x"), 8, "Hazard X");
    CHECK(mentions(errors_of(one_rule(r)), "must be 1 to 64 characters of a-z"));
}

TEST_CASE("after_due needs a due time and repeat needs every and max", "[rules]") {
    std::string r = std::string(good_rule) + R"(      - tier: district
        roles: [county_bureau]
        after_due: 1d
        repeat: {every: 1h}
        text: late
)";
    auto ds = errors_of(one_rule(r));
    CHECK(mentions(ds, "after_due needs the incident to have a due time"));
    CHECK(mentions(ds, "repeat needs \"max\""));
}

TEST_CASE("windows, sustained and absence are exclusive and checked", "[rules]") {
    std::string r = good_rule;
    r.insert(r.find("    incident:"),
             "    window: {at_least: 0, within: 7d, group_by: [school, colour]}\n"
             "    sustained: {for: 30m}\n");
    auto ds = errors_of(one_rule(r));
    INFO(all_text(ds));
    CHECK(mentions(ds, "window.at_least: \"0\" is not a whole number from 1"));
    CHECK(mentions(ds, "window.group_by: \"colour\" is not a field of this event type"));
    CHECK(mentions(ds, "at most one of window, sustained and absence"));
    std::string a = good_rule;
    a.insert(a.find("    incident:"),
             "    absence: {period: fortnight, remind_at: {month: 25th}}\n");
    auto da = errors_of(one_rule(a));
    CHECK(mentions(da, "\"fortnight\" is not one of month, quarter, term"));
    CHECK(mentions(da, "\"25th\" is not a calendar offset"));
    CHECK(mentions(da, "an absence rule's subject is its period"));
}

TEST_CASE("a consecutive window parses, and refuses distinct_schools with its line", "[rules]") {
    std::string r = good_rule;
    r.insert(r.find("    incident:"),
             "    window: {at_least: 2, within: 70d, consecutive: true}\n");
    auto ok = rules::parse(one_rule(r));
    INFO(all_text(ok.errors));
    REQUIRE(ok.rules);
    CHECK(ok.rules->rules[0].window.consecutive);
    CHECK_FALSE(ok.rules->rules[0].window.distinct_schools);
    r = good_rule;
    r.insert(r.find("    incident:"),
             "    window: {at_least: 2, within: 70d, distinct_schools: true, consecutive: true}\n");
    auto ds = errors_of(one_rule(r));
    INFO(all_text(ds));
    CHECK(mentions(ds,
                   "window.consecutive counts a run of events of one group; it cannot be "
                   "combined with distinct_schools",
                   12));
}

TEST_CASE("until: reported:TIER names a tier, and a bad one is refused with its line", "[rules]") {
    std::string r = std::string(good_rule) + R"(      - tier: district
        roles: [county_bureau]
        after: 2h
        until: reported:district
        text: late
)";
    auto ok = rules::parse(one_rule(r));
    INFO(all_text(ok.errors));
    CHECK(ok.rules);
    r.replace(r.find("reported:district"), 17, "reported:county");
    auto ds = errors_of(one_rule(r));
    INFO(all_text(ds));
    CHECK(mentions(ds,
                   "until: \"reported:county\" is not a milestone; expected one of: "
                   "acknowledged",
                   22));
    CHECK(mentions(ds, "reported:TIER (TIER: school, district, city, regulator)", 22));
}

TEST_CASE("a rule set without rules or roles says what it needs", "[rules]") {
    auto ds = errors_of("ruleset: t\nversion: 1\n");
    CHECK(mentions(ds, "needs \"roles\""));
    CHECK(mentions(ds, "needs \"rules\""));
    CHECK(mentions(errors_of("- just a list\n"), "expected a rule set"));
}

TEST_CASE("a school field condition and a status filter parse", "[rules]") {
    auto r = rules::parse(one_rule(R"(  - id: drill.slow
    basis: S
    title: slow
    match:
      type: drill.recorded
      status: [Actual, Exercise]
      school_type: [primary, kindergarten]
      where:
        - {field: evacuation_seconds, gt_field: school.evacuation_target_seconds}
    incident: {kind: drill_slow, subject: [drill_id]}
    steps:
      - {tier: school, roles: [principal], text: "{body.evacuation_seconds}"}
)"));
    INFO(all_text(r.errors));
    REQUIRE(r.rules);
    const auto& m = r.rules->rules[0].match;
    CHECK(m.statuses.size() == 2);
    CHECK(m.school_types.size() == 2);
    CHECK(m.where[0].what == rules::condition::op::gt_field);
    CHECK(m.where[0].other_field == "school.evacuation_target_seconds");
    auto bad = errors_of(one_rule(R"(  - id: drill.slow
    basis: S
    title: slow
    match: {type: drill.recorded, status: System, school_type: college}
    incident: {kind: drill_slow}
    steps:
      - {tier: school, roles: [principal], text: x}
)"));
    CHECK(mentions(bad, "status: \"System\" is not one of Actual, Exercise, Test"));
    CHECK(mentions(bad, "school_type: \"college\" is not one of kindergarten"));
}

TEST_CASE("a template naming a classified field is refused with its line and rule", "[rules]") {
    auto text = one_rule(R"(  - id: psych.leak
    basis: L
    title: t
    match:
      type: psych.alert
    incident:
      kind: psych
      subject: [alert_id]
      title: "{school_name} {body.student_ref}"
    steps:
      - tier: school
        roles: [principal]
        text: "{title} {body.indicator_codes} {body.risk_level}"
  - id: bullying.leak
    basis: L
    title: "欺凌 {body.victim_refs}"
    match:
      type: bullying.reported
    incident:
      kind: bullying
      subject: [case_id]
    steps:
      - tier: school
        roles: [principal]
        text: "{title} {body.actor_refs}"
)");
    auto ds = errors_of(text);
    CHECK(mentions(ds, "rule \"psych.leak\": text: {body.student_ref} is minors' data", 13));
    CHECK(mentions(ds, "rule \"psych.leak\": text: {body.indicator_codes} is minors' data", 17));
    CHECK(mentions(ds, "rule \"bullying.leak\": title: {body.victim_refs} is minors' data", 20));
    CHECK(mentions(ds, "rule \"bullying.leak\": text: {body.actor_refs} is minors' data", 29));
    CHECK_FALSE(mentions(ds, "{body.risk_level}")); // not classified: may be shown
    CHECK(ds.size() == 4);
}

TEST_CASE("a classified field may not name an incident or group a window", "[rules]") {
    auto text = one_rule(R"(  - id: psych.by_student
    basis: L
    title: t
    match:
      type: psych.alert
    incident:
      kind: psych
      subject: [student_ref]
    steps:
      - {tier: school, roles: [principal], text: "{title}"}
  - id: psych.repeat
    basis: L
    title: t
    match:
      type: psych.alert
    window: {at_least: 2, within: 30d, group_by: [school, student_ref]}
    incident:
      kind: psych_repeat
    steps:
      - {tier: school, roles: [principal], text: "{title} {subject}"}
)");
    auto ds = errors_of(text);
    CHECK(mentions(ds, "rule \"psych.by_student\": incident.subject: \"student_ref\" is minors'",
                   12));
    CHECK(mentions(ds, "rule \"psych.repeat\": window.group_by: \"student_ref\" is minors'", 20));
}

TEST_CASE("the default pack names no classified field in any text", "[rules]") {
    auto text = default_pack();
    CHECK(text.find("{body.student_ref}") == std::string::npos);
    CHECK(rules::parse(text).rules);
}

TEST_CASE("a typed incident report is checked: category and copied fields", "[rules]") {
    const char* rule = R"(  - id: food.x
    basis: S
    title: t
    match:
      type: food.alert
    incident:
      kind: food
      subject: [canteen_id]
      report: {category: public_helth, deaths: deaths, injuries: casess}
    steps:
      - tier: school
        roles: [principal]
        text: t
)";
    auto e = errors_of(one_rule(rule));
    INFO(all_text(e));
    CHECK(mentions(e, "category: \"public_helth\" is not one of disaster, accident, public_health",
                   13));
    CHECK(mentions(e, "injuries: \"casess\" is not a field of this event type", 13));
    auto ok = std::string(rule);
    ok.replace(ok.find("public_helth"), 12, "public_health");
    ok.replace(ok.find("casess"), 6, "cases");
    auto r = rules::parse(one_rule(ok));
    INFO(all_text(r.errors));
    REQUIRE(r.rules);
    REQUIRE(r.rules->rules[0].incident.report);
    CHECK(r.rules->rules[0].incident.report->category == incident_category::public_health);
    CHECK(r.rules->rules[0].incident.report->injuries == "cases");
}

TEST_CASE("if_told takes satisfied, remind or escalate, on deadline steps only", "[rules]") {
    const char* rule = R"(  - id: hazard.x
    basis: L
    title: t
    match:
      type: hazard.reported
    incident:
      kind: hazard
      subject: [hazard_id]
    steps:
      - tier: school
        roles: [principal]
        text: t
        if_told: remind
      - tier: school
        roles: [principal]
        after: 1h
        text: t
        if_told: again
      - tier: school
        roles: [principal]
        after: 2h
        text: t
        if_told: remind
)";
    auto e = errors_of(one_rule(rule));
    INFO(all_text(e));
    CHECK(mentions(e, "if_told applies to a deadline step", 17));
    CHECK(mentions(e, "if_told: \"again\" is not satisfied, remind or escalate", 22));
    CHECK(e.size() == 2);
}

TEST_CASE("the evacuation target is a checked setting of the rule set", "[rules]") {
    auto text = "ruleset: t\nversion: \"1\"\nroles: [principal]\nevacuation_target:\n"
                "  seconds: 0\n  by_school_type: {primery: 180}\n  per_floor_above: -5\n"
                "  floors: 4\nrules:\n" +
                std::string(good_rule);
    auto e = errors_of(text);
    INFO(all_text(e));
    CHECK(mentions(e, "evacuation_target.seconds: \"0\"", 5));
    CHECK(mentions(e, "\"primery\" is not a school type", 6));
    CHECK(mentions(e, "evacuation_target.per_floor_above: \"-5\"", 7));
    CHECK(mentions(e, "unknown key \"floors\" in evacuation_target", 8));
    auto r = rules::parse(default_pack());
    REQUIRE(r.rules);
    CHECK(r.rules->evacuation.seconds == 120);
    CHECK(r.rules->evacuation.per_floor_above == 30);
    CHECK(r.rules->find("drill.too_slow.tall")->basis == rules::basis::M);
}

TEST_CASE("if_told: escalate parses on a deadline step", "[rules]") {
    auto r = rules::parse(one_rule(R"(  - id: hazard.x
    basis: L
    title: t
    match:
      type: hazard.reported
    incident:
      kind: hazard
      subject: [hazard_id]
    steps:
      - tier: district
        roles: [county_bureau]
        after: 7d
        if_told: escalate
        text: t
)"));
    INFO(all_text(r.errors));
    REQUIRE(r.rules);
    CHECK(r.rules->rules[0].steps[0].escalate_if_told);
    CHECK_FALSE(r.rules->rules[0].steps[0].remind_if_told);
}

TEST_CASE("a due time taken from an event field is checked: a time field, offset, mark",
          "[rules]") {
    const char* rules = R"(  - id: plan.a
    basis: L
    title: t
    match:
      type: hazard.remediation_planned
    incident:
      kind: hazard
      subject: [hazard_id]
      due: {field: responsible, default: 1d}
    mark: planned
  - id: plan.b
    basis: L
    title: t
    match:
      type: hazard.remediation_planned
    incident:
      kind: hazard
      subject: [hazard_id]
      due: {offset: 2d, default: 1d}
    mark: planned
  - id: plan.c
    basis: L
    title: t
    match:
      type: hazard.remediation_planned
    incident:
      kind: hazard
      subject: [hazard_id]
      due: {field: due, offset: soon, default: 1d}
    mark: closed
  - id: plan.d
    basis: L
    title: t
    match:
      type: hazard.remediation_planned
    incident:
      kind: hazard
      subject: [hazard_id]
    mark: rectified
)";
    auto e = errors_of(one_rule(rules));
    INFO(all_text(e));
    CHECK(mentions(e, "incident.due.field: \"responsible\" is not a time field", 13));
    CHECK(mentions(e, "incident.due.offset is added to incident.due.field", 23));
    CHECK(mentions(e, "incident.due.offset: \"soon\" is not a duration", 33));
    CHECK(mentions(e, "mark: closed closes the incident; it cannot also set incident.due", 34));
    CHECK(mentions(e, "mark: \"rectified\" is set only by its own events", 43));
    CHECK(e.size() == 5);
}

TEST_CASE("the default pack models remediation plans and appeals with honest basis tags",
          "[rules]") {
    auto r = rules::parse(default_pack());
    REQUIRE(r.rules);
    const auto* plan = r.rules->find("hazard.major.plan");
    REQUIRE(plan);
    CHECK(plan->basis == rules::basis::L); // 7 days is a proposal in DOMAIN.md
    const auto* planned = r.rules->find("hazard.remediation.planned");
    REQUIRE(planned);
    CHECK(planned->mark == "planned");
    CHECK(planned->incident.due_field == "due");
    CHECK(r.rules->find("hazard.appeal")->basis == rules::basis::M);
    CHECK(r.rules->find("hazard.appeal.decided")->mark == "closed");
    const auto* bullying = r.rules->find("bullying.appeal");
    REQUIRE(bullying);
    CHECK(bullying->basis == rules::basis::M); // the 15 days are from memory
    CHECK(bullying->incident.due_field == "appeal_filed_at");
    CHECK(bullying->incident.due_offset == std::chrono::hours(24 * 15));
    CHECK(bullying->incident.redact_above_school);
}
