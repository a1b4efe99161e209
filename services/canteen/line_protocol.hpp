// The canteen sensors' line protocol (docs/services.md has the full text).
//
// One reading per line, fields separated by spaces or tabs:
//
//     canteen_id sensor_id zone celsius [time]
//     420502K001-main cold-room-1 cold_storage 4.5 2026-11-29T07:31:50Z
//
// zone is cold_storage, freezer, hot_holding or sample_fridge; celsius a
// decimal number; time RFC 3339 (default: when the service received it). The
// canteen id begins with the school's registry id and a '-'. Lines that are
// empty or start with '#' are skipped. Over UDP a datagram holds one or more
// lines; over TCP the service answers each line with "ok <event id>" or
// "error <code> <message>".
#pragma once

#include "common/errc.hpp"
#include "common/event.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace pingan::svc::canteen {

struct reading {
    std::string school;
    std::string canteen_id;
    std::string sensor_id;
    food_zone zone{};
    double celsius = 0;
    std::optional<timestamp> at;
};

// True for a line to skip (blank or comment).
bool skip_line(std::string_view line) noexcept;

// Parses one line (without its newline). Returns: a problem naming the field.
problem parse_line(std::string_view line, reading& out);

} // namespace pingan::svc::canteen
