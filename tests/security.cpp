// CURVE authentication and least privilege on a real broker process.
#include "broker/admission/access.hpp"
#include "broker/admission/feed_subscriptions.hpp"
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "common/privacy.hpp"
#include "feed_handshake.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
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
    // With `logged`, the broker's log (warnings) goes to d / "broker.log".
    explicit secured(bool logged = false) {
        write_key(d / "server.key", k.server);
        std::ofstream(d / "clients.yaml") << access_yaml(k);
        b = std::make_unique<broker_process>(d / "store",
                                             std::vector<std::string>{"--server-key",
                                                                      d / "server.key", "--clients",
                                                                      d / "clients.yaml"},
                                             logged ? d / "broker.log" : std::string());
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

// Stores a probe event for confirm_feed (feed_handshake.hpp): a canteen
// reading of 420502K001 (topics t/food.temp_reading/... and
// s/420502/420502K001/food.temp_reading), published with `c`.
// Returns: its offset.
std::uint64_t probe(zmq::context_t& ctx, const std::string& ep, const curve_client& c) {
    static std::uint64_t n = 0;
    auto r = publish_once(ctx, ep, &c, sample_reading("420502K001", n++));
    if (!r || r->results.empty() || r->results[0].what != wire::outcome::stored)
        throw std::runtime_error("a probe event was not stored");
    return r->results[0].offset;
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
    CHECK_FALSE(may_query(*school, f, yichang()));
    CHECK(f.school == "420502K001");
    scan_filter g;
    g.school = "420502K002";
    CHECK(may_query(*school, g, yichang()).code == errc::forbidden);
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
    // After a refused handshake every call says so, until a handshake
    // succeeds: a send fails at once instead of queueing a request on a
    // connection that will never carry it (or blocking once libzmq dropped it).
    auto unauthorized = Catch::Matchers::Predicate<error>(
        [](const error& e) { return e.code() == errc::unauthorized; }, "refused as unauthorized");
    for (const curve_client* c :
         {static_cast<const curve_client*>(nullptr), static_cast<const curve_client*>(&stranger)}) {
        ingest_client late(ctx, s.b->ingest, c);
        CHECK_THROWS_MATCHES(late.receive(std::chrono::seconds(20)), error, unauthorized);
        std::vector<std::string> frames{encode(sample_hazard())};
        CHECK_THROWS_MATCHES(late.send(frames, false, "t"), error, unauthorized);
        CHECK_THROWS_MATCHES(late.send(frames, false, "t"), error, unauthorized);
    }
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
    auto school = s.k.as(s.k.school);
    confirm_feed({&good}, [&] { return probe(ctx, s.b->ingest, school); });
    auto r = publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K001"));
    REQUIRE(r);
    auto m = good.receive(std::chrono::seconds(5));
    REQUIRE(m);
    CHECK(m->offset == r->results.at(0).offset);
    // Without a key the handshake is refused, and the client says so rather than wait.
    CHECK_THROWS_WITH(plain.receive(std::chrono::milliseconds(500)),
                      Catch::Contains("requires a CURVE key"));
}

TEST_CASE("the pingan tool talks to a secured broker with --key and --server-key", "[security]") {
    secured s;
    write_key(s.d / "school.key", s.k.school);
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
                   "--server-key", "z85:" + s.k.server.public_key});
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
    write_key(d / "server.key", k.server);
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
    feed.subscribe("t/food.temp_reading/"); // the probes' topic
    auto school = k.as(k.school);
    confirm_feed({&feed}, [&] { return probe(ctx, b.ingest, school); });
    auto r = publish_once(ctx, b.ingest, &school, psych_event());
    REQUIRE(r);
    REQUIRE(r->results.at(0).what == wire::outcome::stored);
    // Every replay below starts at it, after the probes.
    replay_request from_it;
    from_it.from = r->results.at(0).offset;

    // The feed carries it redacted.
    auto m = feed.receive(std::chrono::seconds(5));
    REQUIRE(m);
    event fed;
    REQUIRE_FALSE(decode(m->bytes, fed));
    CHECK(std::get<psych_alert>(fed.body).student_ref == "redacted");

    // A bureau key without clearance reads it redacted, and nothing is logged.
    auto bureau = k.as(k.district);
    auto seen = replay_events(ctx, b.query, bureau, from_it);
    REQUIRE(seen.size() == 1);
    CHECK(std::get<psych_alert>(seen[0].body).student_ref == "redacted");
    CHECK(std::get<psych_alert>(seen[0].body).level == risk_level::red);

    // The cleared county centre reads the reference, and the view is logged.
    curve_client centre{counsellor, k.server.public_key};
    auto full = replay_events(ctx, b.query, centre, from_it);
    REQUIRE_FALSE(full.empty());
    CHECK(std::get<psych_alert>(full[0].body).student_ref == "9f2c4e1a0b7d");
    std::vector<event> log;
    for (int i = 0; i < 50 && log.size() < 2; ++i) {
        log = replay_events(ctx, b.query, auditor, from_it);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(log.size() == 2);
    CHECK(log[1].type() == "access.viewed");
    auto& v = std::get<access_viewed>(log[1].body);
    CHECK(v.viewer == "county-centre:420502");
    CHECK(v.count == 1);
    CHECK(v.first_offset == from_it.from);
    CHECK(v.schools == std::vector<std::string>{"420502K001"});
    CHECK(log[1].status == status::system);
}

TEST_CASE("a scoped subscriber receives the live feed of its own scope only", "[security]") {
    secured s;
    zmq::context_t ctx(1);
    auto bureau = s.k.as(s.k.district); // district 420502
    auto school = s.k.as(s.k.school);   // 420502K001
    auto auditor = s.k.as(s.k.auditor); // city
    // The canteen readings of 420502K001 are the probes (every client below
    // may read them); the hazards are what the test counts.
    const std::string probes = "s/420502/420502K001/food.temp_reading";
    feed_client everything(ctx, s.b->feed, &bureau);
    everything.subscribe("t/"); // beyond its scope: never applied
    everything.subscribe(probes);
    feed_client district(ctx, s.b->feed, &bureau);
    district.subscribe("s/420502/");
    feed_client own(ctx, s.b->feed, &school);
    own.subscribe("s/420502/420502K001/");
    feed_client neighbour(ctx, s.b->feed, &school);
    neighbour.subscribe("s/420502/420502K002/"); // another school's: never applied
    neighbour.subscribe(probes);
    feed_client city(ctx, s.b->feed, &auditor);
    city.subscribe("t/");
    // Handshake: every subscription (the refused ones were sent first) is read.
    std::vector<feed_client*> all{&everything, &district, &own, &neighbour, &city};
    confirm_feed(all, [&] { return probe(ctx, s.b->ingest, school); });
    REQUIRE(publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K001")));
    REQUIRE(publish_once(ctx, s.b->ingest, &bureau, sample_hazard("420502K002")));
    // A last probe closes the count: each connection receives in log order,
    // so whatever reached it of the hazards came before that probe.
    auto last = probe(ctx, s.b->ingest, school);
    auto count = [&](feed_client& f) { return static_cast<int>(feed_until(f, last).size()) - 1; };
    CHECK(count(everything) == 0);
    CHECK(count(district) == 2);
    CHECK(count(own) == 1);
    CHECK(count(neighbour) == 0);
    CHECK(count(city) == 2);
}

namespace {

// Distinctive references, to search for in every byte a reader receives.
const std::vector<std::string> secrets{"REF-QX7731-ZETA", "IND-Q9-WOLF", "VIC-Q8-HERON",
                                       "ACT-Q5-LYNX"};

bool holds_secret(std::string_view bytes) {
    for (const auto& s : secrets)
        if (bytes.find(s) != std::string_view::npos) return true;
    return false;
}

event psych_alert_of(risk_level level, std::vector<std::string> codes) {
    auto e = psych_event();
    e.id = new_event_id(e.occurred_at);
    auto& a = std::get<psych_alert>(e.body);
    a.alert_id = "PA-" + std::string(enum_name(level));
    a.student_ref = secrets[0];
    a.level = level;
    a.indicator_codes = std::move(codes);
    return e;
}

event bullying_event() {
    auto e = sample_hazard("420502K001");
    bullying_reported b;
    b.case_id = "BC-77";
    b.victim_refs = {secrets[2]};
    b.actor_refs = {secrets[3], "ACT-2"};
    b.forms = {bullying_form::physical};
    b.injury = injury::serious;
    b.discovered_at = e.occurred_at;
    e.body = b;
    e.scope = scope::private_;
    e.severity = severity::severe;
    return e;
}

// Every record a client may replay, as raw bytes (binary or JSON lines).
std::vector<std::string> replay_bytes(zmq::context_t& ctx, const std::string& ep,
                                      const curve_client& c, bool json_form) {
    query_client q(ctx, ep, &c);
    replay_request r;
    r.json = json_form;
    std::vector<std::string> out;
    q.replay(r, [&](std::uint64_t, std::string_view b) {
        out.emplace_back(b);
        return true;
    });
    return out;
}

} // namespace

TEST_CASE("student references reach no uncleared reader through pages, titles, feed or logs",
          "[security]") {
    keys k;
    auto counsellor = curve_generate();
    temp_dir d;
    write_key(d / "server.key", k.server);
    std::ofstream(d / "clients.yaml")
        << access_yaml(k) << "  - identity: county-centre:420502\n    key: \""
        << counsellor.public_key
        << "\"\n    scope: {district: \"420502\"}\n    may: [query]\n    clearance: [minors]\n";
    broker_process b(d / "store",
                     {"--server-key", d / "server.key", "--clients", d / "clients.yaml", "--rules",
                      source_path("config/rules/yichang-default.yaml")},
                     d / "broker.log", "debug");
    zmq::context_t ctx(1);
    auto auditor = k.as(k.auditor);
    auto school = k.as(k.school);
    auto bureau = k.as(k.district);
    feed_client city_feed(ctx, b.feed, &auditor);
    city_feed.subscribe("t/");
    feed_client school_feed(ctx, b.feed, &school);
    school_feed.subscribe("s/420502/420502K001/");

    // Handshake: publish probes until both feeds carry them.
    auto probed =
        confirm_feed({&city_feed, &school_feed}, [&] { return probe(ctx, b.ingest, school); });

    std::vector<event> reports{psych_alert_of(risk_level::red, {secrets[1], "SH.2"}),
                               psych_alert_of(risk_level::orange, {secrets[1]}),
                               psych_alert_of(risk_level::yellow, {secrets[1]}),
                               psych_alert_of(risk_level::red, {"abuse", secrets[1]}),
                               bullying_event()};
    reports[3].id = new_event_id(reports[3].occurred_at);
    std::get<psych_alert>(reports[3].body).alert_id = "PA-abuse";
    for (auto& e : reports) {
        auto r = publish_once(ctx, b.ingest, &school, e);
        REQUIRE(r);
        INFO(r->results.at(0).message);
        REQUIRE(r->results.at(0).what == wire::outcome::stored);
    }

    // Everything the uncleared city auditor can replay, in both forms.
    auto binary = replay_bytes(ctx, b.query, auditor, false);
    auto lines = replay_bytes(ctx, b.query, auditor, true);
    REQUIRE(binary.size() == lines.size());
    std::size_t pages = 0, opened = 0;
    std::uint64_t head = 0;
    for (const auto& l : lines) {
        CHECK_FALSE(holds_secret(l));
        auto j = json::parse(l);
        head = std::max<std::uint64_t>(head, j["offset"].get<std::uint64_t>());
        if (j["type"] == "notification.requested") ++pages;
        if (j["type"] == "incident.opened") ++opened;
    }
    for (const auto& r : binary)
        CHECK_FALSE(holds_secret(r));
    CHECK(pages >= 5); // the rules did run and page people
    CHECK(opened >= 5);
    CHECK(head > probed);

    // The same for the school's and the district's own (uncleared) keys.
    for (const auto* c : {&school, &bureau})
        for (bool j : {false, true})
            for (const auto& r : replay_bytes(ctx, b.query, *c, j))
                CHECK_FALSE(holds_secret(r));

    // The live feed, city-wide and the school's own, up to the last record each may see.
    std::uint64_t school_head = 0;
    for (const auto& l : replay_bytes(ctx, b.query, school, true))
        school_head = std::max<std::uint64_t>(school_head, json::parse(l)["offset"]);
    for (auto [f, last] : {std::pair{&city_feed, head}, std::pair{&school_feed, school_head}}) {
        auto got = feed_until(*f, last);
        REQUIRE_FALSE(got.empty());
        CHECK(got.back().offset == last);
        for (const auto& m : got)
            CHECK_FALSE(holds_secret(m.bytes));
    }

    // A cleared replay shows the references, and the view is logged.
    curve_client centre{counsellor, k.server.public_key};
    std::size_t found = 0;
    for (const auto& r : replay_bytes(ctx, b.query, centre, true))
        if (holds_secret(r)) ++found;
    CHECK(found == reports.size());
    bool logged = false;
    for (int i = 0; i < 100 && !logged; ++i) {
        replay_request r;
        r.type = "access.viewed";
        query_client q(ctx, b.query, &auditor);
        q.replay(r, [&](std::uint64_t, std::string_view) { return logged = true, true; });
        if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(logged);

    // The broker's own log, at debug level, names no reference either.
    b.proc.reset(); // stop it, so the log is complete
    auto log = read_file(d / "broker.log");
    CHECK_FALSE(holds_secret(log));
}

TEST_CASE("stats of a scoped client count only its own scope", "[security]") {
    secured s;
    zmq::context_t ctx(1);
    auto school = s.k.as(s.k.school);
    auto bureau = s.k.as(s.k.district);
    auto auditor = s.k.as(s.k.auditor);
    REQUIRE(publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K001")));
    REQUIRE(publish_once(ctx, s.b->ingest, &bureau, sample_hazard("420502K002")));
    REQUIRE(publish_once(ctx, s.b->ingest, &bureau, sample_hazard("420502K003")));

    query_client qs(ctx, s.b->query, &school);
    auto own = qs.stats();
    CHECK(own["events"] == 1);
    CHECK(own["by_type"]["hazard.reported"] == 1);
    CHECK(own["scope"] == "school 420502K001");
    CHECK(own["head"] == 3);

    query_client qb(ctx, s.b->query, &bureau);
    CHECK(qb.stats()["events"] == 3);
    query_client qa(ctx, s.b->query, &auditor);
    auto all = qa.stats();
    CHECK(all["events"] == 3);
    CHECK(all["by_type"]["hazard.reported"] == 3);
}

TEST_CASE("a replay filter outside the client's scope is refused, not answered empty",
          "[security]") {
    secured s;
    zmq::context_t ctx(1);
    auto school = s.k.as(s.k.school);
    auto bureau = s.k.as(s.k.district);
    auto refused = [&](const curve_client& c, replay_request r) -> std::string {
        query_client q(ctx, s.b->query, &c);
        try {
            q.replay(r, [](std::uint64_t, std::string_view) { return true; });
        } catch (const error& x) {
            CHECK(x.code() == errc::forbidden);
            return x.detail();
        }
        return "not refused";
    };
    replay_request other_district;
    other_district.district = "420503";
    CHECK(refused(school, other_district) ==
          "school:420502K001 may read only school 420502K001 (district 420502), not district "
          "420503");
    replay_request elsewhere;
    elsewhere.school = "420503K001";
    CHECK(refused(bureau, elsewhere) ==
          "bureau:420502 may read only district 420502, and school 420503K001 is in district "
          "420503");
    CHECK(refused(bureau, other_district) ==
          "bureau:420502 may read only district 420502, not district 420503");
    // Within scope it is answered as before.
    replay_request own;
    own.school = "420502K002";
    query_client q(ctx, s.b->query, &bureau);
    CHECK_NOTHROW(q.replay(own, [](std::uint64_t, std::string_view) { return true; }));
}

TEST_CASE("clients may not publish the broker's own types, and act only with the act right",
          "[security]") {
    keys k;
    auto clerk = curve_generate(); // school office: reports and incident actions
    temp_dir d;
    write_key(d / "server.key", k.server);
    std::ofstream(d / "clients.yaml")
        << access_yaml(k) << "  - identity: office:420502K001\n    key: \"" << clerk.public_key
        << "\"\n    scope: {school: 420502K001}\n    may: [publish, act]\n";
    broker_process b(d / "store",
                     {"--server-key", d / "server.key", "--clients", d / "clients.yaml"});
    zmq::context_t ctx(1);
    auto school = k.as(k.school);
    auto office = curve_client{clerk, k.server.public_key};
    auto with = [](body x) {
        auto e = sample_hazard("420502K001");
        e.body = std::move(x);
        return e;
    };
    escalation_raised forged;
    forged.incident_id = "INC-1";
    forged.rule_id = "psych.red";
    forged.ruleset_hash = "00";
    forged.reason = "forged";
    access_viewed viewed;
    viewed.viewer = "nobody";
    viewed.what = "minors_details";
    for (auto* c : {&school, &office}) {
        for (auto& e : {with(forged), with(ruleset_loaded{}), with(timer_fired{})}) {
            auto r = publish_once(ctx, b.ingest, c, e);
            REQUIRE(r);
            CHECK(r->results.at(0).code == errc::forbidden);
            CHECK(r->results.at(0).message ==
                  std::string(e.type()) +
                      " is made only by the broker; clients may not publish it");
        }
    }
    incident_acknowledged ack;
    ack.incident_id = "INC-1";
    ack.note = "到场";
    auto r = publish_once(ctx, b.ingest, &school, with(ack));
    REQUIRE(r);
    CHECK(r->results.at(0).code == errc::forbidden);
    CHECK(r->results.at(0).message ==
          "school:420502K001 may not act on incidents (incident.acknowledged needs the act right)");
    r = publish_once(ctx, b.ingest, &office, with(ack));
    REQUIRE(r);
    CHECK(r->results.at(0).what == wire::outcome::stored);
    incident_resolved done;
    done.incident_id = "INC-1";
    done.resolution = "已处置";
    r = publish_once(ctx, b.ingest, &office, with(done));
    REQUIRE(r);
    CHECK(r->results.at(0).what == wire::outcome::stored);
    // A console's record of a person's view of minors' details is an action too.
    r = publish_once(ctx, b.ingest, &school, with(viewed));
    REQUIRE(r);
    CHECK(r->results.at(0).code == errc::forbidden);
    r = publish_once(ctx, b.ingest, &office, with(viewed));
    REQUIRE(r);
    CHECK(r->results.at(0).what == wire::outcome::stored);
}

TEST_CASE("the access table reads publish, query and act rights", "[security]") {
    keys k;
    auto t = access_table::from_yaml("clients:\n  - identity: office\n    key: \"" +
                                         k.school.public_key +
                                         "\"\n    scope: {school: 420502K001}\n    may: [act]\n",
                                     yichang());
    auto* p = t.by_identity("office");
    REQUIRE(p);
    CHECK(p->may_act);
    CHECK_FALSE(p->may_publish);
    auto report = sample_hazard("420502K001");
    report.district = "420502";
    CHECK(may_publish(*p, report).detail == "office may not publish");
    auto bad = "clients:\n  - identity: x\n    key: \"" + k.school.public_key +
               "\"\n    scope: city\n    may: [publish, admin]\n";
    try {
        access_table::from_yaml(bad, yichang());
        FAIL("an unknown right was accepted");
    } catch (const error& x) {
        CHECK(x.detail() == "line 5: may: \"admin\" is not publish, query or act");
    }
}

namespace {

// Runs a program to its end; its exit code and what it wrote to stderr.
std::pair<int, std::string> run_to_end(std::vector<std::string> argv, const std::string& err) {
    process p(std::move(argv), std::string(), err);
    p.lines(std::chrono::seconds(20));
    int code = p.wait();
    return {code, read_file(err)};
}

// A secured broker on d/store with d's server key and access table, then `extra`.
std::vector<std::string> secured_broker_argv(const temp_dir& d,
                                             const std::vector<std::string>& extra) {
    auto v = broker_argv(d / "store",
                         {"--server-key", d / "server.key", "--clients", d / "clients.yaml"});
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
}

} // namespace

TEST_CASE("the broker refuses to start with a readable secret key or a writable access table",
          "[security]") {
    namespace fs = std::filesystem;
    keys k;
    temp_dir d;
    write_key(d / "server.key", k.server);
    std::ofstream(d / "clients.yaml") << access_yaml(k);
    fs::permissions(d / "clients.yaml",
                    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                        fs::perms::others_read,
                    fs::perm_options::replace);

    fs::permissions(d / "server.key", fs::perms::group_read | fs::perms::others_read,
                    fs::perm_options::add);
    auto [code, err] = run_to_end(secured_broker_argv(d, {}), d / "err1");
    CHECK(code == 2);
    CHECK(err.find(d / "server.key" + ": mode 0644: group and others may read it") !=
          std::string::npos);
    CHECK(err.find("--allow-insecure-permissions") != std::string::npos);

    // Told explicitly, it starts, and says so loudly.
    {
        broker_process b(d / "store2",
                         {"--server-key", d / "server.key", "--clients", d / "clients.yaml",
                          "--allow-insecure-permissions"},
                         d / "err2");
        CHECK_FALSE(b.ingest.empty());
    }
    CHECK(read_file(d / "err2").find("INSECURE") != std::string::npos);

    fs::permissions(d / "server.key", fs::perms::group_read | fs::perms::others_read,
                    fs::perm_options::remove);
    fs::permissions(d / "clients.yaml", fs::perms::others_write, fs::perm_options::add);
    std::tie(code, err) = run_to_end(secured_broker_argv(d, {}), d / "err3");
    CHECK(code == 2);
    CHECK(err.find(d / "clients.yaml" + ": mode 0646: others may change it") != std::string::npos);
}

TEST_CASE("services and the pingan tool refuse a secret key others may read", "[security]") {
    namespace fs = std::filesystem;
    secured s;
    write_key(s.d / "school.key", s.k.school);
    fs::permissions(s.d / "school.key", fs::perms::others_read, fs::perm_options::add);
    auto [code, err] =
        run_to_end({std::string(PINGAN_BIN_DIR) + "/pingan", "stats", "--query", s.b->query,
                    "--key", s.d / "school.key", "--server-key", "z85:" + s.k.server.public_key},
                   s.d / "cli.err");
    CHECK(code != 0);
    CHECK(err.find(s.d / "school.key" + ": mode 0604: others may read it; a secret key must be "
                                        "readable by its owner only") != std::string::npos);
    std::tie(code, err) = run_to_end(
        {std::string(PINGAN_BIN_DIR) + "/pingan-hazard", "--data", s.d / "hazard", "--insecure-dev",
         "--broker", s.b->ingest, "--registry", source_path("data/schools.csv"), "--key",
         s.d / "school.key", "--server-key", "z85:" + s.k.server.public_key},
        s.d / "hazard.err");
    CHECK(code != 0);
    CHECK(err.find("mode 0604: others may read it") != std::string::npos);
}

TEST_CASE("the broker's key argument is always a file, even when its path is 40 characters long",
          "[security]") {
    secured s;
    write_key(s.d / "school.key", s.k.school);
    // A path of exactly 40 characters, all of them valid Z85.
    std::string path = "/tmp/pingan-" + std::to_string(::getpid()) + "-";
    path += std::string(40 - path.size(), 'k');
    REQUIRE(path.size() == 40);
    std::ofstream(path) << format_keypair({s.k.server.public_key, {}});
    auto bin = std::string(PINGAN_BIN_DIR) + "/pingan";
    process stats({bin, "stats", "--json", "--query", s.b->query, "--key", s.d / "school.key",
                   "--server-key", path});
    auto out = stats.lines(std::chrono::seconds(20));
    int code = stats.wait();
    std::filesystem::remove(path);
    CHECK(code == 0);
    REQUIRE(out.size() == 1);
    CHECK(json::parse(out[0])["head"] == 0);

    // A literal key needs its prefix; a bare key is a file name that does not exist.
    CHECK(read_server_key("z85:" + s.k.server.public_key) == s.k.server.public_key);
    CHECK_THROWS_AS(read_server_key(s.k.server.public_key), error);
    try {
        read_server_key("z85:short");
        FAIL("a bad literal key was accepted");
    } catch (const error& x) {
        CHECK(x.code() == errc::bad_config);
    }
}

TEST_CASE("an access table that is not a map, or has a map where text belongs, is a clear error",
          "[security]") {
    // Found by the access_table fuzz target: yaml-cpp's own exception escaped.
    for (std::string text :
         {std::string("just a line\n"), std::string("- a\n- list\n"),
          std::string("clients:\n  - identity: x\n    key: {a: b}\n    scope: city\n"),
          std::string(
              "clients:\n  - identity: x\n    key: \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n"
              "    scope: {school: {a: b}}\n    may: [publish]\n")}) {
        CAPTURE(text);
        CHECK_THROWS_AS(access_table::from_yaml(text, yichang()), error);
    }
}

TEST_CASE("only a feed notice beginning with byte 0 or 1 subscribes or unsubscribes",
          "[security]") {
    // A subscriber's other messages reach the broker too (an XSUB peer may
    // send any); one beginning with a byte above 127 once read as an
    // unsubscribe, because a char of that byte is below 1.
    feed_subscriptions table;
    auto sub = parse_feed_notice(std::string("\x01s/420502/420502K001/"));
    REQUIRE(sub);
    CHECK(sub->subscribe);
    CHECK(sub->prefix == "s/420502/420502K001/");
    table.apply(*sub, notice_source::shared);
    for (std::string other :
         {std::string("\xffs/420502/420502K001/"), std::string("\x80s/420502/420502K001/"),
          std::string("\x02s/"), std::string()}) {
        CAPTURE(other);
        CHECK_FALSE(parse_feed_notice(other));
    }
    CHECK(table.wanted("s/420502/420502K001/hazard.reported"));
    CHECK_FALSE(table.wanted("s/420502/420502K002/hazard.reported"));
    auto unsub = parse_feed_notice(std::string("\x00s/420502/420502K001/", 21));
    REQUIRE(unsub);
    CHECK_FALSE(unsub->subscribe);
    table.apply(*unsub, notice_source::shared);
    CHECK(table.empty());
}

TEST_CASE("a subscriber's own unsubscribes and closed connections never end another's "
          "subscription",
          "[security]") {
    // With authentication every notice reaches the broker: a second
    // connection with a key allowed the prefix once unsubscribed it for all.
    feed_subscriptions table;
    const feed_notice sub{true, "s/420502/"}, unsub{false, "s/420502/"};
    const std::string topic = "s/420502/420502K001/hazard.reported";
    CHECK(table.apply(sub, notice_source::subscriber, true) == feed_action::subscribe);
    CHECK(table.apply(sub, notice_source::subscriber, true) == feed_action::subscribe);
    for (int i = 0; i < 5; ++i)
        CHECK(table.apply(unsub, notice_source::subscriber) == feed_action::unsubscribe);
    CHECK(table.wanted(topic));
    // A refused subscribe is not applied, and its connection's close (libzmq
    // reports a closed connection's prefixes, refused ones too) takes back
    // the refusal, not a subscription in force.
    CHECK(table.apply(sub, notice_source::subscriber, false) == feed_action::none);
    CHECK(table.apply(unsub, notice_source::closed_connection) == feed_action::none);
    CHECK(table.apply(unsub, notice_source::closed_connection) == feed_action::none);
    CHECK(table.wanted(topic));
    CHECK(table.size() == 1);
    // The last connection holding it closes: nothing is sent any more.
    CHECK(table.apply(unsub, notice_source::closed_connection) == feed_action::none);
    CHECK_FALSE(table.wanted(topic));
    CHECK(table.empty());
    // More closes than subscribes (a prefix only refused) leave nothing behind.
    CHECK(table.apply(feed_notice{true, ""}, notice_source::subscriber, false) ==
          feed_action::none);
    CHECK_FALSE(table.wanted(topic));
    table.apply(feed_notice{false, ""}, notice_source::closed_connection);
    table.apply(feed_notice{false, ""}, notice_source::closed_connection);
    CHECK(table.empty());
}

TEST_CASE("a connection that unsubscribes, is refused or closes does not stop another's feed",
          "[security]") {
    secured s(true);
    zmq::context_t ctx(1);
    auto bureau = s.k.as(s.k.district); // district 420502
    auto school = s.k.as(s.k.school);   // 420502K001
    feed_client district(ctx, s.b->feed, &bureau);
    district.subscribe("s/420502/");
    confirm_feed({&district}, [&] { return probe(ctx, s.b->ingest, school); });
    // The broker reads notices when it publishes: publishes a hazard of
    // `school` (the district's subscriber receives each; the test counts
    // schools) until the broker's log shows `refusal`.
    auto read_notices = [&](const std::string& refusal, const std::string& school_id) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < until) {
            REQUIRE(publish_once(ctx, s.b->ingest, &bureau, sample_hazard(school_id)));
            if (read_file(s.d / "broker.log").find(refusal) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    };
    // A second connection with a key allowed the same prefix subscribes to
    // it, unsubscribes (libzmq's XSUB passes on one), asks for everything
    // (refused) and closes. A peer with its own ZMTP code could send any
    // number of unsubscribes: the case above covers those.
    {
        zmq::socket_t rogue(ctx, zmq::socket_type::xsub);
        apply_curve(rogue, bureau);
        rogue.connect(s.b->feed);
        auto notice = [&](char kind, std::string_view prefix) {
            std::string m(1, kind);
            m += prefix;
            rogue.send(zmq::buffer(m), zmq::send_flags::none);
        };
        notice(1, "s/420502/");
        for (int i = 0; i < 4; ++i)
            notice(0, "s/420502/");
        notice(1, "");
        // Publish (again) until the broker has read the notices: it logs the refused one, last.
        REQUIRE(read_notices(R"(may not subscribe to "")", "420502K003"));
    }
    // A school key asks for the district's prefix (refused) and closes.
    {
        feed_client nosy(ctx, s.b->feed, &school);
        nosy.subscribe("s/420502/");
        REQUIRE(read_notices(R"(may not subscribe to "s/420502/")", "420502K004"));
    }
    // Not a handshake: nothing shows when the broker has seen a connection
    // close (no log line, no metric), so the closes get a moment to arrive.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    REQUIRE(publish_once(ctx, s.b->ingest, &bureau, sample_hazard("420502K005")));
    auto last = publish_once(ctx, s.b->ingest, &school, sample_hazard("420502K001"));
    REQUIRE(last);
    std::set<std::string> schools;
    for (const auto& m : feed_until(district, last->results.at(0).offset)) {
        event e;
        REQUIRE_FALSE(decode(m.bytes, e));
        schools.insert(e.school);
    }
    CHECK(schools == std::set<std::string>{"420502K003", "420502K004", "420502K005", "420502K001"});
}
