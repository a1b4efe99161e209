// Tests of common/outbox.hpp on real LMDB files in a temporary folder.
#include "common/outbox.hpp"
#include "common/codec.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

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
