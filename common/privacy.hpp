// Minors' data (DOMAIN §5): which events carry it, and their redacted form.
//
// Psych alerts and bullying reports carry only pseudonymous references and
// coded indicators, never names or free text; even so, above the school only
// cleared roles see them. A redacted event keeps its envelope and its risk
// level or forms (what a bureau needs to act on) and replaces every student
// reference and indicator code with "redacted".
#pragma once

#include "common/event.hpp"

#include <string_view>

namespace pingan {

inline constexpr std::string_view redacted = "redacted";

// True for the types whose bodies carry students' references or indicators.
bool carries_minors_details(std::string_view type) noexcept;

// Redacts `e` in place. Returns: true if anything was redacted.
bool redact_minors(event& e);

} // namespace pingan
