// Restart benchmark: see restart_bench.hpp.
#include "tools/bench/restart_bench.hpp"

#include "broker/engine/engine_processor.hpp"
#include "broker/engine/rules.hpp"
#include "broker/store/store.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>

namespace pingan {
namespace {

using steady = std::chrono::steady_clock;

event base_event(const registry& reg, std::size_t i, timestamp t) {
    const auto& s = reg.schools()[i % reg.size()];
    event e;
    std::array<std::uint8_t, 10> r{};
    for (int b = 0; b < 8; ++b)
        r[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(i >> (8 * b));
    r[8] = 0xbe;
    e.id = event_id::v7(t, r);
    e.school = s.id;
    e.district = s.district_code;
    e.source = "pingan-bench/restart";
    e.occurred_at = t;
    e.status = status::actual;
    e.severity = severity::minor;
    e.scope = scope::restricted;
    return e;
}

event_id derived_id_of(std::size_t i, std::uint8_t step, timestamp t) {
    std::array<std::uint8_t, 10> r{};
    for (int b = 0; b < 8; ++b)
        r[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(i >> (8 * b));
    r[8] = step;
    return event_id::v7(t, r);
}

// Input number `i` of a term: mostly readings; every tenth a hazard report,
// rectified and then verified (by someone else) a few inputs later.
event input(const registry& reg, std::size_t i, timestamp t) {
    auto e = base_event(reg, i, t);
    auto hazard_of = [](std::size_t n) { return "HZ-B" + std::to_string(n / 10); };
    switch (i % 10) {
    case 0: {
        hazard_reported h;
        h.hazard_id = hazard_of(i);
        h.area = hazard_area::building;
        h.grade = hazard_grade::general;
        h.description = "护栏松动";
        h.location = "教学楼";
        h.found_by = "safety_officer";
        e.severity = severity::moderate;
        e.body = std::move(h);
        break;
    }
    case 3: { // rectifies the hazard of input i - 3, same school
        e = base_event(reg, i - 3, t);
        e.id = derived_id_of(i, 3, t);
        hazard_rectified h;
        h.hazard_id = hazard_of(i);
        h.rectified_by = "caretaker";
        h.description = "已加固";
        e.body = std::move(h);
        break;
    }
    case 6: { // verifies it
        e = base_event(reg, i - 6, t);
        e.id = derived_id_of(i, 6, t);
        hazard_verified h;
        h.hazard_id = hazard_of(i);
        h.verifier = "safety_officer";
        h.result = verify_result::pass;
        h.evidence = "现场验收合格";
        e.body = std::move(h);
        break;
    }
    default: {
        food_temp_reading b;
        b.canteen_id = e.school + "-canteen";
        b.sensor_id = "cold-" + std::to_string(i % 4);
        b.zone = food_zone::cold_storage;
        b.celsius = 3.5 + static_cast<double>(i % 10) / 10.0;
        e.body = std::move(b);
    }
    }
    return e;
}

store_options options(const std::string& path) {
    store_options o;
    o.path = path;
    o.initial_map_size = std::size_t{8} << 30;
    o.processor_tables.assign(engine_processor::tables.begin(), engine_processor::tables.end());
    return o;
}

} // namespace

json bench_restart(const registry& reg, const std::string& rules_yaml, const std::string& dir,
                   std::size_t records) {
    auto parsed = rules::parse(rules_yaml);
    if (!parsed.errors.empty())
        throw error(errc::bad_config, "bench rules: " + parsed.errors.front().text());
    std::shared_ptr<const registry> r(&reg, [](const registry*) {});
    auto path = (std::filesystem::path(dir) / "restart").string();
    std::filesystem::remove_all(path);

    // Fill: one transaction per 1,000 inputs, a second of broker time per input.
    auto t = *parse_utc("2026-09-01T00:00:00Z");
    std::uint64_t head = 0;
    std::size_t inputs = 0;
    auto fill_start = steady::now();
    {
        store s(options(path));
        engine_processor proc(parsed.rules, r);
        s.open_processor(proc);
        while (head < records) {
            std::vector<event> batch;
            for (int k = 0; k < 1000; ++k, ++inputs)
                batch.push_back(input(reg, inputs, t + std::chrono::seconds(inputs)));
            batch_output out;
            s.append(batch, t + std::chrono::seconds(inputs), &proc, out);
            head = s.head();
        }
    }
    double fill_s = std::chrono::duration<double>(steady::now() - fill_start).count();

    // Restart: open the store and load the engine, as the broker does.
    std::vector<double> ms;
    std::size_t incidents = 0, open_incidents = 0;
    for (int round = 0; round < 5; ++round) {
        auto start = steady::now();
        store s(options(path));
        engine_processor proc(parsed.rules, r);
        s.open_processor(proc);
        ms.push_back(std::chrono::duration<double, std::milli>(steady::now() - start).count());
        incidents = 0;
        s.scan_table("incidents", "", [&](std::string_view, std::string_view) {
            ++incidents;
            return true;
        });
        open_incidents = 0;
        for (const auto& [id, i] : proc.state().incidents)
            if (!i.closed) ++open_incidents;
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    std::filesystem::remove_all(path);
    std::printf("restart (open the store and load the engine's state, median of %zu)\n"
                "  %-34s %10.1f ms   (%llu records, %zu incidents, %zu open; filled in %.1f s)\n",
                ms.size(), ("at " + std::to_string(head) + " records").c_str(), median,
                static_cast<unsigned long long>(head), incidents, open_incidents, fill_s);
    return json{{"records", head},
                {"incidents", incidents},
                {"open_incidents", open_incidents},
                {"restart_ms", median}};
}

} // namespace pingan
