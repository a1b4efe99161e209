// Keyed BLAKE2b pseudonyms with libsodium.
#include "pseudonym.hpp"

#include <sodium.h>

namespace pingan::svc::wellbeing {
namespace {

void init_sodium() {
    static const bool ok = sodium_init() >= 0;
    if (!ok) throw error(errc::internal, "libsodium could not be initialised");
}

} // namespace

school_keys school_keys::parse(std::string_view text) {
    school_keys k;
    std::size_t line_no = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.remove_suffix(1);
        while (!line.empty() && line.front() == ' ')
            line.remove_prefix(1);
        if (line.empty() || line.front() == '#') continue;
        auto sp = line.find(' ');
        auto where = "key file line " + std::to_string(line_no);
        if (sp == std::string_view::npos)
            throw error(errc::bad_config, where + ": expected \"SCHOOL HEXKEY\"");
        auto school = line.substr(0, sp);
        auto hex = line.substr(sp + 1);
        while (!hex.empty() && hex.front() == ' ')
            hex.remove_prefix(1);
        secret_key key{};
        std::size_t len = 0;
        if (hex.size() != 64 ||
            sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &len,
                           nullptr) != 0 ||
            len != 32)
            throw error(errc::bad_config, where + ": the key must be 64 hex digits");
        k.keys_[std::string(school)] = key;
    }
    return k;
}

std::string school_keys::generate(const registry& schools) {
    init_sodium();
    std::string out = "# pingan-wellbeing per-school pseudonym keys: keep secret (mode 0600)\n";
    for (const auto& s : schools.schools()) {
        secret_key key;
        randombytes_buf(key.data(), key.size());
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, key.data(), key.size());
        out += s.id + " " + hex + "\n";
        sodium_memzero(key.data(), key.size());
    }
    return out;
}

const secret_key* school_keys::find(std::string_view school) const {
    auto it = keys_.find(school);
    return it == keys_.end() ? nullptr : &it->second;
}

std::string student_ref(const secret_key& key, std::string_view school,
                        std::string_view student_id) {
    init_sodium();
    std::string input;
    input.reserve(school.size() + 1 + student_id.size());
    input += school;
    input += '\x1f';
    input += student_id;
    std::array<unsigned char, 16> out{};
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(input.data()),
                       input.size(), key.data(), key.size());
    sodium_memzero(input.data(), input.size());
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, out.data(), out.size());
    return std::string("S-") + hex;
}

} // namespace pingan::svc::wellbeing
