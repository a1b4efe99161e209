// Fuzzes the configuration files: the broker's YAML configuration, the
// intake's credentials file and the wellbeing service's pseudonym key file.
// The first byte chooses the parser.
#include "broker/server/config.hpp"
#include "services/common/credentials.hpp"
#include "services/wellbeing/pseudonym.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace pingan;
    if (size < 1) return 0;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 3) {
        case 0:
            (void)parse_broker_config(text, {}, "/etc/pingan");
            break;
        case 1: {
            auto s = svc::credential_store::parse(text);
            auto again = svc::credential_store::parse(s.dump());
            if (again.all().size() != s.all().size()) __builtin_trap();
            break;
        }
        default:
            (void)svc::wellbeing::school_keys::parse(text);
        }
    } catch (const error&) {
    }
    return 0;
}
