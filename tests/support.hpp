// Helpers shared by tests: sample events and the project's data files.
#pragma once

#include "common/codec.hpp"
#include "common/curve.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace pingan::test {

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Writes a key pair file as `pingan keygen` does: readable by its owner only.
inline void write_key(const std::string& path, const curve_keypair& k) {
    std::ofstream(path) << format_keypair(k);
    namespace fs = std::filesystem;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
}

inline std::string source_path(const std::string& rel) {
    return std::string(PINGAN_SOURCE_DIR) + "/" + rel;
}

inline const registry& yichang() {
    static const registry r = registry::from_csv(read_file(source_path("data/schools.csv")),
                                                 read_file(source_path("data/districts.csv")));
    return r;
}

inline timestamp at(const char* text) {
    return *parse_utc(text);
}

// A hazard report from 西陵区第1幼儿园, with a fresh id.
inline event sample_hazard(std::string school = "420502K001") {
    event e;
    e.id = new_event_id(at("2026-11-29T01:00:00Z"));
    e.school = std::move(school);
    e.source = "pingan-hazard/test";
    e.occurred_at = at("2026-11-29T01:00:00Z");
    e.status = status::actual;
    e.severity = severity::moderate;
    e.urgency = urgency::expected;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    hazard_reported h;
    h.hazard_id = "HZ-0001";
    h.area = hazard_area::building;
    h.grade = hazard_grade::general;
    h.description = "二楼走廊护栏松动";
    h.location = "教学楼二楼";
    h.found_by = "safety_officer";
    h.photos = {"photo://HZ-0001/1.jpg"};
    e.body = std::move(h);
    return e;
}

// A red psych alert about one student (minors' details: sealed in a store
// with keys, redacted for whoever is not cleared).
inline event sample_psych(std::string school = "420502K001",
                          std::string student_ref = "STU-2026-0007") {
    auto e = sample_hazard(std::move(school));
    psych_alert a;
    a.alert_id = "PA-7";
    a.student_ref = std::move(student_ref);
    a.level = risk_level::red;
    a.source = psych_source::teacher;
    a.indicator_codes = {"SH.2"};
    a.reported_by_role = "psych_teacher";
    e.body = a;
    e.scope = scope::private_;
    return e;
}

// A canteen temperature reading of about 300 bytes encoded.
inline event sample_reading(std::string school, std::uint64_t n) {
    event e;
    e.id = new_event_id(at("2026-11-29T01:00:00Z"));
    e.school = std::move(school);
    e.source = "pingan-canteen/cold-room-sensor-01";
    e.occurred_at = at("2026-11-29T01:00:00Z") + micros{static_cast<std::int64_t>(n)};
    e.status = status::actual;
    e.severity = severity::minor;
    e.scope = scope::restricted;
    food_temp_reading r;
    r.canteen_id = e.school + "-canteen-main-kitchen";
    r.sensor_id = "cold-room-01-probe-" + std::to_string(n % 8);
    r.zone = food_zone::cold_storage;
    r.celsius = 3.5 + static_cast<double>(n % 10) / 10.0;
    e.body = std::move(r);
    return e;
}

} // namespace pingan::test
