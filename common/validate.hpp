// Validation of events: every check that does not need the broker's state.
//
// The checks follow the field lists in event.hpp (UTF-8, byte limits, keys and
// codes) plus rules that span fields (a drill's all-clear after its start, a
// psych alert always Private). Problems name the field: "body.area: ...".
#pragma once

#include "errc.hpp"
#include "event.hpp"

#include <string_view>

namespace pingan {

// True if `s` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool valid_utf8(std::string_view s) noexcept;

// Checks the envelope and body of an event as a publisher sent it.
// Returns: the first problem found, or ok.
problem validate(const event& e);

} // namespace pingan
