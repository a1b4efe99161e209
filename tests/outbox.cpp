// Tests of common/outbox.hpp on real LMDB files in a temporary folder.
#include "common/outbox.hpp"
#include "common/codec.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace pingan;

TEST_CASE("an added event is pending with its id and exact bytes", "[outbox]") {
    test::temp_dir dir;
    outbox box(dir.path());
    auto e = test::sample_hazard();
    auto seq = box.add(e);
    CHECK(seq == 1);
    auto p = box.pending(0, 10);
    REQUIRE(p.size() == 1);
    CHECK(p[0].seq == 1);
    CHECK(p[0].id == e.id);
    CHECK(p[0].bytes == encode(e));
    CHECK(box.depth() == 1);
}

TEST_CASE("pending events survive closing and reopening the outbox", "[outbox]") {
    test::temp_dir dir;
    std::vector<event> events;
    for (int i = 0; i < 5; ++i)
        events.push_back(test::sample_reading("420502K001", i));
    {
        outbox box(dir.path());
        auto seqs = box.add(events);
        REQUIRE(seqs == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    }
    outbox box(dir.path());
    auto p = box.pending(0, 100);
    REQUIRE(p.size() == 5);
    for (std::size_t i = 0; i < p.size(); ++i)
        CHECK(p[i].id == events[i].id);
    // Sequence numbers keep growing after a reopen: never reused.
    CHECK(box.add(test::sample_hazard()) == 6);
}

TEST_CASE("pending reads after a sequence number and at most the maximum", "[outbox]") {
    test::temp_dir dir;
    outbox box(dir.path());
    for (int i = 0; i < 10; ++i)
        box.add(test::sample_reading("420502K001", i));
    auto p = box.pending(3, 4);
    REQUIRE(p.size() == 4);
    CHECK(p.front().seq == 4);
    CHECK(p.back().seq == 7);
    CHECK(box.pending(10, 4).empty());
}

TEST_CASE("an acknowledged event is removed and settling it again changes nothing", "[outbox]") {
    test::temp_dir dir;
    outbox box(dir.path());
    box.add(test::sample_hazard());
    box.add(test::sample_hazard());
    std::vector<outbox::settlement> acks{{1, errc::ok, {}}};
    CHECK(box.settle(acks) == 1);
    CHECK(box.settle(acks) == 0);
    CHECK(box.depth() == 1);
    CHECK(box.pending(0, 10).front().seq == 2);
    CHECK(box.dead_count() == 0);
}

TEST_CASE("a rejected event moves to the dead-letter table with the error", "[outbox]") {
    test::temp_dir dir;
    outbox box(dir.path());
    auto e = test::sample_hazard("999999X999");
    box.add(e);
    std::vector<outbox::settlement> answers{
        {1, errc::unknown_school, "school \"999999X999\" is not in the registry"}};
    CHECK(box.settle(answers) == 1);
    CHECK(box.depth() == 0);
    REQUIRE(box.dead_count() == 1);
    auto dead = box.dead_letters(10);
    REQUIRE(dead.size() == 1);
    CHECK(dead[0].id == e.id);
    CHECK(dead[0].code == errc::unknown_school);
    CHECK(dead[0].message.find("999999X999") != std::string::npos);
    json j;
    REQUIRE_FALSE(parse_json(dead[0].event_json, j));
    CHECK(j["school"] == "999999X999");
    CHECK(j["type"] == "hazard.reported");
}

TEST_CASE("the outbox grows its map instead of refusing events", "[outbox]") {
    test::temp_dir dir;
    outbox box(dir.path(), 64 * 1024); // a map far too small for what follows
    std::vector<event> events;
    for (int i = 0; i < 200; ++i)
        events.push_back(test::sample_hazard());
    for (int round = 0; round < 5; ++round)
        box.add(events);
    CHECK(box.depth() == 1000);
}

namespace {

// A psychological alert whose minors' data must never be in the file in clear.
event secret_alert() {
    auto e = test::sample_hazard();
    psych_alert a;
    a.alert_id = "PA-SEALED-1";
    a.student_ref = "stu-OUTBOX-SECRET-7731";
    a.level = risk_level::orange;
    a.indicator_codes = {"IND-OUTBOX-SECRET-42"};
    a.reported_by_role = "psych_teacher";
    e.body = a;
    return e;
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

outbox_key some_key(unsigned char fill) {
    outbox_key k;
    k.fill(fill);
    return k;
}

} // namespace

TEST_CASE("a sealed outbox holds no minors' data in clear and gives the exact bytes back",
          "[outbox]") {
    test::temp_dir dir;
    auto e = secret_alert();
    {
        outbox box(dir.path(), 64u << 20, some_key(7));
        CHECK(box.sealed());
        box.add(e);
        box.add(test::sample_hazard());
        auto p = box.pending(0, 10);
        REQUIRE(p.size() == 2);
        CHECK(p[0].id == e.id);
        CHECK(p[0].bytes == encode(e));
    }
    auto raw = file_bytes(dir.path() + "/data.mdb");
    CHECK(raw.find("stu-OUTBOX-SECRET-7731") == std::string::npos);
    CHECK(raw.find("IND-OUTBOX-SECRET-42") == std::string::npos);
    CHECK(raw.find("二楼走廊护栏松动") == std::string::npos); // the hazard's text too

    // Reopened with its key after a restart: the same events, to be sent again.
    outbox box(dir.path(), 64u << 20, some_key(7));
    auto p = box.pending(0, 10);
    REQUIRE(p.size() == 2);
    CHECK(p[0].bytes == encode(e));
    CHECK(box.add(test::sample_hazard()) == 3);
}

TEST_CASE("a sealed outbox refuses to open without its key or with another", "[outbox]") {
    test::temp_dir dir;
    { outbox box(dir.path(), 64u << 20, some_key(7)); }
    try {
        outbox box(dir.path());
        FAIL("opened without its key");
    } catch (const error& x) {
        CHECK(x.code() == errc::bad_config);
        CHECK(std::string(x.what()).find("is sealed: start with --outbox-key FILE") !=
              std::string::npos);
    }
    try {
        outbox box(dir.path(), 64u << 20, some_key(8));
        FAIL("opened with another key");
    } catch (const error& x) {
        CHECK(x.code() == errc::bad_config);
        CHECK(std::string(x.what()).find("was sealed with another key") != std::string::npos);
    }
}

TEST_CASE("an outbox written in clear is sealed at its first open with a key", "[outbox]") {
    test::temp_dir dir;
    auto e = secret_alert();
    {
        outbox box(dir.path());
        CHECK_FALSE(box.sealed());
        box.add(e);
        box.add(test::sample_hazard("999999X999"));
        std::vector<outbox::settlement> refused{{2, errc::unknown_school, "not in the registry"}};
        REQUIRE(box.settle(refused) == 1);
    }
    {
        outbox box(dir.path(), 64u << 20, some_key(9));
        auto p = box.pending(0, 10);
        REQUIRE(p.size() == 1);
        CHECK(p[0].bytes == encode(e));
        auto dead = box.dead_letters(10);
        REQUIRE(dead.size() == 1);
        CHECK(dead[0].code == errc::unknown_school);
    }
    // From then on the key is needed.
    CHECK_THROWS_AS(outbox(dir.path()), error);
}

TEST_CASE("a sealed outbox's dead letters are sealed and read back with the error", "[outbox]") {
    test::temp_dir dir;
    auto e = secret_alert();
    e.school = "999999X999";
    {
        outbox box(dir.path(), 64u << 20, some_key(3));
        box.add(e);
        std::vector<outbox::settlement> answers{{1, errc::unknown_school, "not in the registry"}};
        REQUIRE(box.settle(answers) == 1);
        auto dead = box.dead_letters(10);
        REQUIRE(dead.size() == 1);
        CHECK(dead[0].id == e.id);
        CHECK(dead[0].event_json.find("IND-OUTBOX-SECRET-42") != std::string::npos);
    }
    auto raw = file_bytes(dir.path() + "/data.mdb");
    CHECK(raw.find("IND-OUTBOX-SECRET-42") == std::string::npos);
    CHECK(raw.find("not in the registry") == std::string::npos);
}

TEST_CASE("an outbox key file is made owner-only when missing and checked when read", "[outbox]") {
    test::temp_dir dir;
    auto path = dir.path() + "/outbox.key";
    CHECK_THROWS_AS(read_outbox_key(path, false), error);
    auto made = read_outbox_key(path, true);
    CHECK(std::filesystem::status(path).permissions() ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    CHECK(read_outbox_key(path, false) == made);
    CHECK(made != outbox_key{});

    std::filesystem::permissions(path, std::filesystem::perms::group_read,
                                 std::filesystem::perm_options::add);
    try {
        read_outbox_key(path, false);
        FAIL("a key others may read was accepted");
    } catch (const error& x) {
        CHECK(std::string(x.what()).find("readable by its owner only") != std::string::npos);
    }
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
    { std::ofstream(path, std::ios::trunc) << "not a key\n"; }
    try {
        read_outbox_key(path, false);
        FAIL("a malformed key was accepted");
    } catch (const error& x) {
        CHECK(std::string(x.what()).find("64 hex digits") != std::string::npos);
    }
}
