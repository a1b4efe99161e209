// Fuzzes the escalation rule file parser (YAML → rule set or errors).
#include "broker/engine/rules.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto r = pingan::rules::parse(std::string_view(reinterpret_cast<const char*>(data), size));
    for (const auto& e : r.errors)
        (void)e.text();
    return 0;
}
