// pingan-drill's decision: a drill record → drill.recorded, one
// hazard.reported per problem found, and, for a drill that sounded a
// simulated alarm, an incident.reported with status Exercise (DOMAIN §3).
//
// POST /drill/record. The evacuation time is all_clear_at − started_at; the
// target comes from the registry (evacuation_target_seconds: by school type
// and the building's floors). The drill record itself is an Actual fact (a
// drill took place, with these findings), so that cadence and "too slow" rules
// act on it; only the simulated alarm is an Exercise, so that nobody mistakes
// it for a real incident.
#pragma once

#include "services/common/intake.hpp"

namespace pingan::svc::drill {

decision record(json& req, const intake_context& ctx);

} // namespace pingan::svc::drill
