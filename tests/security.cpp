// CURVE authentication and least privilege on a real broker process.
#include "broker/access.hpp"
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "common/privacy.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

struct keys {
    curve_keypair server = curve_generate();
    curve_keypair school = curve_generate();   // 420502K001
    curve_keypair district = curve_generate(); // 420502
    curve_keypair auditor = curve_generate();  // query only
    curve_keypair stranger = curve_generate(); // not in the table

    curve_client as(const curve_keypair& k) const { return {k, server.public_key}; }
};

std::string access_yaml(const keys& k) {
    return "clients:\n"
           "  - identity: school:420502K001\n    key: \"" +
           k.school.public_key +
           "\"\n"
           "    scope: {school: 420502K001}\n    may: [publish, query]\n"
           "  - identity: bureau:420502\n    key: \"" +
           k.district.public_key +
           "\"\n"
           "    scope: {district: \"420502\"}\n    may: [publish, query]\n"
           "  - identity: auditor:term1\n    key: \"" +
           k.auditor.public_key +
           "\"\n"
           "    scope: city\n    may: [query]\n";
}

struct secured {
    keys k;
    temp_dir d;
    std::unique_ptr<broker_process> b;
    secured() {
        std::ofstream(d / "server.key") << format_keypair(k.server);
        std::ofstream(d / "clients.yaml") << access_yaml(k);
        b = std::make_unique<broker_process>(
            d / "store", std::vector<std::string>{"--server-key", d / "server.key", "--clients",
                                                  d / "clients.yaml"});
    }
};

std::optional<publish_reply>
publish_once(zmq::context_t& ctx, const std::string& ep, const curve_client* c, const event& e,
             std::chrono::milliseconds wait = std::chrono::seconds(5)) {
    ingest_client pub(ctx, ep, c);
    std::vector<std::string> frames{encode(e)};
    pub.send(frames, false, "t");
    return pub.receive(wait);
}

} // namespace

TEST_CASE("the access table refuses unknown schools, bad keys and duplicates", "[security]") {
    keys k;
    CHECK(access_table::from_yaml(access_yaml(k), yichang()).size() == 3);
    auto bad_school = "clients:\n  - identity: x\n    key: \"" + k.school.public_key +
                      "\"\n    scope: {school: 999999X999}\n    may: [publish]\n";
    CHECK_THROWS_AS(access_table::from_yaml(bad_school, yichang()), error);
    auto bad_key =
        "clients:\n  - identity: x\n    key: \"short\"\n    scope: city\n    may: [query]\n";
    CHECK_THROWS_AS(access_table::from_yaml(bad_key, yichang()), error);
    auto twice = access_yaml(k) + "  - identity: school:420502K001\n    key: \"" +
                 k.stranger.public_key + "\"\n    scope: city\n    may: [query]\n";
    CHECK_THROWS_AS(access_table::from_yaml(twice, yichang()), error);
}

TEST_CASE("scoped clients publish and read only within their scope", "[security]") {
    auto t = access_table::from_yaml(access_yaml(keys{}), yichang());
    auto* school = t.by_identity("school:420502K001");
    REQUIRE(school);
    auto own = sample_hazard("420502K001");
    own.district = "420502";
    auto other = sample_hazard("420502K002");
    other.district = "420502";
    CHECK_FALSE(may_publish(*school, own));
    CHECK(may_publish(*school, other).code == errc::forbidden);
    auto* bureau = t.by_identity("bureau:420502");
    CHECK_FALSE(may_publish(*bureau, other));
    scan_filter f;
    CHECK_FALSE(may_query(*school, f));
    CHECK(f.school == "420502K001");
    scan_filter g;
    g.school = "420502K002";
    CHECK(may_query(*school, g).code == errc::forbidden);
    auto* auditor = t.by_identity("auditor:term1");
    CHECK(may_publish(*auditor, own).code == errc::forbidden);
}

TEST_CASE("a client without a key or with an unknown key gets nothing from a secured broker",
          "[security]") {
    secured s;
    zmq::context_t ctx(1);
    // No reply; the client's socket monitor sees the failed handshake and says so.
    auto refused = [&](const curve_client* c) {
        try {
            return !publish_once(ctx, s.b->ingest, c, sample_hazard(),
                                 std::chrono::milliseconds(1500));
        } catch (const error& e) {
            return e.code() == errc::unauthorized;
        }
    };
    CHECK(refused(nullptr));
    auto stranger = s.k.as(s.k.stranger);
    CHECK(refused(&stranger));
    auto auditor = s.k.as(s.k.auditor);
    query_client q(ctx, s.b->query, &auditor);
    CHECK(q.stats()["head"] == 0); // nothing was stored
}

TEST_CASE("a school's key publishes for its school, as itself, and for no other", "[security]") {
    secured s;
    zmq::context_t ctx(1);
    auto school = s.k.as(s.k.school);
    auto r = publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K001"));
    REQUIRE(r);
    REQUIRE(r->results.size() == 1);
    CHECK(r->results[0].what == wire::outcome::stored);
    r = publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K002"));
    REQUIRE(r);
    CHECK(r->results[0].code == errc::forbidden);
    CHECK(r->results[0].message ==
          "school:420502K001 may publish only for school 420502K001, not for school 420502K002");
    auto bureau = s.k.as(s.k.district);
    r = publish_once(ctx, s.b->ingest, &bureau, sample_hazard("420502K002"));
    REQUIRE(r);
    CHECK(r->results[0].what == wire::outcome::stored);
    auto auditor = s.k.as(s.k.auditor);
    r = publish_once(ctx, s.b->ingest, &auditor, sample_hazard("420502K002"));
    REQUIRE(r);
    CHECK(r->results[0].code == errc::forbidden);

    // The log names who published each event.
    query_client q(ctx, s.b->query, &auditor);
    std::vector<event> log;
    q.replay({}, [&](std::uint64_t, std::string_view b) {
        event e;
        REQUIRE_FALSE(decode(b, e));
        log.push_back(e);
        return true;
    });
    REQUIRE(log.size() == 2);
    CHECK(log[0].actor == "school:420502K001");
    CHECK(log[1].actor == "bureau:420502");

    // A school reads only its own events; asking for another is refused.
    query_client qs(ctx, s.b->query, &school);
    std::size_t n = 0;
    qs.replay({}, [&](std::uint64_t, std::string_view) { return ++n, true; });
    CHECK(n == 1);
    replay_request other;
    other.school = "420502K002";
    CHECK_THROWS_AS(qs.replay(other, [](std::uint64_t, std::string_view) { return true; }), error);
}

TEST_CASE("the live feed reaches authenticated subscribers only", "[security]") {
    secured s;
    zmq::context_t ctx(1);
    auto auditor = s.k.as(s.k.auditor);
    feed_client good(ctx, s.b->feed, &auditor);
    feed_client plain(ctx, s.b->feed, nullptr);
    good.subscribe("t/");
    plain.subscribe("t/");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto school = s.k.as(s.k.school);
    REQUIRE(publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K001")));
    auto m = good.receive(std::chrono::seconds(5));
    REQUIRE(m);
    CHECK(m->offset == 1);
    // Nothing reaches the plain subscriber; its socket monitor sees the failed handshake.
    bool nothing = false;
    try {
        nothing = !plain.receive(std::chrono::milliseconds(500));
    } catch (const error& e) {
        nothing = e.code() == errc::unauthorized;
    }
    CHECK(nothing);
}

TEST_CASE("the pingan tool talks to a secured broker with --key and --server-key", "[security]") {
    secured s;
    std::ofstream(s.d / "school.key") << format_keypair(s.k.school);
    std::ofstream(s.d / "server.pub") << format_keypair({s.k.server.public_key, {}});
    auto bin = std::string(PINGAN_BIN_DIR) + "/pingan";
    process pub(
        {bin, "publish", "--ingest", s.b->ingest, "--key", s.d / "school.key", "--server-key",
         s.d / "server.pub",
         R"({"type":"hazard.reported","school":"420502K001","status":"Actual","body":{"hazard_id":"H","area":"fire","grade":"general","description":"d","location":"l","found_by":"f"}})"});
    auto lines = pub.lines();
    CHECK(pub.wait() == 0);
    REQUIRE(lines.size() == 1);
    CHECK(json::parse(lines[0])["offset"] == 1);
    process stats({bin, "stats", "--json", "--query", s.b->query, "--key", s.d / "school.key",
                   "--server-key", s.k.server.public_key});
    auto st = stats.lines();
    CHECK(stats.wait() == 0);
    REQUIRE(st.size() == 1);
    CHECK(json::parse(st[0])["head"] == 1);
    process keygen({bin, "keygen", s.d / "new.key"});
    auto pubkey = keygen.lines();
    CHECK(keygen.wait() == 0);
    REQUIRE(pubkey.size() == 1);
    CHECK(valid_z85_key(pubkey[0]));
    CHECK(parse_keypair(read_file(s.d / "new.key")).public_key == pubkey[0]);
}

namespace {

event psych_event() {
    auto e = sample_hazard("420502K001");
    psych_alert a;
    a.alert_id = "PA-7";
    a.student_ref = "9f2c4e1a0b7d";
    a.level = risk_level::red;
    a.source = psych_source::teacher;
    a.indicator_codes = {"SH.2", "WD.1"};
    a.reported_by_role = "psych_teacher";
    e.body = a;
    e.scope = scope::private_;
    return e;
}

std::vector<event> replay_events(zmq::context_t& ctx, const std::string& ep, const curve_client& c,
                                 replay_request r = {}) {
    query_client q(ctx, ep, &c);
    std::vector<event> out;
    q.replay(r, [&](std::uint64_t, std::string_view b) {
        event e;
        if (!decode(b, e)) out.push_back(std::move(e));
        return true;
    });
    return out;
}

} // namespace

TEST_CASE("redaction replaces every student reference and indicator code", "[security]") {
    auto e = psych_event();
    CHECK(redact_minors(e));
    CHECK(std::get<psych_alert>(e.body).student_ref == "redacted");
    CHECK(std::get<psych_alert>(e.body).indicator_codes ==
          std::vector<std::string>{"redacted", "redacted"});
    CHECK(std::get<psych_alert>(e.body).level == risk_level::red);
    auto h = sample_hazard();
    CHECK_FALSE(redact_minors(h));
}

TEST_CASE("minors' details reach only cleared clients, and each view is logged", "[security]") {
    keys k;
    auto counsellor = curve_generate();
    temp_dir d;
    std::ofstream(d / "server.key") << format_keypair(k.server);
    std::ofstream(d / "clients.yaml")
        << access_yaml(k) << "  - identity: county-centre:420502\n    key: \""
        << counsellor.public_key
        << "\"\n    scope: {district: \"420502\"}\n    may: [query]\n    clearance: [minors]\n";
    broker_process b(d / "store",
                     {"--server-key", d / "server.key", "--clients", d / "clients.yaml"});
    zmq::context_t ctx(1);
    auto auditor = k.as(k.auditor);
    feed_client feed(ctx, b.feed, &auditor);
    feed.subscribe("t/psych.");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto school = k.as(k.school);
    auto r = publish_once(ctx, b.ingest, &school, psych_event());
    REQUIRE(r);
    REQUIRE(r->results.at(0).what == wire::outcome::stored);

    // The feed carries it redacted.
    auto m = feed.receive(std::chrono::seconds(5));
    REQUIRE(m);
    event fed;
    REQUIRE_FALSE(decode(m->bytes, fed));
    CHECK(std::get<psych_alert>(fed.body).student_ref == "redacted");

    // A bureau key without clearance reads it redacted, and nothing is logged.
    auto bureau = k.as(k.district);
    auto seen = replay_events(ctx, b.query, bureau);
    REQUIRE(seen.size() == 1);
    CHECK(std::get<psych_alert>(seen[0].body).student_ref == "redacted");
    CHECK(std::get<psych_alert>(seen[0].body).level == risk_level::red);

    // The cleared county centre reads the reference, and the view is logged.
    curve_client centre{counsellor, k.server.public_key};
    auto full = replay_events(ctx, b.query, centre);
    REQUIRE_FALSE(full.empty());
    CHECK(std::get<psych_alert>(full[0].body).student_ref == "9f2c4e1a0b7d");
    std::vector<event> log;
    for (int i = 0; i < 50 && log.size() < 2; ++i) {
        log = replay_events(ctx, b.query, auditor);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(log.size() == 2);
    CHECK(log[1].type() == "access.viewed");
    auto& v = std::get<access_viewed>(log[1].body);
    CHECK(v.viewer == "county-centre:420502");
    CHECK(v.count == 1);
    CHECK(v.first_offset == 1);
    CHECK(v.schools == std::vector<std::string>{"420502K001"});
    CHECK(log[1].status == status::system);
}

TEST_CASE("a scoped subscriber receives the live feed of its own scope only", "[security]") {
    secured s;
    zmq::context_t ctx(1);
    auto bureau = s.k.as(s.k.district); // district 420502
    auto school = s.k.as(s.k.school);   // 420502K001
    auto auditor = s.k.as(s.k.auditor); // city
    feed_client everything(ctx, s.b->feed, &bureau);
    everything.subscribe("t/"); // beyond its scope: never applied
    feed_client district(ctx, s.b->feed, &bureau);
    district.subscribe("s/420502/");
    feed_client own(ctx, s.b->feed, &school);
    own.subscribe("s/420502/420502K001/");
    feed_client neighbour(ctx, s.b->feed, &school);
    neighbour.subscribe("s/420502/420502K002/");
    feed_client city(ctx, s.b->feed, &auditor);
    city.subscribe("t/");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // Publish once so that the broker reads the subscriptions, then the real events.
    REQUIRE(publish_once(ctx, s.b->ingest, &bureau, sample_hazard("420502K003")));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (auto* f : {&everything, &district, &own, &neighbour, &city})
        while (f->receive(std::chrono::milliseconds(100))) {
        }
    REQUIRE(publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K001")));
    REQUIRE(publish_once(ctx, s.b->ingest, &bureau, sample_hazard("420502K002")));
    auto count = [](feed_client& f) {
        int n = 0;
        while (f.receive(std::chrono::milliseconds(700)))
            ++n;
        return n;
    };
    CHECK(count(everything) == 0);
    CHECK(count(district) == 2);
    CHECK(count(own) == 1);
    CHECK(count(neighbour) == 0);
    CHECK(count(city) == 2);
}
