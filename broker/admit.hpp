// Admission: the broker's decision whether a published frame becomes a stored
// event. A free function from bytes to an event or a problem; it knows nothing
// about sockets, so every refusal can be tested directly.
#pragma once

#include "common/codec.hpp"
#include "common/errc.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <string_view>

namespace pingan {

struct admit_limits {
    std::size_t max_event_bytes = 64 * 1024;
    micros max_future_skew = std::chrono::hours{24}; // occurred_at ahead of the broker clock
};

// Decodes (binary or JSON), validates, checks the school against the registry,
// fills in the district and sets the actor. `now` is the broker clock, used
// only to bound occurred_at.
// Returns: ok and `out` ready to store, or the problem that refuses it.
problem admit(std::string_view frame, bool json_form, const registry& reg, std::string_view actor,
              timestamp now, const admit_limits& limits, event& out);

} // namespace pingan
