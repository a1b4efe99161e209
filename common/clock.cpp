// Clock implementations.
#include "clock.hpp"

#include "errc.hpp"

#include <chrono>
#include <string>

namespace pingan {
namespace {

std::int64_t real_now_us() noexcept {
    return std::chrono::duration_cast<micros>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace

timestamp system_clock::now() const noexcept {
    return from_us(real_now_us());
}

scaled_clock::scaled_clock(timestamp start, double factor)
    : start_(start), real_start_us_(real_now_us()), factor_(factor) {}

timestamp scaled_clock::now() const noexcept {
    auto real = static_cast<double>(real_now_us() - real_start_us_);
    return start_ + micros{static_cast<std::int64_t>(real * factor_)};
}

std::unique_ptr<clock> make_clock(std::string_view spec) {
    if (spec.empty() || spec == "system") return std::make_unique<system_clock>();
    auto bad = [&](const std::string& why) {
        return error(errc::bad_config, "clock \"" + std::string(spec) + "\": " + why);
    };
    if (spec.starts_with("manual:")) {
        auto t = parse_utc(spec.substr(7));
        if (!t) throw bad("expected manual:<RFC 3339 time>");
        return std::make_unique<manual_clock>(*t);
    }
    if (spec.starts_with("scaled:")) {
        auto rest = spec.substr(7);
        auto colon = rest.find(':');
        if (colon == std::string_view::npos) throw bad("expected scaled:<factor>:<RFC 3339 time>");
        double factor = 0;
        try {
            factor = std::stod(std::string(rest.substr(0, colon)));
        } catch (...) {
            throw bad("factor is not a number");
        }
        if (!(factor > 0)) throw bad("factor must be positive");
        auto t = parse_utc(rest.substr(colon + 1));
        if (!t) throw bad("start is not an RFC 3339 time");
        return std::make_unique<scaled_clock>(*t, factor);
    }
    throw bad("expected system, manual:<time> or scaled:<factor>:<time>");
}

} // namespace pingan
