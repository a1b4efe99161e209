// CURVE key generation, key files and key arguments.
#include "common/curve.hpp"

#include "common/errc.hpp"

#include <sys/stat.h>
#include <zmq.h>

#include <cstdio>
#include <fstream>
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

namespace {

std::string read_key_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(errc::io_error, path + ": cannot read the key file");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string octal(unsigned mode) {
    char b[8];
    std::snprintf(b, sizeof b, "%04o", mode & 07777u);
    return b;
}

} // namespace

std::string loose_permissions(const std::string& path, unsigned forbidden) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw error(errc::io_error, path + ": cannot read");
    auto mode = static_cast<unsigned>(st.st_mode);
    unsigned bad = mode & forbidden;
    if (!bad) return {};
    std::string who;
    if (bad & 0070u) who = "group";
    if (bad & 0007u) who += who.empty() ? "others" : " and others";
    bool r = bad & 0444u, w = bad & 0222u;
    std::string what = r && w ? "read and change" : r ? "read" : w ? "change" : "execute";
    return "mode " + octal(mode) + ": " + who + " may " + what + " it";
}

curve_keypair read_secret_key_file(const std::string& path, bool allow_insecure) {
    auto text = read_key_file(path);
    if (!allow_insecure) {
        if (auto why = loose_permissions(path, 0077u); !why.empty())
            throw error(errc::bad_config, path + ": " + why +
                                              "; a secret key must be readable by its owner "
                                              "only (chmod 600 " +
                                              path + ")");
    }
    curve_keypair k;
    try {
        k = parse_keypair(text);
    } catch (const error& x) {
        throw error(errc::bad_config, path + ": " + x.detail());
    }
    if (k.secret_key.empty()) throw error(errc::bad_config, path + ": no secret: line");
    return k;
}

std::string read_server_key(const std::string& arg) {
    if (std::string_view(arg).starts_with(literal_key_prefix)) {
        auto key = arg.substr(literal_key_prefix.size());
        if (!valid_z85_key(key))
            throw error(errc::bad_config,
                        "--server-key z85:…: not a 40-character Z85 public key after z85:");
        return key;
    }
    try {
        return parse_keypair(read_key_file(arg)).public_key;
    } catch (const error& x) {
        if (x.code() == errc::io_error) throw;
        throw error(errc::bad_config, arg + ": " + x.detail());
    }
}

} // namespace pingan
