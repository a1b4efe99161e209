// Helpers shared by `pingan rules` and `pingan incidents`: reading a file and
// the school registry, with failures turned into the tool's user text.
// Header-only: the tool's CMake list compiles main.cpp, render.cpp and cmd_*.cpp.
#pragma once

#include "common/registry.hpp"
#include "common/shipped.hpp"
#include "tools/pingan/commands.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace pingan::cli {

// Where the school registry (schools.csv and districts.csv) is looked for,
// in order: $PINGAN_REGISTRY_DIR, then beside the program: ../share/pingan/data
// (an installed tree) and ../../data (build/bin in a source tree).
inline std::vector<std::string> registry_dirs() {
    if (const char* d = std::getenv("PINGAN_REGISTRY_DIR"); d && *d) return {d};
    return shipped_candidates("data");
}

// The first of registry_dirs() that holds a schools.csv, or "" if none does.
inline std::string registry_dir() {
    for (const auto& d : registry_dirs())
        if (std::filesystem::exists(std::filesystem::path(d) / "schools.csv")) return d;
    return {};
}

// Where a missing registry was looked for, for error messages.
inline std::string registry_search_text() {
    std::string s;
    for (const auto& d : registry_dirs())
        s += (s.empty() ? "" : ", ") + d;
    return "give --registry FILE or set PINGAN_REGISTRY_DIR (looked in " + s + ")";
}

inline std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fatal("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The registry named by `path` (with districts.csv from the same folder when
// there is one), or the one found by registry_dir(). Rules need school types,
// so a registry that does not load is an error, not a warning.
inline std::shared_ptr<const registry> load_school_registry(const std::string& path) {
    std::string schools = path;
    if (schools.empty()) {
        auto dir = registry_dir();
        if (dir.empty()) fatal("no school registry found: " + registry_search_text());
        schools = dir + "/schools.csv";
    }
    std::string districts;
    {
        auto dpath = std::filesystem::path(schools).parent_path() / "districts.csv";
        std::ifstream d(dpath, std::ios::binary);
        std::ostringstream s;
        s << d.rdbuf();
        districts = s.str();
    }
    try {
        return std::make_shared<const registry>(
            registry::from_csv(read_text_file(schools), districts));
    } catch (const error& e) {
        fatal(schools + ": " + e.detail());
    }
}

} // namespace pingan::cli
