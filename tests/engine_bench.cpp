// A short run of the engine benchmark, so that pingan-bench's engine figures
// keep building and stay meaningful (no generated rule may match).
#include "tools/bench/engine_bench.hpp"
#include "engine_support.hpp"

#include <catch2/catch.hpp>

using namespace pingan;
using namespace pingan::test;

TEST_CASE("the engine benchmark reports figures for 10, 100 and 1000 rules", "[engine_bench]") {
    auto j = bench_engine(yichang(), default_pack_text(), 2000);
    REQUIRE(j["rules"].size() == 3);
    CHECK(j["rules"][2]["rules"] == 1000);
    for (const auto& row : j["rules"]) {
        CHECK(row["other_types_ns_per_event"].get<double>() > 0);
        CHECK(row["same_type_ns_per_event"].get<double>() > 0);
    }
    CHECK(j["default_pack"]["rules"] == default_pack()->rules.size());
    CHECK(j["flat_ratio_1000_vs_10"].get<double>() > 0);
}
