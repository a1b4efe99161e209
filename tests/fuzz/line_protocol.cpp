// Fuzzes the canteen's sensor line protocol, line by line as the TCP and UDP
// intakes split it.
#include "services/canteen/line_protocol.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pingan;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (svc::canteen::skip_line(line)) continue;
        svc::canteen::reading r;
        (void)svc::canteen::parse_line(line, r);
    }
    return 0;
}
