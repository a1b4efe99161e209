// UUIDv7 text form and construction.
#include "event_id.hpp"

#include <sodium.h>

namespace pingan {
namespace {

int hexval(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

bool event_id::is_nil() const noexcept {
    for (auto b : bytes)
        if (b) return false;
    return true;
}

std::string event_id::str() const {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += hex[bytes[i] >> 4];
        s += hex[bytes[i] & 15];
    }
    return s;
}

std::optional<event_id> event_id::parse(std::string_view t) {
    if (t.size() != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-')
        return std::nullopt;
    event_id id;
    std::size_t j = 0;
    for (std::size_t i = 0; i < 36;) {
        if (t[i] == '-') {
            ++i;
            continue;
        }
        int hi = hexval(t[i]), lo = hexval(t[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        id.bytes[j++] = static_cast<std::uint8_t>(hi << 4 | lo);
        i += 2;
    }
    return id;
}

std::optional<event_id> event_id::from_bytes(std::span<const std::uint8_t> b) {
    if (b.size() != 16) return std::nullopt;
    event_id id;
    std::copy(b.begin(), b.end(), id.bytes.begin());
    return id;
}

event_id event_id::v7(timestamp t, std::span<const std::uint8_t, 10> r) noexcept {
    event_id id;
    auto ms = static_cast<std::uint64_t>(to_us(t) / 1000);
    for (int i = 0; i < 6; ++i)
        id.bytes[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
    id.bytes[6] = static_cast<std::uint8_t>(0x70 | (r[0] & 0x0f));
    id.bytes[7] = r[1];
    id.bytes[8] = static_cast<std::uint8_t>(0x80 | (r[2] & 0x3f));
    for (int i = 9; i < 16; ++i)
        id.bytes[i] = r[i - 6];
    return id;
}

event_id new_event_id(timestamp t) {
    std::array<std::uint8_t, 10> r;
    randombytes_buf(r.data(), r.size());
    return event_id::v7(t, r);
}

} // namespace pingan

namespace pingan {

event_id stable_event_id(std::string_view text) {
    event_id id;
    crypto_generichash(id.bytes.data(), id.bytes.size(),
                       reinterpret_cast<const unsigned char*>(text.data()), text.size(), nullptr,
                       0);
    id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0f) | 0x80);
    id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3f) | 0x80);
    return id;
}

} // namespace pingan
