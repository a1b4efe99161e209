// RFC 3339 and duration text forms for timestamps.
#include "time.hpp"

#include <cstdio>

namespace pingan {
namespace {

using namespace std::chrono;

constexpr std::int64_t us_per_s = 1'000'000;

std::string format_with(timestamp t, minutes offset, bool iso) {
    if (!representable(t)) return "@" + std::to_string(to_us(t)) + "us";
    auto local = t + offset;
    auto day = floor<days>(local);
    year_month_day ymd{day};
    auto tod = local - day;
    auto h = duration_cast<hours>(tod);
    auto m = duration_cast<minutes>(tod - h);
    auto s = duration_cast<seconds>(tod - h - m);
    auto us = (tod - h - m - s).count();
    char buf[64];
    if (iso)
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ld.%06ldZ",
                      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                      static_cast<unsigned>(ymd.day()), static_cast<long>(h.count()),
                      static_cast<long>(m.count()), static_cast<long>(s.count()),
                      static_cast<long>(us));
    else
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld CST",
                      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                      static_cast<unsigned>(ymd.day()), static_cast<long>(h.count()),
                      static_cast<long>(m.count()), static_cast<long>(s.count()));
    return buf;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}

} // namespace

std::string format_utc(timestamp t) {
    return format_with(t, minutes{0}, true);
}

std::string format_local(timestamp t) {
    return format_with(t, hours{8}, false);
}

std::optional<timestamp> parse_utc(std::string_view s) {
    int Y, M, D, h, m, sec;
    if (!digits(s, 0, 4, Y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, M) || s[7] != '-' ||
        !digits(s, 8, 2, D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, m) || s[16] != ':' ||
        !digits(s, 17, 2, sec))
        return std::nullopt;
    year_month_day ymd{year{Y}, month{static_cast<unsigned>(M)}, day{static_cast<unsigned>(D)}};
    if (!ymd.ok() || h > 23 || m > 59 || sec > 60) return std::nullopt;
    std::size_t pos = 19;
    std::int64_t frac_us = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t n = 0;
        std::int64_t scale = 100000;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 6) {
                frac_us += (s[pos] - '0') * scale;
                scale /= 10;
            }
            ++pos;
            ++n;
        }
        if (n == 0 || n > 9) return std::nullopt;
    }
    if (pos >= s.size()) return std::nullopt;
    std::int64_t offset_s = 0;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
        int oh, om;
        if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    auto secs = sys_days{ymd}.time_since_epoch().count() * 86400LL + h * 3600LL + m * 60LL +
                std::min(sec, 59) - offset_s;
    auto t = from_us(secs * us_per_s + frac_us);
    if (!representable(t)) return std::nullopt;
    return t;
}

std::optional<micros> parse_duration(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::int64_t total = 0;
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::int64_t n = 0;
        std::size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            n = n * 10 + (s[pos] - '0');
            if (n > 1'000'000'000) return std::nullopt;
            ++pos;
        }
        if (pos == start || pos == s.size()) return std::nullopt;
        std::int64_t unit;
        if (s.substr(pos, 2) == "ms") {
            unit = 1000;
            pos += 2;
        } else {
            switch (s[pos]) {
            case 's':
                unit = us_per_s;
                break;
            case 'm':
                unit = 60 * us_per_s;
                break;
            case 'h':
                unit = 3600 * us_per_s;
                break;
            case 'd':
                unit = 86400 * us_per_s;
                break;
            case 'w':
                unit = 7 * 86400 * us_per_s;
                break;
            default:
                return std::nullopt;
            }
            ++pos;
        }
        // "452452379d" is past what a 64-bit count of microseconds holds: not a duration.
        std::int64_t part;
        if (__builtin_mul_overflow(n, unit, &part) || __builtin_add_overflow(total, part, &total))
            return std::nullopt;
    }
    return micros{total};
}

std::string format_duration(micros d) {
    auto us = d.count();
    if (us == 0) return "0s";
    std::string out;
    if (us < 0) {
        out = "-";
        us = -us;
    }
    if (us % us_per_s != 0 && us < 60 * us_per_s) return out + std::to_string(us / 1000) + "ms";
    auto s = us / us_per_s;
    const std::pair<std::int64_t, char> units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    for (auto [size, c] : units) {
        if (s >= size) {
            out += std::to_string(s / size);
            out += c;
            s %= size;
        }
    }
    return out;
}

} // namespace pingan
