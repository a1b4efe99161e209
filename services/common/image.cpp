// The JPEG segment walker and the PNG chunk walker.
#include "image.hpp"

#include <array>
#include <cstdio>

namespace pingan::svc {
namespace {

using u8 = unsigned char;

u8 at(std::string_view b, std::size_t i) {
    return static_cast<u8>(b[i]);
}
std::uint32_t be16(std::string_view b, std::size_t i) {
    return std::uint32_t(at(b, i)) << 8 | at(b, i + 1);
}
std::uint32_t be32(std::string_view b, std::size_t i) {
    return std::uint32_t(at(b, i)) << 24 | std::uint32_t(at(b, i + 1)) << 16 |
           std::uint32_t(at(b, i + 2)) << 8 | at(b, i + 3);
}

std::string hex_byte(unsigned v) {
    char s[4];
    std::snprintf(s, sizeof s, "%02X", v & 0xff);
    return s;
}

cleaned_image refuse(std::string why) {
    cleaned_image r;
    r.error = std::move(why);
    return r;
}

std::string dimensions(std::uint32_t w, std::uint32_t h) {
    return std::to_string(w) + "×" + std::to_string(h);
}

// ---- JPEG ------------------------------------------------------------------------

bool is_sof(u8 m) {
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

std::string marker_name(u8 m, std::string_view data) {
    if (m == 0xFE) return "COM";
    if (m >= 0xE0 && m <= 0xEF) {
        std::string n = "APP" + std::to_string(m - 0xE0);
        // The identifier at the segment's start ("Exif", "http://ns.adobe.com/xap/1.0/").
        std::string id;
        for (std::size_t i = 0; i < data.size() && i < 32 && data[i] != '\0'; ++i) {
            char c = data[i];
            if (c < 0x20 || c > 0x7e) break;
            id += c;
        }
        return id.empty() ? n : n + " " + id;
    }
    return "marker FF" + hex_byte(m);
}

// APP0 JFIF, APP2 ICC profile and APP14 Adobe describe how to show the
// picture; the other application segments and comments are metadata.
bool jpeg_metadata(u8 m) {
    if (m == 0xFE) return true;
    return m >= 0xE0 && m <= 0xEF && m != 0xE0 && m != 0xE2 && m != 0xEE;
}

cleaned_image clean_jpeg(std::string_view b, const image_limits& lim) {
    cleaned_image r;
    r.bytes.reserve(b.size());
    r.bytes.append(b.substr(0, 2)); // SOI
    std::size_t i = 2;
    bool frame = false, scanned = false;
    for (;;) {
        if (i >= b.size()) return refuse("JPEG: the image ends before its end marker (truncated)");
        if (at(b, i) != 0xFF)
            return refuse("JPEG: byte " + std::to_string(i) +
                          " should start a marker (FF) but is " + hex_byte(at(b, i)));
        // Fill bytes: any number of FF before the marker code.
        while (i < b.size() && at(b, i) == 0xFF)
            ++i;
        if (i >= b.size()) return refuse("JPEG: the image ends before its end marker (truncated)");
        u8 m = at(b, i++);
        if (m == 0xD9) { // EOI
            if (!scanned) return refuse("JPEG: the image has no picture data (no scan before EOI)");
            r.bytes += "\xFF\xD9";
            if (i < b.size()) r.removed.push_back("trailing bytes");
            break;
        }
        if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7))
            return refuse("JPEG: unexpected marker FF" + hex_byte(m) + " at byte " +
                          std::to_string(i - 2));
        if (i + 2 > b.size()) return refuse("JPEG: a segment header is cut off (truncated)");
        std::size_t len = be16(b, i);
        if (len < 2)
            return refuse("JPEG: a segment length of " + std::to_string(len) + " at byte " +
                          std::to_string(i) + " is too short");
        if (i + len > b.size())
            return refuse("JPEG: a " + marker_name(m, {}) + " segment of " + std::to_string(len) +
                          " bytes runs past the end of the file (truncated)");
        auto data = b.substr(i + 2, len - 2);
        std::size_t next = i + len;
        if (is_sof(m)) {
            if (frame) return refuse("JPEG: a second frame header (FF" + hex_byte(m) + ")");
            if (data.size() < 6) return refuse("JPEG: the frame header is too short");
            std::uint32_t h = be16(data, 1), w = be16(data, 3), nc = at(data, 5);
            if (nc < 1 || nc > 4)
                return refuse("JPEG: the frame has " + std::to_string(nc) +
                              " colour components; 1 to 4 are allowed");
            if (data.size() != 6 + 3 * nc)
                return refuse("JPEG: the frame header's length does not match its components");
            if (w == 0 || h == 0)
                return refuse("JPEG: the picture is " + dimensions(w, h) + " pixels");
            if (std::uint64_t(w) * h > lim.max_pixels)
                return refuse("JPEG: the picture is " + dimensions(w, h) + " pixels; at most " +
                              std::to_string(lim.max_pixels) + " pixels are accepted");
            frame = true;
            r.width = w;
            r.height = h;
        }
        if (m == 0xDA) { // SOS, then entropy-coded data up to the next marker
            if (!frame) return refuse("JPEG: picture data (SOS) before the frame header");
            if (data.empty() || data.size() != 4 + 2 * std::size_t(at(data, 0)))
                return refuse("JPEG: the scan header's length does not match its components");
            std::size_t j = next;
            for (;;) {
                if (j + 1 >= b.size())
                    return refuse("JPEG: the picture data ends before its end marker (truncated)");
                if (at(b, j) == 0xFF) {
                    u8 n = at(b, j + 1);
                    if (n != 0x00 && !(n >= 0xD0 && n <= 0xD7)) break; // a marker: the scan ends
                    j += 2;
                } else {
                    ++j;
                }
            }
            r.bytes.append(b.substr(i - 2, j - (i - 2)));
            scanned = true;
            i = j;
            continue;
        }
        if (!lim.keep_metadata && jpeg_metadata(m)) {
            r.removed.push_back(marker_name(m, data));
        } else {
            r.bytes.append(b.substr(i - 2, len + 2));
        }
        i = next;
    }
    r.type = image_type::jpeg;
    return r;
}

// ---- PNG -------------------------------------------------------------------------

constexpr std::string_view png_signature("\x89PNG\r\n\x1a\n", 8);

std::uint32_t crc32(std::string_view a, std::string_view b) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t n = 0; n < 256; ++n) {
            std::uint32_t c = n;
            for (int k = 0; k < 8; ++k)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }();
    std::uint32_t c = 0xFFFFFFFFu;
    for (auto part : {a, b})
        for (char ch : part)
            c = table[(c ^ static_cast<u8>(ch)) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

bool png_keeps(std::string_view type) {
    static constexpr std::string_view render[] = {"PLTE", "tRNS", "gAMA", "cHRM", "sRGB",
                                                  "iCCP", "sBIT", "bKGD", "pHYs", "cICP"};
    for (auto t : render)
        if (t == type) return true;
    return false;
}

bool valid_png_depth(unsigned color, unsigned depth) {
    switch (color) {
    case 0:
        return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
    case 3:
        return depth == 1 || depth == 2 || depth == 4 || depth == 8;
    case 2:
    case 4:
    case 6:
        return depth == 8 || depth == 16;
    default:
        return false;
    }
}

cleaned_image clean_png(std::string_view b, const image_limits& lim) {
    cleaned_image r;
    r.bytes.reserve(b.size());
    r.bytes.append(png_signature);
    std::size_t i = png_signature.size();
    bool header = false, data = false;
    for (;;) {
        if (i + 12 > b.size())
            return refuse("PNG: the image ends before its IEND chunk (truncated)");
        std::uint32_t len = be32(b, i);
        auto type = b.substr(i + 4, 4);
        for (char c : type)
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
                return refuse("PNG: a chunk at byte " + std::to_string(i) +
                              " has a type that is not four letters");
        if (len > 0x7fffffffu || len > b.size() - i - 12)
            return refuse("PNG: the " + std::string(type) + " chunk of " + std::to_string(len) +
                          " bytes runs past the end of the file (truncated)");
        auto body = b.substr(i + 8, len);
        if (crc32(type, body) != be32(b, i + 8 + len))
            return refuse("PNG: the " + std::string(type) +
                          " chunk's checksum (CRC) is wrong: the file is damaged");
        auto whole = b.substr(i, std::size_t(len) + 12);
        i += std::size_t(len) + 12;
        if (!header) {
            if (type != "IHDR" || len != 13) return refuse("PNG: the first chunk is not IHDR");
            std::uint32_t w = be32(body, 0), h = be32(body, 4);
            unsigned depth = at(body, 8), color = at(body, 9);
            if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
                return refuse("PNG: the picture is " + dimensions(w, h) + " pixels");
            if (std::uint64_t(w) * h > lim.max_pixels)
                return refuse("PNG: the picture is " + dimensions(w, h) + " pixels; at most " +
                              std::to_string(lim.max_pixels) + " pixels are accepted");
            if (!valid_png_depth(color, depth))
                return refuse("PNG: colour type " + std::to_string(color) + " with bit depth " +
                              std::to_string(depth) + " is not a valid combination");
            if (at(body, 10) != 0 || at(body, 11) != 0 || at(body, 12) > 1)
                return refuse("PNG: unknown compression, filter or interlace method");
            header = true;
            r.width = w;
            r.height = h;
            r.bytes.append(whole);
            continue;
        }
        if (type == "IHDR") return refuse("PNG: a second IHDR chunk");
        if (type == "IEND") {
            if (!data) return refuse("PNG: the image has no picture data (no IDAT chunk)");
            r.bytes.append(whole);
            if (i < b.size()) r.removed.push_back("trailing bytes");
            break;
        }
        if (type == "IDAT") {
            data = true;
            r.bytes.append(whole);
            continue;
        }
        bool critical = type[0] >= 'A' && type[0] <= 'Z';
        if (critical && type != "PLTE")
            return refuse("PNG: unknown critical chunk " + std::string(type));
        if (lim.keep_metadata || png_keeps(type))
            r.bytes.append(whole);
        else
            r.removed.push_back(std::string(type));
    }
    r.type = image_type::png;
    return r;
}

} // namespace

std::string_view media_type(image_type t) noexcept {
    return t == image_type::png ? "image/png" : "image/jpeg";
}

cleaned_image clean_image(std::string_view bytes, const image_limits& limits) {
    if (bytes.size() >= 3 && at(bytes, 0) == 0xFF && at(bytes, 1) == 0xD8 && at(bytes, 2) == 0xFF)
        return clean_jpeg(bytes, limits);
    if (bytes.substr(0, png_signature.size()) == png_signature) return clean_png(bytes, limits);
    if (bytes.empty()) return refuse("the photo is empty");
    std::string start;
    for (std::size_t i = 0; i < bytes.size() && i < 4; ++i)
        start += (i ? " " : "") + hex_byte(at(bytes, i));
    return refuse("not a JPEG or PNG image (it starts with the bytes " + start + ")");
}

} // namespace pingan::svc
