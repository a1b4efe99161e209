// Admission: the broker's decision whether a published frame becomes a stored
// event. A free function from bytes to an event or a problem; it knows nothing
// about sockets, so every refusal can be tested directly.
#pragma once

#include "common/codec.hpp"
#include "common/errc.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <array>
#include <string_view>

namespace pingan {

// The types only the broker makes (its escalation engine, timers, rule
// loads, access-table reloads and signed checkpoints). They are refused from every client, whatever
// its rights and with or without security: the tamper-evident log must not hold a forged
// escalation. This is the one list of them.
inline constexpr std::array<std::string_view, 10> broker_only_types{
    escalation_raised::type, incident_opened::type,   incident_overdue::type,
    incident_closed::type,   incident_reopened::type, notification_requested::type,
    timer_fired::type,       ruleset_loaded::type,    access_revoked::type,
    audit_checkpoint::type};

// The actions people take, and the record of a person's view of minors'
// details that a console (a client showing them to people) makes. With
// security on, a client needs the `act` right for them (access.hpp); reports
// need `publish`. The broker logs its own replays' views itself.
inline constexpr std::array<std::string_view, 4> action_types{
    incident_acknowledged::type, incident_resolved::type, incident_note::type, access_viewed::type};

// The types a client may publish without a school: the receipts and link
// acknowledgements of a city-wide page (an incident of several schools has no
// school). Nothing else: a report always belongs to a school. With security
// on, only a client of city scope may publish them (may_publish: an event of
// no school is in no school's or district's scope).
inline constexpr std::array<std::string_view, 3> city_wide_types{
    notification_delivered::type, notification_failed::type, incident_acknowledged::type};

// The types a client may publish for a district without a school: a change of
// an intake credential that covers a whole district. With security on, only a
// client of that district's or city scope may publish them.
inline constexpr std::array<std::string_view, 1> district_wide_types{credential_changed::type};

bool broker_only(std::string_view type) noexcept;
bool is_action(std::string_view type) noexcept;
bool may_be_city_wide(std::string_view type) noexcept;
bool may_be_district_wide(std::string_view type) noexcept;

struct admit_limits {
    std::size_t max_event_bytes = 64 * 1024;
    micros max_future_skew = std::chrono::hours{24}; // occurred_at ahead of the broker clock
};

// Decodes (binary or JSON), refuses the broker's own types, validates, checks
// the school against the registry, fills in the district and sets the actor. `now` is the broker
// clock, used only to bound occurred_at. Returns: ok and `out` ready to store, or the problem that
// refuses it.
problem admit(std::string_view frame, bool json_form, const registry& reg, std::string_view actor,
              timestamp now, const admit_limits& limits, event& out);

} // namespace pingan
