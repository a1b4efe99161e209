// common/private_file.hpp: owner-only files replaced atomically.
#include "common/private_file.hpp"
#include "common/errc.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

using namespace pingan;
using namespace pingan::test;

TEST_CASE("a private file is written with mode 0600 and replaced whole", "[private_file]") {
    temp_dir t;
    auto path = t / "users.json";
    write_private_file(path, "first");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(read_file(path) == "first");
    // A left-over temporary file with loose bits is tightened, then renamed over.
    {
        std::FILE* f = std::fopen((path + ".tmp").c_str(), "w");
        std::fclose(f);
        ::chmod((path + ".tmp").c_str(), 0666);
    }
    write_private_file(path, "second, longer than the first");
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(read_file(path) == "second, longer than the first");
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("a private file that cannot be written is an io_error naming it", "[private_file]") {
    temp_dir t;
    auto path = t / "missing-folder/sessions.json";
    try {
        write_private_file(path, "x");
        FAIL("no error");
    } catch (const error& e) {
        CHECK(e.code() == errc::io_error);
        CHECK(e.detail().find("missing-folder/sessions.json.tmp") != std::string::npos);
    }
}
