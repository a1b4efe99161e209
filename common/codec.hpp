// Event codecs: cereal portable binary (wire and store) and JSON (CLI, exports,
// non-C++ clients). Bytes and text in, events out: no sockets, no files.
//
// Binary layout, version 1 (all integers little-endian, as cereal's portable
// binary archive writes them; a string is a uint64 byte count then the bytes):
//
//     u8  archive endianness flag (1)   -- written by cereal
//     u8  record format (1)
//     16  id
//     u64 offset
//     str type, school, district, source, actor
//     i64 occurred_at, received_at (µs since 1970-01-01 UTC)
//     u8  status, severity, urgency, certainty, scope
//     u64 count, then 16 bytes per reference
//     u32 body version, then the body's fields in declaration order
//
// The JSON mapping is documented field by field in docs/events.md.
#pragma once

#include "errc.hpp"
#include "event.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace pingan {

using json = nlohmann::ordered_json;

// Appends the binary form of `e` to `out`.
void encode(const event& e, std::string& out);
std::string encode(const event& e);

// Decodes one binary event.
// Returns: a problem (undecodable, unsupported_version, unknown_type) or ok.
problem decode(std::string_view bytes, event& out);

// Where received_at sits in encode(e): the broker fills in the offset (always
// at byte 18) and received_at in place, without encoding the event again.
std::size_t received_at_position(const event& e) noexcept;
inline constexpr std::size_t offset_position = 18;
// Writes `offset` and `received_at` into binary event bytes at those positions.
void patch_broker_fields(char* bytes, std::size_t received_pos, std::uint64_t offset,
                         timestamp received_at) noexcept;
// Where received_at sits in binary event bytes, read from the bytes themselves.
// Returns: nothing if the bytes are too short to hold it.
std::optional<std::size_t> received_at_position(std::string_view bytes) noexcept;

// Reads only the type, school and district of a binary event, for filters.
// Returns: false if the bytes are not a binary event.
struct event_head {
    std::uint64_t offset = 0;
    std::string_view type, school, district;
};
bool peek(std::string_view bytes, event_head& out) noexcept;

// The JSON object of an event, including the broker's fields (offset,
// received_at, district, actor) when they are set.
json to_json(const event& e);
std::string to_json_line(const event& e); // compact, one line, no newline

// Parses an event from a JSON object. Fields the broker assigns (offset,
// received_at, actor) are read when present, so that replayed JSON reads back,
// and the broker overwrites them on ingest. A missing id stays nil for the
// caller to fill.
// Returns: a problem naming the field, or ok.
problem from_json(const json& j, event& out);

// Parses JSON text; an invalid UTF-8 sequence is reported as invalid_utf8.
problem parse_json(std::string_view text, json& out);

// A body alone, by type name (for rule files and tests).
problem body_from_json(std::string_view type, const json& j, body& out);
json body_to_json(const body& b);

} // namespace pingan
