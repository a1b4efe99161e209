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

// Returns: the offset of the first byte of `s` that does not start or continue
// a well-formed UTF-8 sequence, or std::string_view::npos if `s` is valid.
std::size_t utf8_error_at(std::string_view s) noexcept;

// Checks the envelope and body of an event as a publisher sent it.
// Returns: the first problem found, or ok.
problem validate(const event& e);

} // namespace pingan
