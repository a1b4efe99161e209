// Minors' data (DOMAIN §5): which fields carry it, and their redacted form.
//
// Psych alerts and bullying reports carry only pseudonymous references and
// coded indicators, never names or free text; even so, only cleared roles see
// them. The fields that hold them are marked `classified` in their body's
// field list (event.hpp), and everything here follows from those marks: the
// redaction of events, of JSON bodies, and the checks that keep such values
// out of texts (page texts, incident titles) and incident subjects. A
// redacted event keeps its envelope and its risk level or forms (what a
// bureau needs to act on) and replaces every classified value with
// "redacted".
#pragma once

#include "common/codec.hpp"
#include "common/event.hpp"

#include <string_view>
#include <vector>

namespace pingan {

inline constexpr std::string_view redacted = "redacted";

// What a text shows in place of a classified value (a page, a title).
inline constexpr std::string_view withheld_text = "[已隐去]";

// True for the types whose bodies have a classified field.
bool carries_minors_details(std::string_view type) noexcept;

// True if `field` is a classified field of `type`.
bool is_classified(std::string_view type, std::string_view field);

// True if `field` is a classified field of any type: for texts whose event
// type is not at hand.
bool is_classified_anywhere(std::string_view field);

// The classified fields of `type`, in declaration order (empty for most types).
const std::vector<std::string_view>& classified_fields(std::string_view type);

// Redacts `e` in place. Returns: true if it has classified fields.
bool redact_minors(event& e);

// True if some classified field of `e` holds a value (not empty, not the
// redacted placeholder): showing `e` shows minors' details. An event the
// broker already redacted shows none.
bool shows_minors_details(const event& e);

// Replaces each classified field of a `type` body in JSON form by
// `placeholder` (a list becomes the single string, so not even the number of
// codes shows). Returns: true if anything was replaced.
bool redact_classified(std::string_view type, json& body, std::string_view placeholder);

} // namespace pingan
