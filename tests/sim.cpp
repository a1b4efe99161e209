// Black-box tests of pingan-sim: determinism and the scenario's content, and
// a direct (load) run against a real broker.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/codec.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>

using namespace pingan;
using namespace pingan::test;

namespace {

std::vector<std::string> dry_run(const std::string& seed, const std::string& days,
                                 const std::string& schools) {
    process p({std::string(PINGAN_BIN_DIR) + "/pingan-sim", "--dry-run", "--seed", seed, "--days",
               days, "--schools", schools, "--registry",
               std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv"});
    auto lines = p.lines(std::chrono::seconds(60));
    REQUIRE(p.wait() == 0);
    return lines;
}

} // namespace

TEST_CASE("the same seed plays the same actions and another seed does not", "[sim]") {
    auto a = dry_run("42", "1", "80");
    auto b = dry_run("42", "1", "80");
    auto c = dry_run("43", "1", "80");
    REQUIRE(a.size() > 1000);
    CHECK(a == b);
    CHECK(a != c);
}

TEST_CASE("a simulated month has readings, hazards, drills with some overdue, an illness "
          "cluster, psych alerts and bus trips",
          "[sim]") {
    auto lines = dry_run("1", "28", "60");
    std::map<std::string, std::size_t> by;
    std::set<std::string> drilled, ill_suppliers, ill_schools;
    std::size_t unparsable = 0;
    for (const auto& l : lines) {
        json j;
        if (parse_json(l, j)) {
            ++unparsable;
            continue;
        }
        auto key = j["to"].get<std::string>() + j.value("path", "");
        ++by[key];
        if (key == "drill/drill/record") drilled.insert(j["body"]["school"].get<std::string>());
        if (key == "canteen/canteen/illness") {
            ill_suppliers.insert(j["body"]["supplier"].get<std::string>());
            ill_schools.insert(j["body"]["school"].get<std::string>());
        }
    }
    CHECK(unparsable == 0);
    CHECK(by["canteen-line"] > 10000);
    CHECK(by["hazard/hazard/report"] > 50);
    CHECK(by["hazard/hazard/rectify"] > 10);
    CHECK(by["hazard/hazard/verify"] > 10);
    CHECK(by["wellbeing/psych/alert"] > 10);
    CHECK(by["broker"] > 100); // school-bus trips
    CHECK(by["canteen/canteen/sample"] > 100);
    // Most schools drill in the month; the overdue ones do not.
    CHECK(drilled.size() > 40);
    CHECK(drilled.size() < 60);
    // One supplier, several schools, the same day.
    CHECK(ill_suppliers.size() == 1);
    CHECK(ill_schools.size() >= 2);
}

TEST_CASE("a direct run publishes the scenario's events to the broker", "[sim]") {
    temp_dir d;
    broker_process b(d / "store", {"--clock", "scaled:1:2026-09-01T00:00:00Z"});
    process sim({std::string(PINGAN_BIN_DIR) + "/pingan-sim", "--direct", "--speed", "0", "--days",
                 "0.25", "--schools", "30", "--start", "2026-09-01T00:00:00+08:00", "--broker",
                 b.ingest, "--data", d / "sim", "--registry",
                 std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv"});
    auto out = sim.lines(std::chrono::seconds(60));
    REQUIRE(sim.wait(std::chrono::seconds(60)) == 0);
    REQUIRE_FALSE(out.empty());
    json summary;
    REQUIRE_FALSE(parse_json(out.back(), summary));
    std::uint64_t accepted = 0;
    for (auto& [k, v] : summary.items()) {
        accepted += v["accepted"].get<std::uint64_t>();
        CHECK(v["refused"] == 0);
    }
    CHECK(accepted > 500);
    zmq::context_t ctx(1);
    query_client q(ctx, b.query);
    auto stats = q.stats();
    CHECK(stats["head"].get<std::uint64_t>() >= accepted);
}
