// What the fuzz targets share: the school registry of the repository, loaded
// once, the broker's clients of each scope, and an input cut into messages.
#pragma once

#include "broker/admission/access.hpp"
#include "common/registry.hpp"

#include <cstddef>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::fuzz {

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline const registry& schools() {
    static const registry reg =
        registry::from_csv(read_file(std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv"),
                           read_file(std::string(PINGAN_SOURCE_DIR) + "/data/districts.csv"));
    return reg;
}

// A client of the broker of each scope: the city, 西陵区 (420502) and its
// 西陵区第1幼儿园 (420502K001), each allowed to query.
struct clients {
    principal city, district, school;
    clients() {
        city.identity = "city";
        city.city = true;
        city.may_query = true;
        district.identity = "district:420502";
        district.district = "420502";
        district.may_query = true;
        school.identity = "school:420502K001";
        school.school = "420502K001";
        school.home_district = "420502";
        school.may_query = true;
    }
};

// The parts of `input` between its `separator`s: the first `most` of them,
// what follows them left out.
inline std::vector<std::string_view> split(std::string_view input, char separator,
                                           std::size_t most) {
    std::vector<std::string_view> parts;
    for (std::size_t at = 0;;) {
        auto end = input.find(separator, at);
        parts.push_back(input.substr(at, end == std::string_view::npos ? end : end - at));
        if (end == std::string_view::npos || parts.size() == most) break;
        at = end + 1;
    }
    return parts;
}

} // namespace pingan::fuzz
