// What the fuzz targets share: the school registry of the repository, loaded once.
#pragma once

#include "common/registry.hpp"

#include <fstream>
#include <sstream>
#include <string>

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

} // namespace pingan::fuzz
