// Fuzzes the cereal binary event decoder: any bytes decode or are refused, and
// a decoded event encodes to bytes that decode to the same encoding.
#include "common/codec.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pingan;
    event e;
    if (decode(std::string_view(reinterpret_cast<const char*>(data), size), e)) return 0;
    auto bytes = encode(e);
    event again;
    if (decode(bytes, again)) __builtin_trap();
    if (encode(again) != bytes) __builtin_trap();
    (void)to_json_line(e);
    return 0;
}
