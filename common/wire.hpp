// Wire framing for Pingan's three ZeroMQ sockets. docs/protocol.md is the
// full description; this file is its executable form (no sockets here).
//
// Ingest (publisher DEALER -> broker ROUTER), one request per multipart message:
//     [ "PUB" | "PUBJ", tag, event, event, ... ]
// PUB carries binary events (codec.hpp), PUBJ carries JSON events. The tag is
// 0..64 opaque bytes echoed in the reply. The broker answers once per request,
// only after every stored event in it is committed to disk:
//     [ "RES" | "RESJ", tag, result, result, ... ]   one result per event, same order
//     [ "ERR", tag, {"code": ..., "message": ...} ]    the whole request was refused
//
// Live feed (broker XPUB -> SUB), one message per stored event, twice:
//     [ "t/<type>/<district>/<school>", offset (u64 LE), event ]
//     [ "s/<district>/<school>/<type>", offset (u64 LE), event ]
// so that a prefix subscription selects by type ("t/hazard."), by district
// ("s/420502/") or by school ("s/420502/420502K001/").
//
// Query (client DEALER -> broker ROUTER): REPLAY, CREDIT, CANCEL, STATS; see
// docs/protocol.md. Replayed events arrive as [ "EVT", tag, offset, event,
// offset, event, ... ], up to max_events_per_message pairs per message.
#pragma once

#include "errc.hpp"
#include "event_id.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace pingan::wire {

inline constexpr std::string_view cmd_publish = "PUB";
inline constexpr std::string_view cmd_publish_json = "PUBJ";
inline constexpr std::string_view cmd_result = "RES";
inline constexpr std::string_view cmd_result_json = "RESJ";
inline constexpr std::string_view cmd_error = "ERR";
inline constexpr std::string_view cmd_replay = "REPLAY";
inline constexpr std::string_view cmd_credit = "CREDIT";
inline constexpr std::string_view cmd_cancel = "CANCEL";
inline constexpr std::string_view cmd_stats = "STATS";
inline constexpr std::string_view cmd_clock = "CLOCK";
inline constexpr std::string_view cmd_event = "EVT";
inline constexpr std::string_view cmd_end = "END";

inline constexpr std::size_t max_tag = 64;
// A replay message carries up to this many (offset, event) frame pairs.
inline constexpr std::size_t max_events_per_message = 64;

// What happened to one published event.
enum class outcome : std::uint8_t { stored = 0, duplicate = 1, rejected = 2 };

struct result {
    outcome what = outcome::stored;
    errc code = errc::ok;
    event_id id;
    std::uint64_t offset = 0; // stored: its offset; duplicate: the original's offset
    std::string message;      // rejected: what was wrong
};

// Binary result frame: u8 outcome, u8 reserved (0), u16 LE errc, 16-byte id,
// u64 LE offset, then the message as UTF-8 to the end of the frame.
inline constexpr std::size_t result_header = 28;
std::string encode_result(const result& r);
std::optional<result> decode_result(std::string_view frame);

// JSON result frame: {"id":..,"offset":..,"duplicate":bool} or
// {"id":..,"error":{"code":"unknown_school","message":".."}}; index is the
// event's position in the request, from 0.
std::string result_json(const result& r, std::size_t index);

std::string error_json(errc code, std::string_view message);

inline std::string u64_le(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i)
        s[i] = static_cast<char>(v >> (8 * i));
    return s;
}
inline std::optional<std::uint64_t> read_u64_le(std::string_view s) {
    if (s.size() != 8) return std::nullopt;
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = v << 8 | static_cast<unsigned char>(s[i]);
    return v;
}

std::string type_topic(std::string_view type, std::string_view district, std::string_view school);
std::string place_topic(std::string_view district, std::string_view school, std::string_view type);

// Builds the subscription prefix for a filter: at most one of type prefix, or
// district/school. Returns "t/" (everything, once) when nothing is given.
std::string subscription(std::string_view type_prefix, std::string_view district,
                         std::string_view school);

} // namespace pingan::wire
