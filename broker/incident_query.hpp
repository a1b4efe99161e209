// The incident commands of the query socket: INCIDENTS (a filtered list) and
// INCIDENT (one incident with the timeline of the events that concern it).
//
// Both read the escalation engine's `incidents` table through the store's
// read API (a short read-only snapshot, like a replay chunk) on the query
// thread, and answer within the caller's scope: a school's key sees its
// school's incidents, a district's key its district's, the city everything.
// The wire format is in docs/protocol.md (INCIDENTS, INCIDENT).
#pragma once

#include "broker/broker_impl.hpp"

#include <string>
#include <string_view>

namespace pingan {

inline constexpr std::string_view cmd_incidents = "INCIDENTS";
inline constexpr std::string_view cmd_incident = "INCIDENT";

// The answer to one incident command: a reply frame, or a refusal.
struct incident_answer {
    problem refused;  // set: answer ERR with it
    std::string body; // the JSON reply frame otherwise
};

// Answers INCIDENTS or INCIDENT (`cmd`) with JSON `params` for `client` (null
// when security is off: everything is visible). A cleared client's view of
// minors' details in a timeline is logged as access.viewed through the writer.
incident_answer answer_incident_query(broker::impl& b, const principal* client,
                                      std::string_view cmd, const json& params);

} // namespace pingan
