// Fuzzes the photo checker and metadata stripper (services/common/image.hpp)
// on raw bytes: the JPEG segment walker and the PNG chunk walker. Whatever it
// accepts must be accepted again unchanged (cleaning is idempotent), start
// with its format's signature and be no longer than the input. Seeds: small
// real JPEGs and PNGs with Exif GPS blocks, comments and text chunks.
#include "services/common/image.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pingan::svc;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    for (bool keep : {false, true}) {
        image_limits lim;
        lim.keep_metadata = keep;
        auto c = clean_image(bytes, lim);
        if (!c.ok()) {
            if (c.error.empty()) __builtin_trap(); // a refusal always says why
            continue;
        }
        if (c.bytes.size() > bytes.size() || c.width == 0 || c.height == 0) __builtin_trap();
        auto again = clean_image(c.bytes, lim);
        if (!again.ok() || again.bytes != c.bytes || !again.removed.empty()) __builtin_trap();
    }
    return 0;
}
