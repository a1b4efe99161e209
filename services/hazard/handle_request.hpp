// pingan-hazard's decisions: from a school's request to hazard events
// (隐患排查整治, DOMAIN §4). Free functions with no I/O, tested on their own.
//
// POST /hazard/report  → hazard.reported
// POST /hazard/rectify → hazard.rectified
// POST /hazard/verify  → hazard.verified
// POST /hazard/plan    → hazard.remediation_planned
// POST /hazard/appeal  → hazard.appealed
// docs/services.md lists every field.
#pragma once

#include "services/common/intake.hpp"

namespace pingan::svc::hazard {

// A general hazard's rectification deadline when the school gives none
// (DOMAIN §4 rule 2, a proposal and a setting of the rule pack).
inline constexpr auto default_general_deadline = std::chrono::days(7);

// Major hazards need an interim control or a closed area (rule 1); a missing
// hazard_id is made from the event id; a general hazard without a deadline gets
// the default. Severity follows the grade.
decision report(json& req, const intake_context& ctx);
decision rectify(json& req, const intake_context& ctx);
decision verify(json& req, const intake_context& ctx);

// A remediation plan (SAWS Order 16 art. 3); the intake admits only the
// roles principal and safety_vp to it (services/common/guard.cpp).
decision plan(json& req, const intake_context& ctx);
// An appeal of a verification: the school disputes a failure, the reporter
// a pass. The county's decision does not come through a school's intake.
decision appeal(json& req, const intake_context& ctx);

} // namespace pingan::svc::hazard
