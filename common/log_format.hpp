// Log lines as text or as JSON objects, one a line.
//
// A message is a short text followed by key=value fields, written so that it
// reads well as text and parses as data:
//
//   incident opened incident=INC-1 school=420502P001 kind=hazard
//
// With `--log-format json` (for journald and ELK) each line is one object:
//
//   {"time":"2026-09-01T00:00:00.000000Z","level":"info","logger":"pingan-broker",
//    "msg":"incident opened","fields":{"incident":"INC-1","school":"420502P001",...}}
//
// The fields are the message's trailing key=value words; a value with spaces
// or quotes is written quoted (log_value). Numbers and true/false become JSON
// numbers and booleans.
#pragma once

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <string>
#include <string_view>

namespace pingan {

enum class log_format { text, json };

// Returns: the format named "text" or "json".
// Throws: pingan::error(bad_config) for any other name.
log_format parse_log_format(std::string_view name);

// The format of the loggers make_logger makes from now on (services, console,
// notify); the broker applies it to its own logger.
void set_default_log_format(log_format f) noexcept;
log_format default_log_format() noexcept;

// Makes `log` write JSON lines when `f` is json; text keeps its pattern.
void apply_log_format(spdlog::logger& log, log_format f);

// A value for a key=value field: as is when it is one word, else quoted
// with \" and \\ escaped.
std::string log_value(std::string_view v);

// A message split into its text and its trailing key=value fields.
struct log_message {
    std::string msg;
    nlohmann::ordered_json fields = nlohmann::ordered_json::object(); // in their order
};
log_message split_fields(std::string_view message);

// One JSON line (without the newline) for a record.
std::string json_log_line(std::string_view time, std::string_view level, std::string_view logger,
                          std::string_view message);

} // namespace pingan
