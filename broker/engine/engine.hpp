// The escalation engine's pure core: (state, input event, rule set) → (new
// state, derived events).
//
// No clock, no I/O, no LMDB: time is the input's received_at, and everything
// the engine remembers is in `engine_state`, which the broker's adapter
// (engine_processor.hpp) loads from and saves to its tables, and which a replay
// builds from nothing. So running the same log through a fresh engine gives
// the same derived events byte for byte, and a what-if run of new rules over
// last term's log is the same code.
//
// Three promises are kept here, in one place each, whatever a rule says:
//   - an Exercise input only ever produces Exercise effects, and every page it
//     causes says EXERCISE (see effect_status and page);
//   - a Test input never pages anyone;
//   - Actual, Exercise and Test incidents never merge (the mode is in the key).
#pragma once

#include "broker/engine/rules.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pingan {

// One incident: a serialised state machine (opened → acknowledged → closed;
// hazards: reported → rectified → verified by someone other than the fixer →
// closed; a failed verification or new evidence reopens it).
struct incident {
    std::string id;      // "INC-" + 16 hex digits, a hash of the key
    std::string key;     // mode | school | kind | subject: events with the same key join
    std::string kind;    // the rule's incident kind
    std::string subject; // e.g. a hazard id, a supplier, a period
    std::string school;  // empty for city-wide incidents (correlations)
    std::string district;
    std::string title;
    std::string facts; // JSON of the opening event's body, for page texts
    pingan::status mode = pingan::status::actual; // actual, exercise or test
    pingan::severity severity = pingan::severity::unknown;
    bool hazard = false; // hazard lifecycle
    bool redact = false; // minors' data: above school tier pages name no body field
    bool closed = false;
    std::set<std::string> milestones; // acknowledged, rectified, verified, closed, marks
    std::set<std::string> paged;      // "tier/role" already told about it at once
    std::set<std::string> fired;      // "rule#step" deadlines already passed
    std::vector<std::string> rules;   // rules that opened or joined it, in order
    std::vector<std::string> acked_by;
    std::int64_t opened_us = 0, anchor_us = 0, updated_us = 0, closed_us = 0;
    std::optional<std::int64_t> due_us;
    std::string rectified_by, rectified_actor;
    std::uint32_t reopened = 0, events = 0, count = 0;
    std::string cause; // id of the event that opened it
    // Cross-school incidents (clusters): the schools and districts involved and
    // the reports that joined, so that every district involved sees it.
    std::set<std::string> schools, districts;
    std::vector<std::string> reports; // event ids, in the order they joined
    std::string parent;               // a typed incident: the incident whose rule opened it
    std::map<std::string, std::int64_t> told_at; // "tier/role" → when first paged

    template <class A> void serialize(A& ar) {
        std::uint8_t m = static_cast<std::uint8_t>(mode), s = static_cast<std::uint8_t>(severity);
        ar(id, key, kind, subject, school, district, title, facts, m, s, hazard, redact, closed,
           milestones, paged, fired, rules, acked_by, opened_us, anchor_us, updated_us, closed_us,
           due_us, rectified_by, rectified_actor, reopened, events, count, cause);
        mode = static_cast<pingan::status>(m);
        severity = static_cast<pingan::severity>(s);
    }
    // Fields added later, stored after the first ones (an older record lacks them).
    template <class A> void serialize_more(A& ar) {
        ar(schools, districts, reports, parent, told_at);
    }
    // A hazard's pending appeal of a verification (docs/rules.md, "Appeals").
    std::string appeal;                 // its appeal_id; empty when none is pending
    std::uint8_t appeal_disputed = 0;   // verify_result disputed
    std::uint8_t last_verification = 0; // 0 none, 1 pass, 2 fail
    std::int64_t held_us = 0;           // a disputed failure holds the deadlines from then
    template <class A> void serialize_extra(A& ar) {
        ar(appeal, appeal_disputed, last_verification, held_us);
    }
};

// Does event `e` concern incident `i`? Its opening event, anything naming the
// incident's id or one of its timers, and the school's own events on its
// subject (a hazard's rectification, an acknowledgement by subject) in the
// incident's mode. The rule of INCIDENT and of a timeline (docs/protocol.md).
bool concerns(const event& e, const incident& i);

// A pending deadline.
struct engine_timer {
    enum class what : std::uint8_t { step, absence };
    std::string id;
    std::int64_t due_us = 0;
    what kind = what::step;
    std::string rule_id;
    std::string incident_id; // step timers
    std::uint32_t step = 0, repeat = 0;
    std::uint8_t period = 0; // absence timers: rules::period
    std::int64_t period_start_us = 0;

    template <class A> void serialize(A& ar) {
        ar(id, due_us, kind, rule_id, incident_id, step, repeat, period, period_start_us);
    }
};

struct window_entry {
    std::int64_t t_us = 0;
    double value = 1;
    std::string school;
    std::string report; // the id of the event counted (stored since windows carry members)
    template <class A> void serialize(A& ar) { ar(t_us, value, school, report); }
};

// Everything the engine remembers. The `dirty_*` sets name what changed since
// the adapter last saved, so that it writes only that.
struct engine_state {
    std::map<std::string, incident> incidents;                // by id
    std::map<std::string, engine_timer> timers;               // by id
    std::set<std::pair<std::int64_t, std::string>> queue;     // (due, id), earliest first
    std::map<std::string, std::vector<window_entry>> windows; // rule | mode | group
    std::map<std::string, std::int64_t> sustained;            // rule | mode | group → since
    std::map<std::string, std::int64_t> last_seen; // rule | mode | school → latest time
    std::string announced_hash;                    // the rule set last logged with ruleset.loaded

    // Indexes rebuilt from `incidents`, never stored.
    std::map<std::string, std::string> by_key;
    std::multimap<std::string, std::string> by_subject; // mode | school | subject → id
    std::int64_t absence_horizon = 0;                   // no absence checkpoint falls before this
    std::string absence_hash;                           // the rule set the horizon was computed for

    std::set<std::string> dirty_incidents;
    std::map<std::string, std::optional<std::string>> timer_changes; // table key → value/erase
    std::set<std::string> dirty_engine;                              // keys of the engine table
    bool dirty_meta = false;

    void clear();
    void index(const incident& i);
};

struct engine_options {
    micros late_after{std::chrono::seconds(10)}; // a timer fired later than this is late
};

class engine {
  public:
    using options = engine_options;

    // `reg` gives school types and names; may be null (school filters then never match).
    engine(std::shared_ptr<const rules::ruleset> rs, std::shared_ptr<const registry> reg,
           options o = {});

    const rules::ruleset& rules() const noexcept { return *rules_; }
    std::shared_ptr<const rules::ruleset> rules_ptr() const noexcept { return rules_; }

    // Processes one stored event (offset and received_at set). Timers due at
    // or before its received_at run first, so that an acknowledgement that
    // arrives after a deadline never undoes the escalation. Events the engine
    // derives itself are ignored, except timer.fired.
    void apply(engine_state& st, const event& e, std::vector<event>& out) const;

    // Earliest pending timer.
    std::optional<timestamp> next_due(const engine_state& st) const;

    // Schedules what needs no event to start: the absence checkpoints of a
    // broker that starts silent. Changes only timers (nothing is derived).
    void start(engine_state& st, timestamp now) const;
    // False until start() (or any event) scheduled the absence checkpoints of this rule set.
    bool started(const engine_state& st) const;

    // One timer.fired event (status System) per timer due at or before `now`.
    // Does not change the state: the timers run when those events are applied.
    void fire(const engine_state& st, timestamp now, std::vector<event>& out) const;

    // True for the types the engine derives (they are never inputs).
    static bool derived_type(std::string_view type) noexcept;
    // True for every event the engine made: the derived types, and the
    // reports of typed incidents (incident.reported from the engine's source).
    static bool made_by_engine(const event& e) noexcept;

  private:
    struct run;
    std::shared_ptr<const rules::ruleset> rules_;
    std::shared_ptr<const registry> reg_;
    options opts_;
    std::vector<const rules::rule*> absence_; // rules with an absence trigger
};

// A derived event id: a UUIDv8 whose bits are BLAKE2b-128 of the cause id, a
// tag (the rule id) and a sequence number, so that a replay makes the same id.
event_id derived_id(const event_id& cause, std::string_view tag, std::uint32_t seq);

// The status of what an input of status `mode` causes: Exercise stays
// Exercise, Test stays Test, Actual becomes System (made by the broker).
pingan::status effect_status(pingan::status mode) noexcept;

// Stored forms of the state, for the adapter and for `pingan incidents`.
std::string encode_incident(const incident& i);
bool decode_incident(std::string_view bytes, incident& out);
std::string encode_timer(const engine_timer& t);
bool decode_timer(std::string_view bytes, engine_timer& out);
std::string encode_window(const std::vector<window_entry>& w);
bool decode_window(std::string_view bytes, std::vector<window_entry>& out);
// 8 bytes of big-endian (due + 2^63), then the id: the earliest sorts first.
std::string timer_key(std::int64_t due_us, std::string_view id);

json incident_to_json(const incident& i);

} // namespace pingan
