// Hot revocation: the broker reads its access table again on SIGHUP or on
// `pingan access reload`, and checks every message's key against the table in
// force, on connections already open. Real broker processes, real CURVE.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

struct keys {
    curve_keypair server = curve_generate();
    curve_keypair school = curve_generate();   // 420502K001, publish and query
    curve_keypair district = curve_generate(); // 420502, publish and query
    curve_keypair city = curve_generate();     // the city, query only
    curve_keypair newcomer = curve_generate(); // 420502K002, not in the first table

    curve_client as(const curve_keypair& k) const { return {k, server.public_key}; }
};

std::string client_yaml(const std::string& identity, const std::string& key,
                        const std::string& scope, const std::string& may) {
    return "  - identity: " + identity + "\n    key: \"" + key + "\"\n    scope: " + scope +
           "\n    may: " + may + "\n";
}

std::string school_entry(const keys& k) {
    return client_yaml("school:420502K001", k.school.public_key, "{school: 420502K001}",
                       "[publish, query]");
}

// The table without the school: what an operator writes when a school's key is lost.
std::string table_without_school(const keys& k) {
    return "clients:\n" +
           client_yaml("bureau:420502", k.district.public_key, "{district: \"420502\"}",
                       "[publish, query]") +
           client_yaml("city:auditor", k.city.public_key, "city", "[query]");
}

std::string full_table(const keys& k) {
    return table_without_school(k) + school_entry(k);
}

// A secured broker logging at info level to a file, so that a test can wait
// for the line that says a reload was done (or refused).
struct secured {
    keys k;
    temp_dir d;
    std::string log = d / "broker.log";
    std::unique_ptr<broker_process> b;
    secured() {
        write_key(d / "server.key", k.server);
        write_table(full_table(k));
        b = std::make_unique<broker_process>(d / "store",
                                             std::vector<std::string>{"--server-key",
                                                                      d / "server.key", "--clients",
                                                                      d / "clients.yaml"},
                                             log, "info");
    }
    void write_table(const std::string& text) const { std::ofstream(d / "clients.yaml") << text; }

    // How many log lines contain `needle`.
    std::size_t count(const std::string& needle) const {
        auto text = read_file(log);
        std::size_t n = 0;
        for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1))
            ++n;
        return n;
    }
    // Waits until the broker has logged `needle` `n` times. Returns: false after 20 s.
    bool logged(const std::string& needle, std::size_t n = 1) const {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < until) {
            if (count(needle) >= n) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    // Sends SIGHUP and waits for the access table's reload line (done or refused).
    bool sighup(const std::string& outcome = "reloaded (SIGHUP)") const {
        auto before = count(outcome);
        b->proc->signal(SIGHUP);
        return logged(outcome, before + 1);
    }
};

std::vector<event> log_of(zmq::context_t& ctx, const secured& s) {
    auto city = s.k.as(s.k.city);
    query_client q(ctx, s.b->query, &city);
    std::vector<event> out;
    q.replay({}, [&](std::uint64_t, std::string_view b) {
        event e;
        if (!decode(b, e)) out.push_back(std::move(e));
        return true;
    });
    return out;
}

std::vector<access_revoked> revocations(const std::vector<event>& log) {
    std::vector<access_revoked> out;
    for (const auto& e : log)
        if (auto* r = std::get_if<access_revoked>(&e.body)) out.push_back(*r);
    return out;
}

publish_reply publish_on(ingest_client& pub, const event& e) {
    std::vector<std::string> frames{encode(e)};
    pub.send(frames, false, "t");
    auto r = pub.receive(std::chrono::seconds(5));
    if (!r) throw std::runtime_error("no reply from the broker");
    return *r;
}

} // namespace

TEST_CASE("a key removed from the access table and SIGHUP is refused on its open connections",
          "[revocation]") {
    secured s;
    zmq::context_t ctx(1);
    auto school = s.k.as(s.k.school);
    ingest_client pub(ctx, s.b->ingest, &school);
    query_client q(ctx, s.b->query, &school);
    auto r = publish_on(pub, sample_hazard("420502K001"));
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].what == wire::outcome::stored);
    CHECK(q.stats()["events"] == 1);

    s.write_table(table_without_school(s.k));
    REQUIRE(s.sighup());

    // The same connections: the next publish and the next query are refused.
    r = publish_on(pub, sample_hazard("420502K001"));
    CHECK(r.refused);
    CHECK(r.code == errc::unauthorized);
    CHECK(r.message == "the key of school:420502K001 was revoked: it is no longer in the "
                       "broker's access table");
    try {
        q.stats();
        FAIL("a revoked key's query was answered");
    } catch (const error& e) {
        CHECK(e.code() == errc::unauthorized);
        CHECK_THAT(e.detail(), Catch::Contains("school:420502K001 was revoked"));
    }

    // The revocation is an event of the log, naming whom and what caused it.
    // The writer stores it beside the refusals, so it may be durable a moment
    // after them.
    auto log = log_of(ctx, s);
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
         revocations(log).empty() && std::chrono::steady_clock::now() < until; log = log_of(ctx, s))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto rv = revocations(log);
    REQUIRE(rv.size() == 1);
    CHECK(rv[0].identities == std::vector<std::string>{"school:420502K001"});
    CHECK(rv[0].trigger == "SIGHUP");
    CHECK(rv[0].clients == 2);
    CHECK(rv[0].file == std::string(s.d / "clients.yaml"));
    CHECK(log.back().type() == "access.revoked");
    CHECK(log.back().actor == "pingan-broker");
    CHECK(log.size() == 2); // the one stored hazard, then the revocation
}

TEST_CASE("a key added to the access table is admitted after SIGHUP without a restart",
          "[revocation]") {
    secured s;
    zmq::context_t ctx(1);
    auto newcomer = s.k.as(s.k.newcomer);
    {
        // Not in the table yet: the handshake is refused.
        ingest_client pub(ctx, s.b->ingest, &newcomer);
        std::vector<event> one{sample_hazard("420502K002")};
        CHECK_THROWS_AS(pub.publish(one, std::chrono::seconds(2), 1), error);
    }
    s.write_table(full_table(s.k) + client_yaml("school:420502K002", s.k.newcomer.public_key,
                                                "{school: 420502K002}", "[publish, query]"));
    REQUIRE(s.sighup());
    CHECK(s.count("added: school:420502K002") == 1);
    ingest_client pub(ctx, s.b->ingest, &newcomer);
    auto r = publish_on(pub, sample_hazard("420502K002"));
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].what == wire::outcome::stored);
    auto log = log_of(ctx, s);
    REQUIRE(log.size() == 1);
    CHECK(log[0].actor == "school:420502K002");
    // Adding a key revokes nothing, so nothing is logged as revoked.
    CHECK(revocations(log).empty());
}

TEST_CASE("a bad access table on SIGHUP is refused and the table in force stays", "[revocation]") {
    secured s;
    zmq::context_t ctx(1);
    auto school = s.k.as(s.k.school);
    ingest_client pub(ctx, s.b->ingest, &school);
    CHECK(publish_on(pub, sample_hazard("420502K001")).results[0].what == wire::outcome::stored);

    // A school that is not in the registry: the whole file is refused.
    s.write_table(table_without_school(s.k) + client_yaml("school:X", s.k.newcomer.public_key,
                                                          "{school: 999999X999}", "[publish]"));
    REQUIRE(s.sighup("not reloaded (SIGHUP)"));
    auto text = read_file(s.log);
    CHECK_THAT(text, Catch::Contains("access table " + std::string(s.d / "clients.yaml") +
                                     " not reloaded (SIGHUP)"));
    CHECK_THAT(text, Catch::Contains("school 999999X999 is not in the registry"));
    CHECK_THAT(text, Catch::Contains("the table in force stays"));

    // The school, missing from the bad file, still publishes: on its open
    // connection and on a new one.
    CHECK(publish_on(pub, sample_hazard("420502K001")).results[0].what == wire::outcome::stored);
    ingest_client fresh(ctx, s.b->ingest, &school);
    CHECK(publish_on(fresh, sample_hazard("420502K001")).results[0].what == wire::outcome::stored);
    // Syntax errors too.
    s.write_table("clients: [\n");
    REQUIRE(s.sighup("not reloaded (SIGHUP)"));
    CHECK(publish_on(pub, sample_hazard("420502K001")).results[0].what == wire::outcome::stored);
    CHECK(revocations(log_of(ctx, s)).empty());
}

TEST_CASE("pingan access reload needs the city scope and logs who revoked", "[revocation]") {
    secured s;
    write_key(s.d / "district.key", s.k.district);
    write_key(s.d / "city.key", s.k.city);
    auto bin = std::string(PINGAN_BIN_DIR) + "/pingan";
    auto reload = [&](const std::string& key) {
        return std::make_unique<process>(
            std::vector<std::string>{bin, "access", "reload", "--query", s.b->query, "--key",
                                     s.d / key, "--server-key", "z85:" + s.k.server.public_key},
            std::string(), s.d / "cli.err");
    };
    s.write_table(table_without_school(s.k));

    auto by_district = reload("district.key");
    CHECK(by_district->lines().empty());
    CHECK(by_district->wait() == 1);
    CHECK_THAT(read_file(s.d / "cli.err"),
               Catch::Contains("bureau:420502 may not reload the access table (it needs the city "
                               "scope; its scope is district 420502)"));
    // Nothing was reloaded: the school still publishes.
    zmq::context_t ctx(1);
    auto school = s.k.as(s.k.school);
    ingest_client pub(ctx, s.b->ingest, &school);
    CHECK(publish_on(pub, sample_hazard("420502K001")).results[0].what == wire::outcome::stored);

    auto by_city = reload("city.key");
    auto out = by_city->lines();
    CHECK(by_city->wait() == 0);
    REQUIRE(out.size() == 4);
    CHECK(out[0] == "access table reloaded: 2 clients");
    CHECK(out[1] == "revoked  school:420502K001");
    auto r = publish_on(pub, sample_hazard("420502K001"));
    CHECK(r.code == errc::unauthorized);

    auto rv = revocations(log_of(ctx, s));
    REQUIRE(rv.size() == 1);
    CHECK(rv[0].trigger == "city:auditor");
    CHECK(rv[0].identities == std::vector<std::string>{"school:420502K001"});
}

TEST_CASE("a key given other rights by a reload is held to them from its next message on",
          "[revocation]") {
    secured s;
    zmq::context_t ctx(1);
    auto district = s.k.as(s.k.district);
    ingest_client pub(ctx, s.b->ingest, &district);
    CHECK(publish_on(pub, sample_hazard("420502K002")).results[0].what == wire::outcome::stored);

    // The bureau's key is narrowed to one school.
    s.write_table("clients:\n" +
                  client_yaml("bureau:420502", s.k.district.public_key, "{school: 420502K001}",
                              "[publish, query]") +
                  client_yaml("city:auditor", s.k.city.public_key, "city", "[query]") +
                  school_entry(s.k));
    REQUIRE(s.sighup());
    auto r = publish_on(pub, sample_hazard("420502K002"));
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].code == errc::forbidden);
    CHECK(r.results[0].message ==
          "bureau:420502 may publish only for school 420502K001, not for school 420502K002");
    auto rv = revocations(log_of(ctx, s));
    REQUIRE(rv.size() == 1);
    CHECK(rv[0].identities.empty());
    CHECK(rv[0].changed == std::vector<std::string>{"bureau:420502"});
}

TEST_CASE("a revoked key's live-feed subscription stops and it cannot subscribe again",
          "[revocation]") {
    secured s;
    zmq::context_t ctx(1);
    auto school = s.k.as(s.k.school);
    auto city = s.k.as(s.k.city);
    auto district = s.k.as(s.k.district);
    feed_client mine(ctx, s.b->feed, &school);
    feed_client all(ctx, s.b->feed, &city);
    mine.subscribe("s/420502/420502K001/");
    all.subscribe("s/");
    ingest_client pub(ctx, s.b->ingest, &district);

    // Both subscriptions are in place once a probe reaches both.
    bool mine_has = false, all_has = false;
    for (int i = 0; i < 50 && !(mine_has && all_has); ++i) {
        REQUIRE(publish_on(pub, sample_hazard("420502K001")).results[0].what ==
                wire::outcome::stored);
        while (auto m = mine.receive(std::chrono::milliseconds(100)))
            mine_has = true;
        while (auto m = all.receive(std::chrono::milliseconds(1)))
            all_has = true;
    }
    REQUIRE(mine_has);
    REQUIRE(all_has);

    s.write_table(table_without_school(s.k));
    REQUIRE(s.sighup());
    REQUIRE(s.logged("feed: subscribers reconnect after the access table changed"));

    // The city's subscriber reconnects by itself and reads on; the revoked
    // school's connection is closed and its new handshake refused, so the
    // events that the city receives never reach it.
    // Only an event published now proves the city is subscribed again: one
    // still queued from before the rebind does not.
    std::uint64_t last = 0;
    for (int i = 0; i < 50 && last == 0; ++i) {
        auto r = publish_on(pub, sample_hazard("420502K001"));
        REQUIRE(r.results[0].what == wire::outcome::stored);
        while (auto m = all.receive(std::chrono::milliseconds(200)))
            if (m->offset >= r.results[0].offset) {
                last = m->offset;
                break;
            }
    }
    REQUIRE(last > 0);
    auto r = publish_on(pub, sample_hazard("420502K001"));
    auto next = all.receive(std::chrono::seconds(5));
    REQUIRE(next);
    CHECK(next->offset == r.results[0].offset);
    // The school reads only what was queued before the revocation, then
    // learns that its reconnection was refused.
    bool refused = false;
    try {
        while (auto m = mine.receive(std::chrono::seconds(2)))
            CHECK(m->offset < last);
    } catch (const error& e) {
        refused = true;
        CHECK(e.code() == errc::unauthorized);
    }
    CHECK(refused);
}
