// What a message on the query socket asks, read from its frames and its JSON
// parameters: the reading and checking of every command's parameters, apart
// from the query thread that acts on them (query.cpp, incident_query.cpp), so
// that the same functions are fuzzed (tests/fuzz/query.cpp). Text in,
// decisions out: no store, no socket, no clock.
//
// The commands and their parameters are in docs/protocol.md.
#pragma once

#include "broker/admission/access.hpp"
#include "broker/store/store.hpp"
#include "common/codec.hpp"
#include "common/errc.hpp"
#include "common/registry.hpp"
#include "common/time.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pingan {

// One request: ROUTER's routing frame, an optional empty delimiter (a REQ or
// DEALER peer with envelopes), the command, a tag its answers carry, and a
// JSON object of parameters (an absent or empty frame is {}).
struct query_request {
    std::string routing;
    bool delimiter = false;
    std::string cmd;
    std::string tag;
    json params = json::object();
    std::size_t key_frame = 0; // the frame whose connection property names the client's key
    problem refused; // set: answer ERR with it (tag cut to 64 bytes, parameters not an object)
};

// Reads a request from its frames. Returns: nothing for fewer than two frames
// (nothing to answer), else the request, refused or not.
std::optional<query_request> parse_query_request(std::span<const std::string_view> frames);

// REPLAY {"from", "to", "from_time", "to_time", "type", "school", "district",
// "credit", "limit", "format", "purpose"}.
struct replay_params {
    scan_filter filter;
    std::uint64_t credit = 1000;
    std::uint64_t limit = 0; // 0: no limit
    bool json = false;
    bool packed = false;
    bool exporting = false; // "purpose": "export"
};
// Returns: bad_value naming the (last) field that is wrong, or ok.
problem parse_replay_params(const json& params, replay_params& out);

// CREDIT {"credit": N}. Returns: bad_value if credit is missing or not a whole number.
problem parse_credit_params(const json& params, std::uint64_t& credit);

// CLOCK {} tells the time; {"set": TIME} or {"advance": DURATION} moves a manual clock.
struct clock_params {
    bool moves = false;            // "set" or "advance" is there (even if wrong)
    std::optional<timestamp> set;  // a valid "set"
    std::optional<micros> advance; // a valid "advance" (when "set" is not valid)
};
// Returns: bad_value if the clock is to move and neither a valid set nor a
// valid advance was given, else ok.
problem parse_clock_params(const json& params, clock_params& out);

// CHECKPOINT {"now": true|false|null}. Returns: bad_value unless now is a boolean or absent.
problem parse_checkpoint_params(const json& params, bool& now);

// ACCESS {"action": "reload"}. Returns: bad_value for anything else.
problem parse_access_params(const json& params);

// INCIDENTS {"state", "severity", "school", "district", "kind", "mode"}.
struct incidents_params {
    std::string state, severity, school, district, kind, mode;
};
// Returns: bad_value or unknown_enum naming the field, or ok. The place is
// checked apart (check_place), against the registry and the client.
problem parse_incidents_params(const json& params, incidents_params& out);

// INCIDENT {"id"} or {"subject", "school"}.
struct incident_params {
    std::string id, subject, school;
    bool exporting = false; // purpose "export": logged as access.viewed what=export
};
// Returns: bad_value unless exactly one of id and subject is given, or for a
// purpose other than "export"; or ok.
problem parse_incident_params(const json& params, incident_params& out);

// The place an incident command names: a school and a district in the
// registry, and within `client`'s scope (null: security off, everything).
// Returns: unknown_school, bad_value or forbidden naming it, or ok.
problem check_place(const registry& reg, const principal* client, const std::string& school,
                    const std::string& district);

} // namespace pingan
