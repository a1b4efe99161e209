// Fuzzes the broker's decoding of ingest frames: result frames (decode_result)
// and published events, binary and JSON, through admission (decode, validate,
// registry, limits). The first byte chooses the decoder.
#include "common/wire.hpp"
#include "broker/admission/admit.hpp"
#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pingan;
    if (size < 1) return 0;
    std::string_view frame(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        if (auto r = wire::decode_result(frame)) {
            auto again = wire::decode_result(wire::encode_result(*r));
            if (!again) __builtin_trap(); // what we encode must decode
            (void)wire::result_json(*r, 0);
        }
        break;
    default: {
        event e;
        auto now = *parse_utc("2026-11-30T00:00:00Z");
        (void)admit(frame, data[0] % 3 == 2, fuzz::schools(), "fuzz", now, admit_limits{}, e);
    }
    }
    return 0;
}
