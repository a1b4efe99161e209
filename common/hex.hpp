// Lower-case hex of bytes, by libsodium's constant-time encoder: the one
// encoder for tokens, hashes and keys shown as text.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <string>

namespace pingan {

inline std::string to_hex(const void* bytes, std::size_t n) {
    std::string s(2 * n + 1, '\0');
    sodium_bin2hex(s.data(), s.size(), static_cast<const unsigned char*>(bytes), n);
    s.pop_back(); // the terminating NUL
    return s;
}

// Returns: `n` random bytes from the operating system, in hex.
inline std::string random_hex(std::size_t n) {
    std::string raw(n, '\0');
    randombytes_buf(raw.data(), raw.size());
    auto s = to_hex(raw.data(), raw.size());
    sodium_memzero(raw.data(), raw.size());
    return s;
}

} // namespace pingan
