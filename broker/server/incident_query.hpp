// The incident commands of the query socket: INCIDENTS (a filtered list) and
// INCIDENT (one incident with the timeline of the events that concern it).
//
// Both read the escalation engine's `incidents` table through the store's
// read API (a short read-only snapshot, like a replay chunk) on the query
// thread, and answer within the caller's scope: a school's key sees its
// school's incidents, a district's key its district's, the city everything.
// The wire format is in docs/protocol.md (INCIDENTS, INCIDENT).
#pragma once

#include "broker/server/broker_impl.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// Logs one access.viewed (`what`: "minors_details" or "export") for `client`
// through the writer: the records [first, last], `count` of them, of
// `schools`. Without an access table (`client` null) the broker knows no one,
// and the record says so. With `durable`, returns once the event is stored
// and durable (so that the reply that follows finds it in the log).
void log_access_viewed(broker::impl& b, const principal* client, std::string what,
                       std::uint64_t first, std::uint64_t last, std::uint32_t count,
                       std::vector<std::string> schools, bool durable = false);

} // namespace pingan
