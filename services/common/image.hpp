// Checking a photo's bytes and removing what could identify where and by what
// it was taken, before the school service stores it.
//
// A small walker over the container formats, with no image library: a JPEG is
// a list of marker segments, then entropy-coded scans, up to EOI; a PNG is a
// signature and a list of CRC-checked chunks, from IHDR to IEND. The walker
// checks that structure (a frame header before the first scan, sane
// dimensions, lengths that fit, the PNG CRCs) and copies the parts needed to
// show the picture. Unless `keep_metadata`, it leaves out:
//   JPEG: APP1 (Exif with its GPS tags, XMP), APP3..APP13 and APP15 (IPTC,
//         maker data), COM comments; it keeps APP0 (JFIF), APP2 (the ICC
//         colour profile) and APP14 (Adobe, which says how to decode colour);
//   PNG:  tEXt, zTXt, iTXt, eXIf, tIME and every ancillary chunk not needed
//         to render (it keeps PLTE, tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, bKGD,
//         pHYs, cICP).
// Bytes after EOI or IEND (a second file hidden behind the picture) are
// always left out. The pixels themselves are not decoded: the browser that
// shows the photo does that.
//
// No I/O; a pure function from bytes to bytes, fuzzed (tests/fuzz/image.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::svc {

enum class image_type { jpeg, png };
// "image/jpeg", "image/png"
std::string_view media_type(image_type t) noexcept;

struct image_limits {
    bool keep_metadata = false;
    std::uint64_t max_pixels = 50'000'000; // width × height
};

// What the walker made of the bytes: the cleaned image, or why it is not one.
struct cleaned_image {
    std::optional<image_type> type; // empty: refused, see `error`
    std::string error;              // "not a JPEG or PNG image (starts with 47 49 46 38)"
    std::string bytes;              // the image to store
    std::uint32_t width = 0, height = 0;
    std::vector<std::string> removed; // "APP1 Exif", "COM", "tEXt", "trailing bytes"
    bool ok() const noexcept { return type.has_value(); }
};

// Checks the image and removes its metadata (see above).
cleaned_image clean_image(std::string_view bytes, const image_limits& limits = {});

} // namespace pingan::svc
