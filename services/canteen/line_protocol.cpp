// Parsing of the canteen sensors' line protocol.
#include "line_protocol.hpp"

#include "common/validate.hpp"

#include <charconv>
#include <cmath>
#include <vector>

namespace pingan::svc::canteen {

bool skip_line(std::string_view line) noexcept {
    for (char c : line) {
        if (c == '#') return true;
        if (c != ' ' && c != '\t' && c != '\r') return false;
    }
    return true;
}

problem parse_line(std::string_view line, reading& out) {
    if (!valid_utf8(line)) return {errc::invalid_utf8, "the line is not valid UTF-8"};
    std::vector<std::string_view> f;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            ++i;
        auto start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            ++i;
        if (i > start) f.push_back(line.substr(start, i - start));
    }
    if (f.size() < 4 || f.size() > 5)
        return {errc::malformed_json,
                "expected \"canteen_id sensor_id zone celsius [time]\", got " +
                    std::to_string(f.size()) + " fields"};
    auto dash = f[0].find('-');
    if (dash == std::string_view::npos || dash == 0)
        return {errc::bad_value, "canteen_id: must begin with the school id and '-'"};
    if (f[0].size() > 64 || f[1].size() > 64) return {errc::too_long, "ids are at most 64 bytes"};
    out.school = std::string(f[0].substr(0, dash));
    out.canteen_id = std::string(f[0]);
    out.sensor_id = std::string(f[1]);
    auto z = enum_parse<food_zone>(f[2]);
    if (!z)
        return {errc::unknown_enum,
                "zone: \"" + std::string(f[2]) + "\" is not one of " + enum_choices<food_zone>()};
    out.zone = *z;
    double c = 0;
    auto [p, ec] = std::from_chars(f[3].data(), f[3].data() + f[3].size(), c);
    if (ec != std::errc() || p != f[3].data() + f[3].size() || !std::isfinite(c))
        return {errc::bad_value, "celsius: \"" + std::string(f[3]) + "\" is not a number"};
    out.celsius = c;
    out.at.reset();
    if (f.size() == 5) {
        auto t = parse_utc(f[4]);
        if (!t) return {errc::bad_value, "time: \"" + std::string(f[4]) + "\" is not RFC 3339"};
        out.at = *t;
    }
    return {};
}

} // namespace pingan::svc::canteen
