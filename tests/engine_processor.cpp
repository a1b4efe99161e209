// Tests for broker/engine/engine_processor.hpp on a real LMDB store: derived events
// commit with their cause, deadlines survive a restart, and the stored log
// replays through a fresh engine to the same bytes.
#include "broker/engine/engine_processor.hpp"
#include "broker/store/store.hpp"
#include "engine_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <span>
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

namespace {

// Everything an engine state holds that the tables keep, as comparable text.
std::string state_text(const engine_state& st) {
    std::string s;
    for (const auto& [id, i] : st.incidents)
        s += "i " + id + " " + encode_incident(i) + "\n";
    for (const auto& [id, t] : st.timers)
        s += "t " + id + " " + encode_timer(t) + "\n";
    for (const auto& [k, w] : st.windows)
        s += "w " + k + " " + encode_window(w) + "\n";
    for (const auto& [k, v] : st.sustained)
        s += "s " + k + " " + std::to_string(v) + "\n";
    for (const auto& [k, v] : st.last_seen)
        s += "a " + k + " " + std::to_string(v) + "\n";
    return s + "announced " + st.announced_hash;
}

std::vector<event> derived_of(const batch_output& out, std::string_view type) {
    std::vector<event> v;
    for (const auto& r : out.stored) {
        event e;
        REQUIRE_FALSE(decode(r.bytes(), e));
        if (e.type() == type) v.push_back(std::move(e));
    }
    return v;
}

// make_event with a random id (test_id repeats after 16 events).
event fresh_event(body b) {
    auto e = make_event(std::move(b));
    e.id = new_event_id(t0());
    return e;
}

hazard_rectified rectified(std::string id) {
    hazard_rectified h;
    h.hazard_id = std::move(id);
    h.rectified_by = "caretaker";
    h.description = "已加固";
    return h;
}

hazard_verified verified(std::string id) {
    hazard_verified h;
    h.hazard_id = std::move(id);
    h.verifier = "safety_officer";
    h.result = verify_result::pass;
    h.evidence = "现场验收合格";
    return h;
}

} // namespace

TEST_CASE("a processor that throws mid-batch is rolled back with the transaction",
          "[engine_processor]") {
    temp_dir d;
    auto o = options_for(d);
    o.faults = std::make_shared<store_faults>();
    store s(o);
    auto p = make_processor();
    s.open_processor(*p);
    auto empty = state_text(p->state());

    // The hazard's apply opens an incident in the processor's cache; the
    // apply of its first derived event then throws.
    o.faults->fail_at(store_faults::point::apply, 2);
    std::vector<event> batch{make_event(hazard("HZ-1")), make_event(illness(2))};
    batch_output out;
    CHECK_THROWS_WITH(s.append(batch, t0(), p.get(), out), Catch::Contains("injected fault"));
    CHECK(out.results.empty());
    CHECK(out.stored.empty());
    CHECK(s.head() == 0);
    CHECK(p->state().incidents.empty());
    CHECK(state_text(p->state()) == empty);
    std::size_t rows = 0;
    s.scan_table("incidents", "", [&](auto, auto) { return ++rows, true; });
    CHECK(rows == 0);

    // The next batch commits, and the processor matches a fresh load of the tables.
    batch_output ok;
    s.append(batch, t0() + 1min, p.get(), ok);
    REQUIRE(ok.results.size() == 2);
    CHECK(ok.results[0].what == wire::outcome::stored);
    CHECK(p->state().incidents.size() == 2);
    auto fresh = make_processor();
    s.open_processor(*fresh);
    CHECK(state_text(fresh->state()) == state_text(p->state()));
}

TEST_CASE("a store failure after the processor changed its state leaves no cached state",
          "[engine_processor]") {
    // Count the puts of one hazard's transaction on a scratch store...
    std::uint64_t puts = 0;
    {
        temp_dir d;
        auto o = options_for(d);
        o.faults = std::make_shared<store_faults>();
        store s(o);
        auto p = make_processor();
        s.open_processor(*p);
        auto before = o.faults->reached(store_faults::point::put);
        append(s, *p, make_event(hazard("HZ-1")), t0());
        puts = o.faults->reached(store_faults::point::put) - before;
    }
    REQUIRE(puts > 4);
    // ...then fail the last but one of them: the incident was opened and saved by then.
    temp_dir d;
    auto o = options_for(d);
    o.faults = std::make_shared<store_faults>();
    store s(o);
    auto p = make_processor();
    s.open_processor(*p);
    o.faults->fail_at(store_faults::point::put, puts - 1);
    std::vector<event> batch{make_event(hazard("HZ-1"))};
    batch_output out;
    try {
        s.append(batch, t0(), p.get(), out);
        FAIL("the injected put failure was not reported");
    } catch (const error& e) {
        CHECK(e.code() == errc::store_failure);
    }
    CHECK(p->state().incidents.empty());
    CHECK(p->state().timers.empty());
    // Nothing waits but the drill calendar, to be scheduled at the next firing.
    CHECK(p->next_due() == timestamp{});
    CHECK(s.head() == 0);

    batch_output ok;
    s.append(batch, t0() + 1min, p.get(), ok);
    CHECK(p->state().incidents.size() == 1);
    CHECK(derived_of(ok, incident_opened::type).size() == 1);
}

TEST_CASE("a failed timer transaction keeps the timer pending", "[engine_processor]") {
    temp_dir d;
    auto o = options_for(d);
    o.faults = std::make_shared<store_faults>();
    store s(o);
    auto p = make_processor();
    s.open_processor(*p);
    append(s, *p, make_event(illness(2)), t0());
    auto head = s.head();
    o.faults->fail_at(store_faults::point::commit, 1);
    batch_output out;
    CHECK_THROWS_AS(s.fire_timers(t0() + 2h, *p, out), error);
    CHECK(s.head() == head);
    CHECK(p->next_due() == t0() + 2h);
    batch_output again;
    s.fire_timers(t0() + 2h, *p, again);
    CHECK(derived_of(again, notification_requested::type).size() == 2);
}

TEST_CASE("start-up loads the open incidents, not the closed history", "[engine_processor]") {
    temp_dir d;
    auto o = options_for(d);
    {
        store s(o);
        auto p = make_processor();
        s.open_processor(*p);
        auto t = t0();
        for (int i = 0; i < 20; ++i) {
            auto id = "HZ-" + std::to_string(i);
            append(s, *p, fresh_event(hazard(id)), t += 1min);
            append(s, *p, fresh_event(rectified(id)), t += 1min);
            append(s, *p, fresh_event(verified(id)), t += 1min);
        }
        append(s, *p, fresh_event(hazard("HZ-OPEN")), t += 1min);
        CHECK(p->state().incidents.size() == 21);
    }
    // Nothing of the events table is read either.
    o.faults = std::make_shared<store_faults>();
    o.faults->fail_at(store_faults::point::event_read, 1);
    store s(o);
    auto p = make_processor();
    s.open_processor(*p);
    REQUIRE(p->state().incidents.size() == 1);
    CHECK(p->state().incidents.begin()->second.subject == "HZ-OPEN");
    std::size_t rows = 0;
    s.scan_table("incidents", "", [&](auto, auto) { return ++rows, true; });
    CHECK(rows == 21);
}

TEST_CASE("a closed incident is read back when an event after a restart touches it",
          "[engine_processor]") {
    // The same inputs with and without a restart before the last one derive the same events.
    auto run = [](bool restart) {
        temp_dir d;
        auto o = options_for(d);
        auto t = t0();
        {
            store s(o);
            auto p = make_processor();
            s.open_processor(*p);
            append(s, *p, fresh_event(hazard("HZ-1")), t += 1min);
            append(s, *p, fresh_event(rectified("HZ-1")), t += 1min);
            append(s, *p, fresh_event(verified("HZ-1")), t += 1min);
            append(s, *p, fresh_event(hazard("HZ-2")), t += 1min);
            if (!restart) {
                auto again = fresh_event(hazard("HZ-1"));
                again.occurred_at = t + 1min;
                batch_output out;
                std::vector<event> b{again};
                s.append(b, t + 1min, p.get(), out);
                return std::make_pair(out, p->state().incidents.size());
            }
        }
        store s(o);
        auto p = make_processor();
        s.open_processor(*p);
        auto again = fresh_event(hazard("HZ-1"));
        again.occurred_at = t + 1min;
        batch_output out;
        std::vector<event> b{again};
        s.append(b, t + 1min, p.get(), out);
        return std::make_pair(out, p->state().incidents.size());
    };
    auto [straight, straight_n] = run(false);
    auto [restarted, restarted_n] = run(true);
    CHECK(derived_of(restarted, incident_reopened::type).size() == 1);
    CHECK(derived_of(restarted, incident_opened::type).empty());
    REQUIRE(restarted.stored.size() == straight.stored.size());
    for (std::size_t i = 0; i < straight.stored.size(); ++i) {
        event a, b;
        REQUIRE_FALSE(decode(straight.stored[i].bytes(), a));
        REQUIRE_FALSE(decode(restarted.stored[i].bytes(), b));
        CHECK(a.type() == b.type());
    }
    CHECK(restarted_n == straight_n);
}

namespace {

std::vector<stored_record> records_of(const store& s, std::uint64_t from = 1) {
    std::vector<stored_record> v;
    scan_filter f;
    f.from = from;
    s.scan(f, 1'000'000, [&](std::uint64_t o, std::string_view bytes) {
        std::string value(32, 'x'); // follow() ignores what stands before the bytes
        value.append(bytes);
        v.push_back({o, std::move(value)});
        return true;
    });
    return v;
}

std::map<std::string, std::string> table_of(const store& s, std::string_view name) {
    std::map<std::string, std::string> m;
    s.scan_table(name, "", [&](std::string_view k, std::string_view v) {
        m.emplace(k, v);
        return true;
    });
    return m;
}

} // namespace

TEST_CASE("a standby that follows a log's records has its chain, indexes and engine state",
          "[engine_processor][follow]") {
    temp_dir leader_dir, standby_dir;
    store leader(options_for(leader_dir));
    auto p = make_processor();
    leader.open_processor(*p);
    auto first = make_event(illness(2));
    append(leader, *p, first, t0());
    append(leader, *p, make_event(hazard("HZ-1", hazard_grade::major)), t0() + 1min);
    append(leader, *p, make_event(illness(3, "dinner"), "420502J002"), t0() + 1min);
    for (auto t : {t0() + 10min, t0() + 15min, t0() + 2h}) {
        batch_output out;
        leader.fire_timers(t, *p, out);
    }
    auto records = records_of(leader);
    REQUIRE(records.size() > 15);

    // The standby takes the records in runs that cut across the leader's transactions.
    {
        store standby(options_for(standby_dir));
        auto q = make_processor();
        standby.open_processor(*q);
        std::size_t i = 0, run = 1;
        while (i < records.size()) {
            auto n = std::min(run, records.size() - i);
            batch_output out;
            standby.follow(std::span(records).subspan(i, n), q.get(), out);
            REQUIRE(out.stored.size() == n);
            CHECK(out.stored.front().offset == records[i].offset);
            CHECK(out.stored.front().value.substr(0, 32) !=
                  std::string(32, 'x')); // the chain hash, made here
            i += n;
            run = run * 2 + 1;
        }
        REQUIRE(standby.head() == leader.head());
        auto v = standby.verify();
        CHECK(v.ok);
        CHECK(v.head_hash == leader.verify().head_hash);
        for (auto o : {std::uint64_t{1}, leader.head() / 2, leader.head()})
            CHECK(standby.hash_at(o) == leader.hash_at(o));
        CHECK(standby.stats().by_type == leader.stats().by_type);
        for (auto name : engine_processor::tables)
            CHECK(table_of(standby, name) == table_of(leader, name));
        // The time and district indexes answer as the leader's do.
        scan_filter f;
        f.from_time = t0() + 1min;
        f.to_time = t0() + 1min;
        CHECK(standby.range(f) == leader.range(f));
        f = scan_filter{};
        f.school = "420502J002";
        std::vector<std::uint64_t> a, b;
        leader.scan(f, 1000,
                    [&](std::uint64_t o, std::string_view) { return a.push_back(o), true; });
        standby.scan(f, 1000,
                     [&](std::uint64_t o, std::string_view) { return b.push_back(o), true; });
        CHECK_FALSE(a.empty());
        CHECK(a == b);
        // An event id the standby holds is a duplicate there too.
        CHECK(standby.find(first.id) == std::optional<std::uint64_t>(1));
    }

    // Promoted, the standby's engine fires the deadline the leader had pending,
    // exactly as the leader would.
    store standby(options_for(standby_dir));
    auto q = make_processor();
    standby.open_processor(*q);
    REQUIRE(q->next_due() == p->next_due());
    batch_output on_leader, on_standby;
    leader.fire_timers(t0() + 6h, *p, on_leader);
    standby.fire_timers(t0() + 6h, *q, on_standby);
    REQUIRE(on_leader.stored.size() == on_standby.stored.size());
    REQUIRE_FALSE(on_leader.stored.empty());
    for (std::size_t i = 0; i < on_leader.stored.size(); ++i)
        CHECK(on_leader.stored[i].value == on_standby.stored[i].value);
}

TEST_CASE("a standby refuses a gap, a reordering, a wrong offset and a repeated id",
          "[engine_processor][follow]") {
    temp_dir leader_dir, standby_dir;
    store leader(options_for(leader_dir));
    auto p = make_processor();
    leader.open_processor(*p);
    append(leader, *p, make_event(illness(2)), t0());
    append(leader, *p, make_event(hazard("HZ-1")), t0() + 1min);
    auto records = records_of(leader);
    REQUIRE(records.size() >= 5);
    store standby(options_for(standby_dir));
    auto q = make_processor();
    standby.open_processor(*q);
    auto refused = [&](std::vector<stored_record> v, std::string_view says) {
        batch_output out;
        try {
            standby.follow(v, q.get(), out);
            FAIL("follow took it");
        } catch (const error& x) {
            CHECK(x.code() == errc::bad_config);
            CHECK_THAT(x.what(), Catch::Contains(std::string(says)));
        }
        CHECK(out.stored.empty());
    };
    refused({records[1]}, "does not follow the head 0");
    refused({records[0], records[2]}, "record at offset 3 does not follow the head 1");
    auto moved = records[1];
    moved.offset = 1;
    refused({moved}, "names offset 2 in its bytes");
    batch_output out;
    standby.follow(std::span(records).first(2), q.get(), out);
    // The same first record again, renumbered as the next offset.
    auto again = records[0];
    again.offset = 3;
    patch_broker_fields(again.value.data() + 32, received_at_position(again.bytes()).value(), 3,
                        t0() + 48h);
    refused({again}, "repeats the id");
    CHECK(standby.head() == 2);
    CHECK(standby.verify().ok);
}

namespace {

// A state store in memory that counts the writes to each table.
class counting_state : public state_store {
  public:
    std::optional<std::string> get(std::string_view table, std::string_view key) override {
        auto it = rows_.find(row(table, key));
        if (it == rows_.end()) return std::nullopt;
        return it->second;
    }
    void put(std::string_view table, std::string_view key, std::string_view value) override {
        ++writes[std::string(table)];
        rows_[row(table, key)] = std::string(value);
    }
    bool del(std::string_view table, std::string_view key) override {
        ++writes[std::string(table)];
        return rows_.erase(row(table, key)) > 0;
    }
    void scan(std::string_view table, std::string_view from,
              const std::function<bool(std::string_view, std::string_view)>& f) override {
        auto prefix = std::string(table) + '\0';
        for (auto it = rows_.lower_bound(prefix + std::string(from));
             it != rows_.end() && it->first.starts_with(prefix); ++it)
            if (!f(std::string_view(it->first).substr(prefix.size()), it->second)) return;
    }
    std::size_t rows(std::string_view table) const {
        auto prefix = std::string(table) + '\0';
        std::size_t n = 0;
        for (auto it = rows_.lower_bound(prefix);
             it != rows_.end() && it->first.starts_with(prefix); ++it)
            ++n;
        return n;
    }
    std::map<std::string, int> writes;

  private:
    static std::string row(std::string_view table, std::string_view key) {
        return std::string(table) + '\0' + std::string(key);
    }
    std::map<std::string, std::string> rows_;
};

event cold_reading(double celsius, int minute) {
    food_temp_reading r;
    r.canteen_id = "C1";
    r.sensor_id = "S1";
    r.zone = food_zone::cold_storage;
    r.celsius = celsius;
    auto e = make_event(r);
    e.occurred_at = e.received_at = t0() + std::chrono::minutes(minute);
    return e;
}

} // namespace

TEST_CASE("a reading that changes no rule's state writes nothing to the engine's table",
          "[engine_processor]") {
    counting_state s;
    auto p = make_processor();
    p->open(s);
    std::vector<event> derived;
    auto apply = [&](double celsius, int minute) {
        s.writes.clear();
        p->apply(cold_reading(celsius, minute), s, derived);
        return s.writes["engine"];
    };
    // The first event announces the rule set (its record and its hash).
    apply(4, 0);
    derived.clear();
    auto before = s.rows("engine");
    // In range, nothing held: no write (it was a delete per sustained rule).
    CHECK(apply(5, 1) == 0);
    // Out of range: each of the pack's two sustained cold-chain rules starts a run.
    CHECK(apply(12, 2) == 2);
    CHECK(s.rows("engine") == before + 2);
    // Still out of range, well before 30 minutes: the runs are unchanged.
    CHECK(apply(12, 3) == 0);
    // Back in range: both runs end and are deleted, once.
    CHECK(apply(4, 4) == 2);
    CHECK(s.rows("engine") == before);
    CHECK(apply(4, 5) == 0);
    CHECK(derived.empty());
}

TEST_CASE("a cold-chain run held before a restart opens its incident after it",
          "[engine_processor]") {
    counting_state s;
    std::vector<event> derived;
    {
        auto p = make_processor();
        p->open(s);
        p->apply(cold_reading(4, 0), s, derived);
        p->apply(cold_reading(12, 1), s, derived); // the runs start, and are written
    }
    derived.clear();
    auto p = make_processor();
    p->open(s);
    // Held since minute 1: at minute 32 the 30-minute rule opens its incident.
    p->apply(cold_reading(12, 32), s, derived);
    CHECK(of_type(derived, "incident.opened").size() == 1);
}
