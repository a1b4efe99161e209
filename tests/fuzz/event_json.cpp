// Fuzzes the JSON event mapping: text → JSON → event → validation, and the
// round trip of what is accepted.
#include "common/codec.hpp"
#include "common/validate.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pingan;
    json j;
    if (parse_json(std::string_view(reinterpret_cast<const char*>(data), size), j)) return 0;
    event e;
    if (from_json(j, e)) return 0;
    if (validate(e)) return 0;
    auto line = to_json_line(e);
    json j2;
    event again;
    if (parse_json(line, j2) || from_json(j2, again)) __builtin_trap();
    if (encode(again) != encode(e)) __builtin_trap();
    return 0;
}
