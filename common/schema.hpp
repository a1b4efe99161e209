// The JSON mapping of every event body, described from the same field lists
// that drive the codecs, so docs/events.md cannot drift from the code
// (tests/schema.cpp checks that the document contains this text).
#pragma once

#include <string>

namespace pingan {

// A Markdown section per body type: field, JSON type, required or default, limit.
std::string body_schema_markdown();

} // namespace pingan
