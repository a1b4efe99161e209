// CURVE key generation and key files.
#include "common/curve.hpp"

#include "common/errc.hpp"

#include <zmq.h>

#include <sstream>

namespace pingan {

curve_keypair curve_generate() {
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0)
        throw error(errc::internal, "zmq_curve_keypair: this libzmq has no CURVE support");
    return {pub, sec};
}

bool valid_z85_key(std::string_view key) {
    if (key.size() != 40) return false;
    std::string s(key);
    std::uint8_t out[32];
    return zmq_z85_decode(out, s.c_str()) != nullptr;
}

std::string z85_of(std::string_view binary32) {
    char out[41];
    if (binary32.size() != 32 ||
        !zmq_z85_encode(out, reinterpret_cast<const std::uint8_t*>(binary32.data()), 32))
        return {};
    return out;
}

curve_keypair parse_keypair(std::string_view text) {
    curve_keypair k;
    std::istringstream in{std::string(text)};
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        auto colon = line.find(':');
        if (colon == std::string::npos)
            throw error(errc::bad_config,
                        "line " + std::to_string(n) + ": expected public: or secret:");
        auto name = line.substr(0, colon);
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.erase(value.begin());
        while (!value.empty() && value.back() == ' ')
            value.pop_back();
        if (!valid_z85_key(value))
            throw error(errc::bad_config, "line " + std::to_string(n) + ": " + name +
                                              " is not a 40-character Z85 key");
        if (name == "public")
            k.public_key = value;
        else if (name == "secret")
            k.secret_key = value;
        else
            throw error(errc::bad_config,
                        "line " + std::to_string(n) + ": expected public: or secret:, not " + name);
    }
    if (k.public_key.empty()) throw error(errc::bad_config, "no public: line");
    return k;
}

std::string format_keypair(const curve_keypair& k) {
    std::string s = "public: " + k.public_key + "\n";
    if (!k.secret_key.empty()) s += "secret: " + k.secret_key + "\n";
    return s;
}

} // namespace pingan
