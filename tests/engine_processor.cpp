// Tests for broker/engine_processor.hpp on a real LMDB store: derived events
// commit with their cause, deadlines survive a restart, and the stored log
// replays through a fresh engine to the same bytes.
#include "broker/engine_processor.hpp"
#include "broker/store.hpp"
#include "engine_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;

namespace {

struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        path = std::filesystem::temp_directory_path() /
               ("pingan-engine-" + std::to_string(::getpid()) + "-" + std::to_string(++count()));
        std::filesystem::remove_all(path);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    static int& count() {
        static int n = 0;
        return n;
    }
};

store_options options_for(const temp_dir& d) {
    store_options o;
    o.path = d.path.string();
    o.initial_map_size = 64ull << 20;
    o.processor_tables.assign(engine_processor::tables.begin(), engine_processor::tables.end());
    return o;
}

std::unique_ptr<engine_processor> make_processor() {
    return std::make_unique<engine_processor>(default_pack(), small_registry());
}

std::vector<event> read_log(const store& s) {
    std::vector<event> v;
    s.scan(scan_filter{}, 1'000'000, [&](std::uint64_t, std::string_view bytes) {
        event e;
        REQUIRE_FALSE(decode(bytes, e));
        v.push_back(std::move(e));
        return true;
    });
    return v;
}

void append(store& s, processor& p, event e, timestamp now) {
    batch_output out;
    std::vector<event> batch{std::move(e)};
    s.append(batch, now, &p, out);
    REQUIRE(out.results.size() == 1);
    REQUIRE(out.results[0].what == wire::outcome::stored);
}

} // namespace

TEST_CASE("derived events are stored right after their cause, in one transaction",
          "[engine_processor]") {
    temp_dir d;
    store s(options_for(d));
    auto p = make_processor();
    s.open_processor(*p);
    batch_output out;
    std::vector<event> batch{make_event(illness(2))};
    s.append(batch, t0(), p.get(), out);
    REQUIRE(out.stored.size() >= 4);
    auto log = read_log(s);
    REQUIRE(log.size() == out.stored.size());
    CHECK(log[0].type() == "food.alert");
    CHECK(log[1].type() == "ruleset.loaded");
    CHECK(log[2].type() == "incident.opened");
    CHECK(log[3].type() == "notification.requested");
    for (std::size_t i = 1; i < log.size(); ++i) {
        CHECK(log[i].offset == log[0].offset + i);
        CHECK(log[i].references == std::vector<event_id>{log[0].id});
    }
    // The state went to the tables in the same transaction.
    std::size_t incidents = 0, timers = 0;
    s.scan_table("incidents", "", [&](auto, auto) { return ++incidents, true; });
    s.scan_table("timers", "", [&](auto, auto) { return ++timers, true; });
    CHECK(incidents == 1);
    CHECK(timers >= 2); // two 2-hour deadlines, plus the drill calendar
}

TEST_CASE("a deadline pending across a broker restart fires at its time", "[engine_processor]") {
    temp_dir d;
    {
        store s(options_for(d));
        auto p = make_processor();
        s.open_processor(*p);
        append(s, *p, make_event(illness(2)), t0());
        CHECK(p->next_due() == t0() + 2h);
    }
    store s(options_for(d));
    auto p = make_processor();
    s.open_processor(*p);
    REQUIRE(p->next_due() == t0() + 2h);
    batch_output out;
    s.fire_timers(t0() + 2h, *p, out);
    auto log = read_log(s);
    auto pages = bodies<notification_requested>(log);
    REQUIRE(pages.size() == 3);
    CHECK(pages[1].tier == tier::district);
    CHECK(pages[2].tier == tier::regulator);
    auto fired = of_type(log, timer_fired::type);
    REQUIRE_FALSE(fired.empty());
    CHECK_FALSE(std::get<timer_fired>(fired[0].body).late);
    CHECK(p->state().incidents.begin()->second.fired.size() == 2);
}

TEST_CASE("a deadline that passed while the broker was down fires late at start",
          "[engine_processor]") {
    temp_dir d;
    {
        store s(options_for(d));
        auto p = make_processor();
        s.open_processor(*p);
        append(s, *p, make_event(illness(2)), t0());
    }
    store s(options_for(d));
    auto p = make_processor();
    s.open_processor(*p);
    batch_output out;
    s.fire_timers(t0() + 6h, *p, out);
    auto log = read_log(s);
    auto overdue = bodies<incident_overdue>(log);
    REQUIRE(overdue.size() == 2);
    CHECK(overdue[0].late);
    CHECK(overdue[0].deadline == t0() + 2h);
    // Nothing is left to fire until the drill calendar's checkpoint.
    auto next = p->next_due();
    REQUIRE(next);
    CHECK(*next > t0() + 6h);
}

TEST_CASE("an acknowledgement stored in a later batch cancels the persisted deadline",
          "[engine_processor]") {
    temp_dir d;
    store s(options_for(d));
    auto p = make_processor();
    s.open_processor(*p);
    append(s, *p, make_event(illness(2)), t0());
    auto a = make_event(ack("canteen-1/2026-11-02-lunch"));
    a.actor = "bureau:duty";
    append(s, *p, a, t0() + 1h);
    // A fresh processor reads the acknowledgement back from the tables.
    auto q = make_processor();
    s.open_processor(*q);
    CHECK(q->state().incidents.begin()->second.milestones.count("acknowledged"));
    batch_output out;
    s.fire_timers(t0() + 3h, *q, out);
    CHECK(bodies<notification_requested>(read_log(s)).size() == 1);
}

TEST_CASE("the stored log replays through a fresh engine to the same bytes", "[engine_processor]") {
    temp_dir d;
    store s(options_for(d));
    auto p = make_processor();
    s.open_processor(*p);
    append(s, *p, make_event(illness(2)), t0());
    append(s, *p, make_event(hazard("HZ-1")), t0() + 1min);
    append(s, *p, make_event(illness(3, "dinner")), t0() + 2min);
    for (auto t : {t0() + 10min, t0() + 15min, t0() + 2h, t0() + 8 * 24h}) {
        batch_output out;
        s.fire_timers(t, *p, out);
    }
    append(s, *p, make_event(ack("HZ-1")), t0() + 9 * 24h);
    auto log = read_log(s);
    REQUIRE(log.size() > 20);
    harness replay;
    replay.fire_timers = false;
    for (const auto& e : log)
        if (e.source != "pingan-broker/engine" || e.type() == timer_fired::type)
            replay.store(e, e.received_at);
    REQUIRE(replay.log.size() == log.size());
    for (std::size_t i = 0; i < log.size(); ++i) {
        INFO(log[i].offset << " " << log[i].type());
        CHECK(encode(replay.log[i]) == encode(log[i]));
    }
}

TEST_CASE("a new rule set takes effect at the next event and is logged", "[engine_processor]") {
    temp_dir d;
    store s(options_for(d));
    auto p = make_processor();
    s.open_processor(*p);
    append(s, *p, make_event(illness(2)), t0());
    auto r = rules::parse(default_pack_text() + "\n# v2\n");
    REQUIRE(r.rules);
    p->set_rules(r.rules);
    append(s, *p, make_event(hazard("HZ-1")), t0() + 1min);
    auto loaded = bodies<ruleset_loaded>(read_log(s));
    REQUIRE(loaded.size() == 2);
    CHECK(loaded[1].hash == r.rules->hash);
    CHECK(loaded[1].previous_hash == default_pack()->hash);
    CHECK(p->rules()->hash == r.rules->hash);
}
