// The photo checker and metadata stripper (services/common/image.hpp), on
// real JPEGs and PNGs made by libjpeg and libpng with a camera's Exif GPS
// block, comments and PNG text; cleaned photos are decoded again by the same
// libraries to show they are still pictures.
#include "services/common/image.hpp"
#include "photo_fixtures.hpp"
#include "services/common/photos.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace pingan;
using namespace pingan::svc;
using namespace pingan::test;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

bool removed(const cleaned_image& c, const std::string& what) {
    return std::any_of(c.removed.begin(), c.removed.end(),
                       [&](const std::string& r) { return r.rfind(what, 0) == 0; });
}

} // namespace

TEST_CASE("a JPEG's Exif GPS block and comment are removed and the picture still decodes",
          "[image]") {
    auto plain = make_jpeg(64, 48);
    auto photo = with_exif_and_comment(plain);
    REQUIRE(contains(photo, gps_latitude_bytes()));
    REQUIRE(decode_jpeg(photo) == std::pair{64, 48});

    auto c = clean_image(photo);
    REQUIRE(c.ok());
    CHECK(*c.type == image_type::jpeg);
    CHECK(media_type(*c.type) == "image/jpeg");
    CHECK(c.width == 64);
    CHECK(c.height == 48);
    CHECK(removed(c, "APP1 Exif"));
    CHECK(removed(c, "COM"));
    CHECK_FALSE(contains(c.bytes, gps_latitude_bytes()));
    CHECK_FALSE(contains(c.bytes, camera_make));
    CHECK_FALSE(contains(c.bytes, std::string("Exif\0\0", 6)));
    CHECK_FALSE(contains(c.bytes, "gate 3"));
    // What is left is exactly the encoder's own file: JFIF header, tables, scan.
    CHECK(c.bytes == plain);
    CHECK(decode_jpeg(c.bytes) == std::pair{64, 48});
}

TEST_CASE("a school that keeps metadata keeps the Exif block but still loses trailing bytes",
          "[image]") {
    auto photo = with_exif_and_comment(make_jpeg(32, 32)) + "PK\x03\x04 hidden archive";
    image_limits keep;
    keep.keep_metadata = true;
    auto c = clean_image(photo, keep);
    REQUIRE(c.ok());
    CHECK(contains(c.bytes, gps_latitude_bytes()));
    CHECK(contains(c.bytes, camera_make));
    CHECK_FALSE(contains(c.bytes, "hidden archive"));
    CHECK(removed(c, "trailing bytes"));
    CHECK(decode_jpeg(c.bytes) == std::pair{32, 32});
}

TEST_CASE("cleaning a cleaned photo changes nothing", "[image]") {
    auto once = clean_image(with_exif_and_comment(make_jpeg(40, 30, 7)));
    REQUIRE(once.ok());
    auto twice = clean_image(once.bytes);
    REQUIRE(twice.ok());
    CHECK(twice.bytes == once.bytes);
    CHECK(twice.removed.empty());
    CHECK(photo_hash(twice.bytes) == photo_hash(once.bytes));
}

TEST_CASE("a PNG's text, iTXt and eXIf chunks are removed and the picture still decodes",
          "[image]") {
    auto photo = make_png(50, 20);
    REQUIRE(contains(photo, "eXIf"));
    REQUIRE(contains(photo, gps_latitude_bytes()));
    auto c = clean_image(photo);
    REQUIRE(c.ok());
    CHECK(*c.type == image_type::png);
    CHECK(media_type(*c.type) == "image/png");
    CHECK(c.width == 50);
    CHECK(c.height == 20);
    CHECK(removed(c, "tEXt"));
    CHECK(removed(c, "iTXt"));
    CHECK(removed(c, "eXIf"));
    CHECK_FALSE(contains(c.bytes, gps_latitude_bytes()));
    CHECK_FALSE(contains(c.bytes, "GPS 30.6978"));
    CHECK_FALSE(contains(c.bytes, "eXIf"));
    CHECK(decode_png(c.bytes) == std::pair{50, 20});
    // A PNG without metadata passes unchanged.
    auto bare = make_png(50, 20, false);
    auto b = clean_image(bare);
    REQUIRE(b.ok());
    CHECK(b.bytes == bare);
}

TEST_CASE("a file that is not a JPEG or PNG is refused naming its first bytes", "[image]") {
    auto gif = clean_image("GIF89a\x01\x00\x01\x00");
    CHECK_FALSE(gif.ok());
    CHECK(gif.error == "not a JPEG or PNG image (it starts with the bytes 47 49 46 38)");
    CHECK(clean_image("").error == "the photo is empty");
    CHECK_FALSE(clean_image("%PDF-1.7 ...").ok());
}

TEST_CASE("a damaged JPEG or PNG is refused with what is wrong", "[image]") {
    auto jpeg = make_jpeg(16, 16);
    // Cut off in the middle of the picture data.
    auto cut = clean_image(jpeg.substr(0, jpeg.size() / 2));
    CHECK_FALSE(cut.ok());
    CHECK(cut.error.find("truncated") != std::string::npos);
    // Only the start and end markers: no frame, no scan.
    auto empty = clean_image(std::string("\xFF\xD8\xFF\xD9", 4));
    CHECK_FALSE(empty.ok());
    CHECK(empty.error == "JPEG: the image has no picture data (no scan before EOI)");

    auto png = make_png(8, 8, false);
    auto flipped = png;
    flipped[45] = static_cast<char>(flipped[45] ^ 0x55); // inside IDAT
    auto bad = clean_image(flipped);
    CHECK_FALSE(bad.ok());
    CHECK(bad.error.find("checksum (CRC) is wrong") != std::string::npos);
    auto short_png = clean_image(png.substr(0, png.size() - 12)); // no IEND
    CHECK_FALSE(short_png.ok());
    CHECK(short_png.error == "PNG: the image ends before its IEND chunk (truncated)");
}

TEST_CASE("a picture over the pixel limit is refused with its dimensions", "[image]") {
    image_limits small;
    small.max_pixels = 1000;
    auto c = clean_image(make_jpeg(40, 30), small);
    CHECK_FALSE(c.ok());
    CHECK(c.error == "JPEG: the picture is 40×30 pixels; at most 1000 pixels are accepted");
    auto p = clean_image(make_png(40, 30, false), small);
    CHECK_FALSE(p.ok());
    CHECK(p.error == "PNG: the picture is 40×30 pixels; at most 1000 pixels are accepted");
}

TEST_CASE("a photo's hash is its BLAKE2b-256 in lower-case hex", "[image]") {
    // The BLAKE2b-256 of the empty string (RFC 7693's parameters, 32-byte digest).
    CHECK(photo_hash("") == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    CHECK(valid_photo_hash(photo_hash("x")));
    CHECK_FALSE(
        valid_photo_hash("0E5751C026E543B2E8AB2EB06099DAA1D1E5DF47778F7787FAAB45CDF12FE3A8"));
    CHECK_FALSE(valid_photo_hash("../etc/passwd"));
}
