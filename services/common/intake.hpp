// From a request's JSON to an event, with one message per wrong field.
//
// The services' HTTP APIs take flat JSON objects: envelope keys (school,
// occurred_at, status, references) beside the body's own fields, named as in
// docs/events.md. The codec and validation in common/ stop at the first
// problem; a person filling a form wants every wrong field at once, so this
// layer re-runs them, each time replacing the field that failed by a harmless
// placeholder, until the event is clean or every wrong field is listed.
//
// No I/O: the clock, registry and source are passed in.
#pragma once

#include "common/clock.hpp"
#include "common/codec.hpp"
#include "common/errc.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <string>
#include <vector>

namespace pingan::svc {

// One wrong field of a request: "area", unknown_enum, "area: \"roof\" is not one of ...".
struct field_problem {
    std::string field;
    errc code = errc::ok;
    std::string message;
};
using problems = std::vector<field_problem>;

// What a service needs to turn a request into events.
struct intake_context {
    const registry& schools;
    const clock& now;
    std::string source; // "pingan-hazard/kiosk-2"
};

// What a request decided: the events to publish, or why it cannot be accepted.
struct decision {
    std::vector<event> events;
    problems errors;
    json answer = json::object(); // extra fields for the 202 answer (a computed verdict, ids)
    bool ok() const noexcept { return errors.empty() && !events.empty(); }
};

// Reads the envelope keys of `req` into `e` (and removes them from `req`):
// school (required, in the registry), occurred_at (default now), status
// (Actual, Exercise or Test; default Actual), references, id (a UUIDv7 the
// client made; default a new one). Sets source.
void read_envelope(json& req, const intake_context& ctx, event& e, problems& out);

// Parses `fields` as the body of `type` into `e`, then validates the whole
// event, adding one problem per wrong field to `out`.
void read_body(std::string_view type, const json& fields, event& e, problems& out);

// The field a codec or validation message names: "body.photos[2]: ..." → "photos".
std::string field_of(std::string_view detail);

// JSON for a 400 answer: {"errors":[{"field":..,"code":..,"message":..},...]}.
json problems_json(const problems& p);

} // namespace pingan::svc
