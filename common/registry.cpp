// CSV parsing of the school and district registry.
#include "registry.hpp"

#include <array>
#include <charconv>

namespace pingan {
namespace {

constexpr std::array type_names{"kindergarten", "primary",    "junior", "nine_year",
                                "senior",       "vocational", "special"};

template <class T> bool number(std::string_view s, T& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

bool flag(std::string_view s, bool& out) {
    if (s == "1" || s == "true") return out = true, true;
    if (s == "0" || s == "false") return out = false, true;
    return false;
}

template <class F> void each_line(std::string_view text, F&& f) {
    std::size_t line_no = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        f(line_no, line);
    }
}

[[noreturn]] void bad(std::string_view file, std::size_t line, const std::string& what) {
    throw error(errc::bad_config,
                std::string(file) + " line " + std::to_string(line) + ": " + what);
}

} // namespace

std::string_view school_type_name(school_type t) noexcept {
    return type_names[static_cast<std::size_t>(t)];
}

std::optional<school_type> parse_school_type(std::string_view s) noexcept {
    for (std::size_t i = 0; i < type_names.size(); ++i)
        if (s == type_names[i]) return static_cast<school_type>(i);
    return std::nullopt;
}

std::uint32_t evacuation_target_seconds(const school& s) noexcept {
    std::uint32_t base =
        (s.type == school_type::primary || s.type == school_type::kindergarten) ? 180 : 120;
    if (s.max_floors > 4) base += 30 * (s.max_floors - 4);
    return base;
}

std::vector<std::string_view> split_csv_line(std::string_view line) {
    std::vector<std::string_view> out;
    while (true) {
        auto c = line.find(',');
        out.push_back(line.substr(0, c));
        if (c == std::string_view::npos) break;
        line.remove_prefix(c + 1);
    }
    return out;
}

registry registry::from_csv(std::string_view schools_csv, std::string_view districts_csv) {
    registry r;
    each_line(districts_csv, [&](std::size_t n, std::string_view line) {
        if (n == 1 && line.starts_with("district_code")) return;
        auto f = split_csv_line(line);
        if (f.size() < 3) bad("districts.csv", n, "expected at least 3 columns");
        r.districts_.push_back({std::string(f[0]), std::string(f[1]), std::string(f[2])});
    });
    each_line(schools_csv, [&](std::size_t n, std::string_view line) {
        if (n == 1 && line.starts_with("school_id")) return;
        auto f = split_csv_line(line);
        if (f.size() != 11)
            bad("schools.csv", n, "expected 11 columns, found " + std::to_string(f.size()));
        school s;
        s.id = f[0];
        s.name = f[1];
        s.district_code = f[2];
        if (s.id.empty()) bad("schools.csv", n, "school_id is empty");
        auto t = parse_school_type(f[3]);
        if (!t) bad("schools.csv", n, "unknown type \"" + std::string(f[3]) + "\"");
        s.type = *t;
        if (!number(f[4], s.students)) bad("schools.csv", n, "students is not a number");
        if (!flag(f[5], s.boarding)) bad("schools.csv", n, "boarding must be 0 or 1");
        if (!flag(f[6], s.school_bus)) bad("schools.csv", n, "school_bus must be 0 or 1");
        if (!flag(f[7], s.canteen)) bad("schools.csv", n, "canteen must be 0 or 1");
        if (!number(f[8], s.max_floors)) bad("schools.csv", n, "max_floors is not a number");
        if (!number(f[9], s.lat) || !number(f[10], s.lon))
            bad("schools.csv", n, "lat/lon are not numbers");
        if (!r.districts_.empty() && !r.find_district(s.district_code))
            bad("schools.csv", n, "district " + s.district_code + " is not in districts.csv");
        r.schools_.push_back(std::move(s));
    });
    r.by_id_.reserve(r.schools_.size());
    for (std::size_t i = 0; i < r.schools_.size(); ++i) {
        if (!r.by_id_.emplace(r.schools_[i].id, i).second)
            throw error(errc::bad_config, "schools.csv: duplicate school_id " + r.schools_[i].id);
    }
    return r;
}

const school* registry::find(std::string_view id) const noexcept {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &schools_[it->second];
}

const district* registry::find_district(std::string_view code) const noexcept {
    for (const auto& d : districts_)
        if (d.code == code) return &d;
    return nullptr;
}

} // namespace pingan
