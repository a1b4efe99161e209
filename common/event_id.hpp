// Event ids: 128-bit UUIDv7 made by the event's source; the idempotency key.
//
// A source makes the id once, when the fact is first recorded, and resends the
// same id until the broker acknowledges it; the broker stores an id once. UUIDv7
// puts the millisecond time first, so ids from one source sort by creation time
// and the broker's id index is written mostly in order.
#pragma once

#include "time.hpp"

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pingan {

struct event_id {
    std::array<std::uint8_t, 16> bytes{};

    bool is_nil() const noexcept;
    // "01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f"
    std::string str() const;
    auto operator<=>(const event_id&) const = default;

    // Returns: the id, or nothing if the text is not a 36-character UUID.
    static std::optional<event_id> parse(std::string_view text);
    // Returns: the id, or nothing unless there are exactly 16 bytes.
    static std::optional<event_id> from_bytes(std::span<const std::uint8_t> b);
    // A UUIDv7 for the given time and 10 random bytes (no randomness here).
    static event_id v7(timestamp t, std::span<const std::uint8_t, 10> random) noexcept;

    template <class Archive> void serialize(Archive& ar) { ar(bytes); }
};

// A UUIDv7 for the given time with random bits from the operating system.
event_id new_event_id(timestamp t);

// An id that is a function of `text`: BLAKE2b-128 of it, shaped as a UUID of
// version 8 (RFC 9562), for events a source must be able to make again with
// the same id (a resend after a crash, a receipt, a file published twice).
event_id stable_event_id(std::string_view text);

} // namespace pingan
