// Black-box tests of `pingan rules check` and `pingan rules replay`, and of the
// what-if sandbox behind replay, on a real store written through the engine.
#include "broker/engine/engine_processor.hpp"
#include "broker/engine/rules_replay.hpp"
#include "broker/store/store.hpp"
#include "engine_support.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sys/wait.h>
#include <unistd.h>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;

namespace {

struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(const std::string& tag) {
        path = std::filesystem::temp_directory_path() /
               ("pingan-rules-cli-" + tag + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

struct run_result {
    int code = -1;
    std::string out;
};

// Runs the pingan tool with `args`; stdout (and stderr, when asked) captured.
run_result pingan_cli(const std::string& args, bool with_stderr = false) {
    std::string cmd =
        std::string(PINGAN_BIN_DIR) + "/pingan " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
    run_result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::array<char, 4096> buf;
    while (auto n = std::fread(buf.data(), 1, buf.size(), p))
        r.out.append(buf.data(), n);
    int status = ::pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

// A store with a day of events: a food illness acknowledged late, a hazard,
// and the timers the broker fired.
void fill_store(const std::string& dir) {
    store_options o;
    o.path = dir;
    o.initial_map_size = 64ull << 20;
    store s(o);
    engine_processor p(default_pack(), small_registry());
    s.open_processor(p);
    auto put = [&](event e, timestamp t) {
        batch_output out;
        std::vector<event> b{std::move(e)};
        s.append(b, t, &p, out);
    };
    put(make_event(illness(2)), t0());
    put(make_event(hazard("HZ-1")), t0() + 1min);
    batch_output out;
    s.fire_timers(t0() + 2h, p, out);
    put(make_event(ack("canteen-1/2026-11-02-lunch")), t0() + 3h);
}

} // namespace

TEST_CASE("rules check accepts the default pack and exits 0", "[rules_cli]") {
    auto r = pingan_cli("rules check " + source_path("config/rules/yichang-default.yaml"));
    CHECK(r.code == 0);
    CHECK(r.out.find("ok: yichang-campus-safety-default") != std::string::npos);
}

TEST_CASE("rules check lists each error with file, line and expectation, and exits 1",
          "[rules_cli]") {
    temp_dir d("check");
    auto text = default_pack_text();
    text.replace(text.find("eq: illness"), 11, "eq: illnes");
    write_file(d.path / "bad.yaml", text);
    auto r = pingan_cli("rules check " + (d.path / "bad.yaml").string());
    CHECK(r.code == 1);
    std::regex line(R"(bad\.yaml:\d+:\d+: kind: "illnes" is not one of illness, sample)");
    CHECK(std::regex_search(r.out, line));
    CHECK(r.out.find("1 error") != std::string::npos);
    CHECK(pingan_cli("rules check /nonexistent.yaml").code == 2);
}

TEST_CASE("rules replay prints what the rules would have raised and sends nothing", "[rules_cli]") {
    temp_dir d("replay");
    fill_store((d.path / "store").string());
    auto r = pingan_cli("rules replay --json --rules " +
                            source_path("config/rules/yichang-default.yaml") + " --data " +
                            (d.path / "store").string() + " --until 2026-11-02T06:00:00Z",
                        false);
    REQUIRE(r.code == 0);
    std::size_t pages = 0;
    std::istringstream in(r.out);
    std::string l;
    while (std::getline(in, l)) {
        json j;
        REQUIRE_FALSE(parse_json(l, j));
        if (j["type"] == "notification.requested") ++pages;
    }
    // Food: school at once, district and regulators at 2 h; hazard: safety officer.
    CHECK(pages == 4);
}

TEST_CASE("rules replay --diff shows the pages a changed rule set adds and removes",
          "[rules_cli]") {
    temp_dir d("diff");
    fill_store((d.path / "store").string());
    auto text = default_pack_text();
    // Give the county 4 hours instead of 2 for food illness.
    auto pos = text.find("        after: 2h\n        until: acknowledged\n        text: "
                         "\"{title}：2小时报告时限已到，请县级教育局处置\"");
    REQUIRE(pos != std::string::npos);
    text.replace(pos, 17, "        after: 4h");
    write_file(d.path / "tuned.yaml", text);
    auto r = pingan_cli("rules replay --diff --rules " + (d.path / "tuned.yaml").string() +
                        " --data " + (d.path / "store").string() + " --until 2026-11-02T06:00:00Z");
    REQUIRE(r.code == 0);
    CHECK(r.out.find("pages added by these rules: 0") != std::string::npos);
    CHECK(r.out.find("pages in the log these rules would not make: 1") != std::string::npos);
    CHECK(r.out.find("food.illness  district [county_bureau]") != std::string::npos);
}

TEST_CASE("rules replay --diff compares every page's time, not only each school's first",
          "[rules_cli]") {
    temp_dir d("diff-time");
    fill_store((d.path / "store").string());
    auto text = default_pack_text();
    // The county's page comes at 90 minutes instead of 2 hours: the same page, earlier.
    auto pos = text.find("        after: 2h\n        until: acknowledged\n        text: "
                         "\"{title}：2小时报告时限已到，请县级教育局处置\"");
    REQUIRE(pos != std::string::npos);
    text.replace(pos, 17, "        after: 90m");
    write_file(d.path / "tuned.yaml", text);
    auto r = pingan_cli("rules replay --diff --rules " + (d.path / "tuned.yaml").string() +
                        " --data " + (d.path / "store").string() + " --until 2026-11-02T06:00:00Z");
    REQUIRE(r.code == 0);
    INFO(r.out);
    CHECK(r.out.find("pages added by these rules: 0") != std::string::npos);
    CHECK(r.out.find("pages in the log these rules would not make: 0") != std::string::npos);
    CHECK(r.out.find("pages at another time or lateness (log -> these rules): 1\n  2026-11-02 "
                     "11:00:00 CST -> 2026-11-02 10:30:00 CST  420502J001  food.illness  "
                     "district [county_bureau]") != std::string::npos);
    // The school's first page (the food illness at once) did not move.
    CHECK(r.out.find("first page per school (log -> these rules):\n") != std::string::npos);
    CHECK(r.out.substr(r.out.find("first page per school")).find("420502J001") ==
          std::string::npos);
}

TEST_CASE("a page made late and on time differs in the diff", "[rules_cli]") {
    auto page_at = [](timestamp t, bool late) {
        event e = make_event(notification_requested{});
        auto& n = std::get<notification_requested>(e.body);
        n.incident_id = "INC-1";
        n.rule_id = "food.illness";
        n.tier = tier::district;
        n.roles = {"county_bureau"};
        n.late = late;
        e.received_at = t;
        return e;
    };
    auto d = diff_pages({page_at(t0(), true)}, {page_at(t0(), false)});
    CHECK(d.added.empty());
    CHECK(d.removed.empty());
    CHECK(d.changed.size() == 1);
    d = diff_pages({page_at(t0(), false)}, {page_at(t0(), false), page_at(t0() + 1h, false)});
    CHECK(d.changed.empty());
    CHECK(d.added.size() == 1);
}

TEST_CASE("the sandbox with the log's timers reproduces the log's pages exactly", "[rules_cli]") {
    temp_dir d("sandbox");
    fill_store((d.path / "store").string());
    store_options o;
    o.path = (d.path / "store").string();
    store s(o);
    sandbox same(default_pack(), small_registry(), true);
    s.scan(scan_filter{}, 100000, [&](std::uint64_t, std::string_view bytes) {
        event e;
        REQUIRE_FALSE(decode(bytes, e));
        same.feed(e);
        return true;
    });
    auto diff = diff_pages(same.logged(), same.derived());
    CHECK(diff.added.empty());
    CHECK(diff.removed.empty());
    CHECK(bodies<notification_requested>(same.derived()).size() == 4);
    // Everything the log derived (except the rule set announcement) is reproduced.
    REQUIRE(same.logged().size() == same.derived().size() + 1);
    for (std::size_t i = 0; i < same.derived().size(); ++i) {
        auto logged = same.logged()[i + 1];
        auto made = same.derived()[i];
        made.offset = logged.offset;
        CHECK(encode(made) == encode(logged));
    }
}

TEST_CASE("incidents list and show read the engine's incidents from the data directory",
          "[rules_cli]") {
    temp_dir d("incidents");
    fill_store((d.path / "store").string());
    auto data = " --data " + (d.path / "store").string();
    auto r = pingan_cli("incidents list --json" + data);
    REQUIRE(r.code == 0);
    std::vector<json> rows;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);) {
        json j;
        REQUIRE_FALSE(parse_json(l, j));
        rows.push_back(j);
    }
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["kind"] == "food_illness");
    CHECK(rows[0]["state"] == "acknowledged");
    CHECK(rows[1]["kind"] == "hazard");
    CHECK(rows[1]["state"] == "open");
    auto text = pingan_cli("incidents list --open --kind hazard" + data);
    CHECK(text.out.find("HZ-1") != std::string::npos);
    CHECK(text.out.find("西陵第1初级中学") != std::string::npos); // named from the registry
    auto show = pingan_cli("incidents show HZ-1 --json --school 420502J001" + data);
    REQUIRE(show.code == 0);
    json j;
    REQUIRE_FALSE(parse_json(show.out, j));
    CHECK(j["subject"] == "HZ-1");
    CHECK(j["id"] == rows[1]["id"]);
    CHECK(pingan_cli("incidents show NOPE" + data).code == 1);
}
