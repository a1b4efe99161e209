// The key ring that seals minors' data at rest (common/key_ring.hpp), on a real key directory.
#include "common/key_ring.hpp"
#include "common/privacy.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace pingan;
using namespace pingan::test;

namespace {

event psych(std::string ref, std::vector<std::string> codes) {
    auto e = sample_hazard("420502K001");
    psych_alert a;
    a.alert_id = "PA-9";
    a.student_ref = std::move(ref);
    a.level = risk_level::orange;
    a.source = psych_source::screening;
    a.indicator_codes = std::move(codes);
    a.reported_by_role = "psych_teacher";
    e.body = a;
    return e;
}

const psych_alert& alert_of(const event& e) {
    return std::get<psych_alert>(e.body);
}

} // namespace

TEST_CASE("sealing hides every classified value and opening restores it", "[key_ring]") {
    temp_dir d;
    key_ring ring(d / "keys");
    auto e = psych("stu-SECRET-7731", {"SH.2", "WD.1"});
    REQUIRE(ring.seal(e, at("2026-11-29T01:00:00Z")));
    auto stored = encode(e);
    CHECK(stored.find("stu-SECRET-7731") == std::string::npos);
    CHECK(stored.find("SH.2") == std::string::npos);
    CHECK(is_sealed(alert_of(e).student_ref));
    CHECK(alert_of(e).student_ref.find(":2026-11:") != std::string::npos);
    CHECK(alert_of(e).reported_by_role == "psych_teacher"); // not classified: in clear
    CHECK_FALSE(ring.seal(e, at("2026-11-29T01:00:00Z")));  // never sealed twice

    key_ring reader(d / "keys");
    REQUIRE(reader.open(e));
    CHECK(alert_of(e).student_ref == "stu-SECRET-7731");
    CHECK(alert_of(e).indicator_codes == std::vector<std::string>{"SH.2", "WD.1"});
}

TEST_CASE("key files are owner-only and keys are per month of the broker's clock", "[key_ring]") {
    temp_dir d;
    key_ring ring(d / "keys");
    auto nov = psych("stu-1", {});
    auto dec = psych("stu-2", {});
    ring.seal(nov, at("2026-11-30T23:59:59Z"));
    ring.seal(dec, at("2026-12-01T00:00:00Z"));
    auto ids = ring.list();
    REQUIRE(ids.size() == 2);
    CHECK(ids[0].id == "2026-11");
    CHECK(ids[1].id == "2026-12");
    struct stat st {};
    REQUIRE(::stat((d / "keys/2026-11.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat((d / "keys").c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);
}

TEST_CASE("rotation makes a new current key and older values still open", "[key_ring]") {
    temp_dir d;
    key_ring ring(d / "keys");
    auto now = at("2026-11-10T08:00:00Z");
    auto before = psych("stu-OLD", {});
    ring.seal(before, now);
    CHECK(ring.rotate(now) == "2026-11.2");
    auto after = psych("stu-NEW", {});
    ring.seal(after, now);
    CHECK(alert_of(after).student_ref.find(":2026-11.2:") != std::string::npos);
    ring.open(before);
    ring.open(after);
    CHECK(alert_of(before).student_ref == "stu-OLD");
    CHECK(alert_of(after).student_ref == "stu-NEW");
}

TEST_CASE("a shredded period reads as shredded and its id is never reused", "[key_ring]") {
    temp_dir d;
    key_ring ring(d / "keys");
    auto now = at("2026-11-10T08:00:00Z");
    auto e = psych("stu-SECRET-7731", {"SH.2"});
    ring.seal(e, now);
    ring.rotate(now);
    auto f = psych("stu-LATER", {});
    ring.seal(f, now);
    auto gone = ring.shred("2026-11");
    CHECK(gone == std::vector<std::string>{"2026-11", "2026-11.2"});
    CHECK_FALSE(std::filesystem::exists(d / "keys/2026-11.key"));
    CHECK(std::filesystem::exists(d / "keys/2026-11.shredded"));
    CHECK(ring.shred("2026-11").empty());
    CHECK_THROWS_AS(ring.shred("../x"), error);

    // Another holder of the directory (the broker) sees the shred without a restart.
    auto copy = e;
    REQUIRE(ring.open(copy));
    CHECK(alert_of(copy).student_ref == shredded);
    CHECK(alert_of(copy).indicator_codes == std::vector<std::string>{std::string(shredded)});
    CHECK(alert_of(copy).level == risk_level::orange);

    // New values of the month get a new key, never a shredded id.
    auto g = psych("stu-AFTER", {});
    ring.seal(g, now);
    CHECK(alert_of(g).student_ref.find(":2026-11.3:") != std::string::npos);
    ring.open(g);
    CHECK(alert_of(g).student_ref == "stu-AFTER");
}

TEST_CASE("a sealed value moved to another event or altered does not open", "[key_ring]") {
    temp_dir d;
    key_ring ring(d / "keys");
    auto now = at("2026-11-10T08:00:00Z");
    auto a = psych("stu-A", {});
    auto b = psych("stu-B", {});
    ring.seal(a, now);
    ring.seal(b, now);
    std::get<psych_alert>(b.body).student_ref = alert_of(a).student_ref;
    ring.open(b);
    CHECK(alert_of(b).student_ref == unreadable);
    auto& ref = std::get<psych_alert>(a.body).student_ref;
    ref.back() = ref.back() == 'A' ? 'B' : 'A';
    ring.open(a);
    CHECK(alert_of(a).student_ref == unreadable);
}
