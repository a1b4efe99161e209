// The console's picture of the log: recent events and the open incidents,
// projected from the event stream (catch-up from offset 1, then live), and
// what each user may be shown of them.
//
// No I/O: events come in through apply(); JSON for the page comes out. The
// server decides here, per user, which events and incidents leave the
// process, and in which form (minors' details redacted without clearance).
#pragma once

#include "auth.hpp"
#include "common/codec.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace pingan::console {

// One incident as the console sees it, from the engine's events.
struct incident_view {
    std::string id, school, district, kind, subject, title;
    pingan::status mode = pingan::status::actual;
    pingan::severity severity = pingan::severity::unknown;
    bool closed = false, acknowledged = false;
    std::int64_t opened_us = 0, updated_us = 0;
    std::optional<std::int64_t> due_us;
    std::vector<std::int64_t> deadlines_us; // escalation deadlines announced
    std::string message;                    // the latest page's text
    bool minors = false;                    // opened from minors' data (derived events are Private)
    bool message_names_minors = false; // the latest page is a school-tier page of such an incident
    std::vector<std::string> told;     // "tier: role, role"
    std::vector<std::string> acked_by; // "actor (note)"
    std::vector<std::uint64_t> timeline; // offsets of every event about it
    std::string cause_id;                // the event that opened it
    // A cross-school incident (no school of its own): the member schools and
    // their districts, from the reports that caused its events.
    std::map<std::string, std::string> member_schools; // school -> district
    std::set<std::string> member_districts;
};

// True if `e` is an engine event of an incident opened from minors' data
// whose text may name a student reference: the school tier's pages and
// escalations (pages above the school name no body field).
bool derived_names_minors(const event& e) noexcept;

// red, orange, yellow or blue, from the CAP severity.
std::string_view level_of(pingan::severity s) noexcept;

class console_view {
  public:
    console_view(const registry& reg, std::size_t history_limit)
        : reg_(reg), history_limit_(history_limit) {}

    // Takes the next event of the log. Events at or below the last offset
    // applied are ignored (a replay overlapping the feed).
    void apply(const event& e);
    std::uint64_t last_offset() const noexcept { return last_; }
    std::int64_t broker_now_us() const noexcept { return now_us_; }

    // The kept events with offsets >= `from`, oldest first (the history keeps
    // the latest `history_limit` events).
    std::vector<const event*> since(std::uint64_t from) const;
    std::uint64_t oldest_kept() const noexcept;
    const event* at(std::uint64_t offset) const;

    const std::map<std::string, incident_view>& incidents() const noexcept { return incidents_; }
    const incident_view* incident(std::string_view id) const;
    // The incident an event is about, if any (by incident id, or by subject at its school).
    const incident_view* incident_of(const event& e) const;

    // The event as the page may show it to `u`, or nothing if `u` may not see
    // it. `test` asks for Test traffic too. `minors_shown` is set when the
    // copy shows minors' details unredacted (the caller logs the view).
    std::optional<json> for_user(const event& e, const user& u, bool test,
                                 bool& minors_shown) const;
    // The incident for `u`, or nothing if out of scope (or Test and not asked).
    std::optional<json> incident_for_user(const incident_view& i, const user& u, bool test) const;

    json event_json(const event& e) const;
    json incident_json(const incident_view& i) const;
    // The districts and the schools `u` may see, with names and coordinates.
    json places_for(const user& u) const;

  private:
    incident_view* find_named(const event& e, std::string_view ref);
    // For a cross-school incident: the district an event of it carries, and
    // the school and district of the report that caused the event.
    void note_members(incident_view& i, const event& e) const;
    std::string school_name(std::string_view id) const;
    std::string district_name(std::string_view code) const;

    const registry& reg_;
    std::size_t history_limit_;
    std::deque<event> history_;
    std::unordered_map<std::string, std::uint64_t> offset_of_id_; // kept events only
    std::map<std::string, incident_view> incidents_;
    std::map<std::string, std::string> by_subject_; // mode|school|subject -> incident id
    std::uint64_t last_ = 0;
    std::int64_t now_us_ = 0;
};

} // namespace pingan::console
