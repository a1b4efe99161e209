// Every program answers --version with its name and the project's version, and exits 0.
#include "common/version.hpp"
#include "tests/process.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace pingan;
using namespace pingan::test;

namespace {
std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}
} // namespace

TEST_CASE("every program prints its name and the project version for --version", "[version]") {
    for (std::string name :
         {"pingan", "pingan-broker", "pingan-hazard", "pingan-drill", "pingan-canteen",
          "pingan-wellbeing", "pingan-sim", "pingan-bench", "pingan-console", "pingan-notify"}) {
        INFO(name);
        process p({bin(name), "--version"});
        auto l = p.line();
        REQUIRE(l);
        CHECK(*l == name + " " + std::string(pingan::version));
        CHECK(p.wait() == 0);
    }
}
