// REPLAY's packed format (docs/protocol.md, `"format": "packed"`): many events
// in one ZeroMQ frame, each as its offset (u64 little-endian), its length
// (u32 little-endian) and its bytes, back to back. ZeroMQ's cost is per frame
// far more than per byte, and the binary format spends two frames on every
// event; the packed one spends one on up to `packed_frame_events` events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pingan::wire {

inline constexpr std::size_t packed_entry_head = 12;           // offset and length
inline constexpr std::size_t packed_frame_events = 1024;       // events in one frame at most
inline constexpr std::size_t packed_frame_bytes = 256u * 1024; // a frame is sent past this size

// Appends one event to a packed frame.
inline void append_packed(std::string& frame, std::uint64_t offset, std::string_view event) {
    char head[packed_entry_head];
    for (int i = 0; i < 8; ++i)
        head[i] = static_cast<char>(offset >> (8 * i));
    auto n = static_cast<std::uint32_t>(event.size());
    for (int i = 0; i < 4; ++i)
        head[8 + i] = static_cast<char>(n >> (8 * i));
    frame.append(head, sizeof head);
    frame.append(event);
}

// Reads a packed frame's events in order:
//
//     packed_reader r(frame);
//     while (r.next(off, bytes)) ...;
//     if (r.malformed()) ...
class packed_reader {
  public:
    explicit packed_reader(std::string_view frame) noexcept : rest_(frame) {}

    // Returns: false at the end of the frame, or at an entry that does not
    // fit in what is left of it (then malformed()).
    bool next(std::uint64_t& offset, std::string_view& event) noexcept {
        if (rest_.empty()) return false;
        if (rest_.size() < packed_entry_head) return fail();
        const auto* p = reinterpret_cast<const unsigned char*>(rest_.data());
        std::uint64_t off = 0;
        for (int i = 7; i >= 0; --i)
            off = off << 8 | p[i];
        std::uint32_t n = 0;
        for (int i = 11; i >= 8; --i)
            n = n << 8 | p[i];
        if (rest_.size() - packed_entry_head < n) return fail();
        offset = off;
        event = rest_.substr(packed_entry_head, n);
        rest_.remove_prefix(packed_entry_head + n);
        return true;
    }

    bool malformed() const noexcept { return malformed_; }

  private:
    bool fail() noexcept {
        malformed_ = true;
        rest_ = {};
        return false;
    }
    std::string_view rest_;
    bool malformed_ = false;
};

} // namespace pingan::wire
