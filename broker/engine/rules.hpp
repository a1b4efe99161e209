// Rule sets for the escalation engine: the model, and its YAML form.
//
// A rule set is text (config/rules/*.yaml, documented in docs/rules.md) parsed
// here into plain structs the engine evaluates. Parsing collects every error
// with its line and column and says what was expected, so that `pingan rules
// check` can list them all at once and a broker can refuse a bad file while it
// keeps the last good one. The rule set's hash (BLAKE2b of the text) names it
// in every event it causes. No file reads here: the caller passes the text.
#pragma once

#include "common/codec.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pingan::rules {

// How sure the limit behind a rule is (DOMAIN.md): S sourced from a statute or
// official document, L a local rule, M from memory and unchecked.
enum class basis : std::uint8_t { S, L, M };

// One condition on a field of the event. `field` names a body field
// ("cases"), or an attribute of the event's school from the registry
// ("school.evacuation_target_seconds").
struct condition {
    enum class op : std::uint8_t {
        eq,
        ne,
        in,
        not_in,
        gt,
        ge,
        lt,
        le,       // against a literal value
        exists,   // present and not null (value: true or false)
        contains, // a list field holds the value
        gt_field,
        ge_field,
        lt_field,
        le_field,
        eq_field,
        ne_field, // against another field
        before,
        after // a time field is before/after the event's received_at + offset
    };
    std::string field;
    op what = op::eq;
    json value;              // literal for eq..contains; list for in/not_in
    std::string other_field; // for *_field
    micros offset{0};        // added to the other field (times) or to received_at
    int line = 0;
};

// Conditions that must all hold.
using all_of = std::vector<condition>;

struct match_spec {
    std::string type;                     // event type, e.g. "food.alert"
    std::vector<pingan::status> statuses; // empty: Actual, Exercise and Test
    std::optional<pingan::severity> severity_at_least;
    std::vector<school_type> school_types; // empty: any
    std::vector<std::string> districts;    // empty: any
    std::optional<bool> school_bus, boarding, canteen;
    all_of where;            // all must hold
    std::vector<all_of> any; // if not empty, at least one group must hold
};

// Count (or sum) of matching events within a sliding time, per group.
struct window_spec {
    std::uint32_t at_least = 1;
    micros within{0};
    std::vector<std::string> group_by{"school"}; // "school", "district" or body fields
    std::optional<std::string> sum;              // sum this numeric field instead of counting
    bool distinct_schools = false;               // count distinct schools (correlation)
    // Count only a run: an event of the type and group that passes the match's
    // filters but not its conditions starts the count again ("two in a row").
    bool consecutive = false;
};

// The conditions have held for every event of the group for at least `duration`.
struct sustained_spec {
    micros duration{0};
    std::vector<std::string> group_by{"school"};
};

enum class period : std::uint8_t { month, quarter, term };

// A calendar offset from the start of a period: months then days.
struct cal_offset {
    int months = 0;
    int days = 0;
};

// No matching event for a school within its period (Asia/Shanghai calendar).
struct absence_spec {
    period default_period = period::month;
    std::map<school_type, period> by_school_type;
    std::map<period, cal_offset> remind_at; // when, within a period, a missing event is noticed
};

enum class trigger : std::uint8_t { each, window, sustained, absence };

// One notification step: whom to tell, when, and until what.
struct step {
    pingan::tier tier = pingan::tier::school;
    std::vector<std::string> roles;
    std::string text;       // template, see docs/rules.md
    bool from_due = false;  // the delay counts from the incident's due time, not its opening
    micros after{0};        // 0 and !from_due: at once
    std::string until;      // the milestone that cancels the step
    micros repeat_every{0}; // 0: no reminders
    std::uint32_t repeat_max = 0;
    // A deadline step whose roles were all told already: satisfied (false), or
    // a reminder marked as one (true, `if_told: remind`).
    bool remind_if_told = false;
    // `if_told: escalate`: the deadline is about something other than being
    // told (a plan, a decision), so it escalates whoever was told before.
    bool escalate_if_told = false;
    int line = 0;

    bool immediate() const noexcept { return !from_due && after.count() == 0; }
};

enum class lifecycle_kind : std::uint8_t { plain, hazard };

// A typed incident a rule opens beside its own (DOMAIN §2–§7: a major food
// illness is also a public-health emergency): the engine derives an
// incident.reported of this category and runs the incident.reported rules on it.
struct report_spec {
    pingan::incident_category category{};
    std::optional<std::string> deaths, serious_injuries, injuries; // body fields copied
    int line = 0;
};

struct incident_spec {
    std::string kind;                              // e.g. "food_illness"
    std::vector<std::vector<std::string>> subject; // body fields; each item: first present of a|b
    std::string title;                             // template
    std::optional<std::string> due_field;          // a time field of the body giving the due time
    micros due_default{0};                         // due = opening + this when the field is absent
    micros due_offset{0};                          // added to the due field's time
    bool has_due = false;                          // `due` given (a mark rule then moves the due)
    lifecycle_kind lifecycle = lifecycle_kind::plain;
    bool redact_above_school = false;  // above school tier, pages name no body field (minors' data)
    std::optional<report_spec> report; // also open a typed emergency incident
};

struct rule {
    std::string id;
    rules::basis basis = rules::basis::M;
    std::string title;
    std::string description;
    match_spec match;
    rules::trigger trigger = rules::trigger::each;
    window_spec window;
    sustained_spec sustained;
    absence_spec absence;
    incident_spec incident;
    // Set this milestone on the incident instead of opening one; with
    // incident.due, also move the incident's due time (and its after_due
    // deadlines) to the time the event names. `closed` closes a plain incident.
    std::optional<std::string> mark;
    std::vector<step> steps;
    int line = 0;
};

// The evacuation target a school's drills are held to
// (`school.evacuation_target_seconds`): seconds by school type, plus an
// allowance per floor above `floors_included`.
struct evacuation_target {
    std::uint32_t seconds = 120;
    std::map<school_type, std::uint32_t> by_school_type{{school_type::primary, 180},
                                                        {school_type::kindergarten, 180}};
    std::uint32_t floors_included = 4;
    std::uint32_t per_floor_above = 30;

    std::uint32_t for_school(const school& s) const noexcept;
};

struct ruleset {
    std::string name;
    std::string version;
    rules::evacuation_target evacuation;
    std::string hash; // 32 hex digits: BLAKE2b-128 of the text
    std::vector<std::string> roles;
    std::vector<rule> rules;

    // Indexes for the engine: rules by event type, by id.
    std::unordered_map<std::string, std::vector<std::size_t>> by_type;
    std::unordered_map<std::string, std::size_t> by_id;

    const rule* find(std::string_view id) const;
};

struct diagnostic {
    int line = 0; // 1-based; 0 when unknown
    int column = 0;
    std::string message;
    std::string text() const; // "line 12, column 5: ..."
};

struct parse_result {
    std::shared_ptr<const ruleset> rules; // null when there are errors
    std::vector<diagnostic> errors;
};

// Parses and checks a rule set. `text` is YAML (docs/rules.md).
// Returns: the rule set, or every error found, each with its line.
parse_result parse(std::string_view text);

// The milestones an incident reaches without any `mark` rule; and
// "reported:<tier>", set only by a report.submitted to that tier.
inline constexpr std::array builtin_milestones{"acknowledged", "rectified", "verified", "closed"};
inline constexpr std::string_view reported_prefix = "reported:";

// School attributes a condition may name as "school.<name>".
inline constexpr std::array school_fields{"type",
                                          "students",
                                          "boarding",
                                          "school_bus",
                                          "canteen",
                                          "max_floors",
                                          "evacuation_target_seconds"};

std::string_view basis_name(basis b) noexcept;
std::string_view period_name(period p) noexcept;

// Hex BLAKE2b-128 of `text`.
std::string hash_text(std::string_view text);

} // namespace pingan::rules
