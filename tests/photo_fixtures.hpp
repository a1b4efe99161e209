// Real photos for the tests: JPEGs encoded by libjpeg and PNGs by libpng,
// carrying what a phone's camera writes into them: an Exif block (APP1, or a
// PNG eXIf chunk) with the camera's make and a GPS position, a comment and
// PNG text. Decoding helpers check that a cleaned photo is still a picture.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// After the standard headers: jpeglib.h uses size_t and FILE without declaring them.
#include <jpeglib.h>
#include <png.h>

namespace pingan::test {

// Pixels that compress poorly (a busy pattern), so that sizes are realistic.
inline std::vector<unsigned char> photo_pixels(int w, int h, unsigned seed) {
    std::vector<unsigned char> px(static_cast<std::size_t>(w) * h * 3);
    std::uint32_t x = seed * 2654435761u + 1;
    for (std::size_t i = 0; i < px.size(); ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        px[i] = static_cast<unsigned char>((i / 3 % static_cast<std::size_t>(w)) * 4 + (x & 63));
    }
    return px;
}

// Returns: a baseline JPEG of w×h pixels (JFIF, no Exif).
inline std::string make_jpeg(int w, int h, unsigned seed = 1, int quality = 85) {
    jpeg_compress_struct c{};
    jpeg_error_mgr err{};
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char* out = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &out, &size);
    c.image_width = static_cast<JDIMENSION>(w);
    c.image_height = static_cast<JDIMENSION>(h);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    auto px = photo_pixels(w, h, seed);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = px.data() + static_cast<std::size_t>(c.next_scanline) * w * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    std::string s(reinterpret_cast<char*>(out), size);
    std::free(out);
    return s;
}

// The camera's make, as a test looks for it in stored bytes.
inline const std::string camera_make = "PinganCam-GPS";

// Returns: a little-endian TIFF block as Exif carries it: IFD0 with Make and
// a GPS IFD with latitude 30°41'52.00" N and longitude 111°17'12.34" E.
inline std::string exif_tiff_with_gps() {
    std::string t;
    auto u16 = [&](unsigned v) {
        t += static_cast<char>(v & 0xff);
        t += static_cast<char>(v >> 8 & 0xff);
    };
    auto u32 = [&](std::uint32_t v) {
        for (int i = 0; i < 4; ++i)
            t += static_cast<char>(v >> (8 * i) & 0xff);
    };
    auto entry = [&](unsigned tag, unsigned type, std::uint32_t count, std::uint32_t value) {
        u16(tag);
        u16(type);
        u32(count);
        u32(value);
    };
    // Layout: header 8, IFD0 at 8 (2 entries: 2+24+4 = 30) → 38, make at 38
    // (14 bytes) → 52, GPS IFD at 52 (4 entries: 2+48+4 = 54) → 106,
    // latitude rationals at 106 (24), longitude at 130 (24) → 154.
    t += "II";
    u16(42);
    u32(8);
    u16(2);
    entry(0x010F, 2, static_cast<std::uint32_t>(camera_make.size() + 1), 38); // Make
    entry(0x8825, 4, 1, 52);                                                  // GPSInfo
    u32(0);
    t += camera_make;
    t += '\0';
    u16(4);
    entry(0x0001, 2, 2, 'N'); // GPSLatitudeRef "N\0"
    entry(0x0002, 5, 3, 106); // GPSLatitude
    entry(0x0003, 2, 2, 'E'); // GPSLongitudeRef "E\0"
    entry(0x0004, 5, 3, 130); // GPSLongitude
    u32(0);
    for (std::uint32_t v : {30u, 1u, 41u, 1u, 5200u, 100u, 111u, 1u, 17u, 1u, 1234u, 100u})
        u32(v);
    return t;
}

// The GPS latitude's rationals as stored: a test checks they are gone.
inline std::string gps_latitude_bytes() {
    auto t = exif_tiff_with_gps();
    return t.substr(106, 24);
}

// Returns: `jpeg` with an APP1 Exif segment (GPS) and a COM comment after SOI.
inline std::string with_exif_and_comment(const std::string& jpeg,
                                         const std::string& comment = "taken at gate 3") {
    auto segment = [](unsigned char marker, const std::string& data) {
        std::string s = "\xFF";
        s += static_cast<char>(marker);
        auto len = data.size() + 2;
        s += static_cast<char>(len >> 8);
        s += static_cast<char>(len & 0xff);
        return s + data;
    };
    std::string exif("Exif\0\0", 6);
    exif += exif_tiff_with_gps();
    return jpeg.substr(0, 2) + segment(0xE1, exif) + segment(0xFE, comment) + jpeg.substr(2);
}

// Returns: the JPEG's (width, height) as libjpeg decodes it, all scanlines
// read, or (0, 0) with `why` set if libjpeg cannot decode it.
inline std::pair<int, int> decode_jpeg(const std::string& bytes, std::string* why = nullptr) {
    struct failing {
        jpeg_error_mgr mgr;
        std::jmp_buf back;
        char message[JMSG_LENGTH_MAX];
    };
    jpeg_decompress_struct d{};
    failing err{};
    d.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = [](j_common_ptr c) {
        auto* f = reinterpret_cast<failing*>(c->err);
        (*c->err->format_message)(c, f->message);
        std::longjmp(f->back, 1);
    };
    std::vector<unsigned char> row;
    if (setjmp(err.back)) {
        if (why) *why = err.message;
        jpeg_destroy_decompress(&d);
        return {0, 0};
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, reinterpret_cast<const unsigned char*>(bytes.data()),
                 static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&d, TRUE);
    jpeg_start_decompress(&d);
    row.resize(static_cast<std::size_t>(d.output_width) * d.output_components);
    while (d.output_scanline < d.output_height) {
        JSAMPROW r = row.data();
        jpeg_read_scanlines(&d, &r, 1);
    }
    std::pair<int, int> wh{static_cast<int>(d.output_width), static_cast<int>(d.output_height)};
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    return wh;
}

// Returns: an RGB PNG of w×h with a tEXt comment naming a position, an iTXt
// chunk and an eXIf chunk with GPS (when `metadata`).
inline std::string make_png(int w, int h, bool metadata = true, unsigned seed = 2) {
    std::string out;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        throw std::runtime_error("libpng could not write the test image");
    }
    png_set_write_fn(
        p, &out,
        [](png_structp pp, png_bytep data, png_size_t n) {
            static_cast<std::string*>(png_get_io_ptr(pp))->append(reinterpret_cast<char*>(data), n);
        },
        nullptr);
    png_set_IHDR(p, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    std::string tiff = exif_tiff_with_gps();
    if (metadata) {
        png_text text[2]{};
        text[0].compression = PNG_TEXT_COMPRESSION_NONE;
        text[0].key = const_cast<char*>("Comment");
        text[0].text = const_cast<char*>("GPS 30.6978 N 111.2868 E");
        text[1].compression = PNG_ITXT_COMPRESSION_NONE;
        text[1].key = const_cast<char*>("Location");
        text[1].text = const_cast<char*>("校门口");
        png_set_text(p, info, text, 2);
        png_set_eXIf_1(p, info, static_cast<png_uint_32>(tiff.size()),
                       reinterpret_cast<png_bytep>(tiff.data()));
    }
    png_write_info(p, info);
    auto px = photo_pixels(w, h, seed);
    for (int y = 0; y < h; ++y)
        png_write_row(p, px.data() + static_cast<std::size_t>(y) * w * 3);
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    return out;
}

// Returns: the PNG's (width, height) as libpng decodes it, every row read.
// Throws: std::runtime_error if libpng cannot decode it.
inline std::pair<int, int> decode_png(const std::string& bytes) {
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
        throw std::runtime_error(std::string("libpng: ") + img.message);
    img.format = PNG_FORMAT_RGB;
    std::vector<unsigned char> buf(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, nullptr, buf.data(), 0, nullptr))
        throw std::runtime_error(std::string("libpng: ") + img.message);
    return {static_cast<int>(img.width), static_cast<int>(img.height)};
}

} // namespace pingan::test
