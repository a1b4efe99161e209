// pingan-wellbeing's decision: a counsellor's psych alert → psych.alert, with
// the student's id replaced by a keyed pseudonym before anything leaves.
//
// POST /psych/alert → psych.alert (scope Private). The request carries
// student_id; the event carries only student_ref and coded fields. Names and
// free text are refused with 400, never published (DOMAIN §5).
#pragma once

#include "pseudonym.hpp"
#include "services/common/intake.hpp"

namespace pingan::svc::wellbeing {

decision psych_alert(json& req, const intake_context& ctx, const school_keys& keys);

} // namespace pingan::svc::wellbeing
