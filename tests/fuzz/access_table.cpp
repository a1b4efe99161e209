// Fuzzes the broker's access table (clients' keys, scopes and rights, YAML).
#include "broker/admission/access.hpp"
#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto t = pingan::access_table::from_yaml(
            std::string_view(reinterpret_cast<const char*>(data), size), pingan::fuzz::schools());
        (void)t.size();
    } catch (const pingan::error&) {
    }
    return 0;
}
