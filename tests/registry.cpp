// Tests for common/registry.hpp.
#include "common/registry.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::test;

TEST_CASE("the shipped yichang registry loads with its districts", "[registry]") {
    const auto& r = yichang();
    CHECK(r.size() > 1200);
    CHECK(r.districts().size() == 13);
    auto* s = r.find("420502K001");
    REQUIRE(s);
    CHECK(s->name == "西陵区第1幼儿园");
    CHECK(s->district_code == "420502");
    CHECK(s->type == school_type::kindergarten);
    CHECK_FALSE(r.find("999999X999"));
}

TEST_CASE("a bad registry line is reported with its number", "[registry]") {
    std::string csv = "school_id,name,district_code,type,students,boarding,school_bus,canteen,"
                      "max_floors,lat,lon\n"
                      "420502K001,a,420502,kindergarten,10,0,0,1,2,30.1,111.2\n"
                      "420502K002,b,420502,castle,10,0,0,1,2,30.1,111.2\n";
    try {
        registry::from_csv(csv);
        FAIL("no error");
    } catch (const error& e) {
        CHECK(e.code() == errc::bad_config);
        CHECK(e.detail() == "schools.csv line 3: unknown type \"castle\"");
    }
}

TEST_CASE("evacuation targets follow school type and building height", "[registry]") {
    school s;
    s.type = school_type::junior;
    s.max_floors = 4;
    CHECK(evacuation_target_seconds(s) == 120);
    s.type = school_type::primary;
    CHECK(evacuation_target_seconds(s) == 180);
    s.type = school_type::senior;
    s.max_floors = 6;
    CHECK(evacuation_target_seconds(s) == 180);
}
