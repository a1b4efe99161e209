// The school registry: which schools exist, where, and what they are.
//
// Loaded from CSV text in the format of data/schools.csv and data/districts.csv
// (the caller reads the files). The broker uses it to reject unknown schools
// and to fill in each event's district; rules use a school's type, size,
// boarding, bus and canteen flags, and building height.
#pragma once

#include "errc.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pingan {

enum class school_type : std::uint8_t {
    kindergarten,
    primary,
    junior,
    nine_year,
    senior,
    vocational,
    special
};

struct school {
    std::string id;            // "420502K001"
    std::string name;          // "西陵区第1幼儿园"
    std::string district_code; // "420502"
    school_type type{};
    std::uint32_t students = 0;
    bool boarding = false;
    bool school_bus = false;
    bool canteen = false;
    std::uint32_t max_floors = 0;
    double lat = 0, lon = 0;
};

struct district {
    std::string code; // GB/T 2260
    std::string name;
    std::string kind; // urban, suburban, county
};

std::string_view school_type_name(school_type t) noexcept;
std::optional<school_type> parse_school_type(std::string_view s) noexcept;

// Evacuation target for a drill (DOMAIN §3): 120 s for buildings of up to four
// floors, 180 s for primary pupils and kindergartens, 30 s more for each floor above four.
std::uint32_t evacuation_target_seconds(const school& s) noexcept;

class registry {
  public:
    // Parses schools.csv text (with its header line).
    // Throws: pingan::error(bad_config) naming the line and column that is wrong.
    static registry from_csv(std::string_view schools_csv, std::string_view districts_csv = {});

    const school* find(std::string_view id) const noexcept;
    const district* find_district(std::string_view code) const noexcept;
    const std::vector<school>& schools() const noexcept { return schools_; }
    const std::vector<district>& districts() const noexcept { return districts_; }
    std::size_t size() const noexcept { return schools_.size(); }

  private:
    std::vector<school> schools_;
    std::vector<district> districts_;
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> by_id_;
};

// Splits one CSV line on commas (no quoting: the registry has none).
std::vector<std::string_view> split_csv_line(std::string_view line);

} // namespace pingan
