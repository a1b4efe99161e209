// Black-box tests of `pingan report`: a scripted term on a real broker with a
// manual clock, the numbers checked, and the HTML rendered by headless chromium.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <thread>

using namespace pingan;
using namespace pingan::test;

namespace {

// Autumn term 2026, from 2026-10-12 09:00 CST to 2026-10-14 10:00:
//   420502K001 (kindergarten): hazard HZ-A acknowledged after 10 min, rectified in time;
//     a fire drill on 10-12;
//   420502P001 (primary): hazard HZ-B acknowledged after 30 min, never rectified: overdue;
//   420503P001: hazard HZ-C acknowledged after 60 min, due in 7 days;
//   420504P001: two cold-chain alerts, one illness alert, one orange psychological alert.
struct scripted_term {
    temp_dir d;
    broker_process b;
    zmq::context_t ctx{1};
    query_client q;

    scripted_term()
        : b(d / "store", {"--rules", source_path("config/rules/yichang-default.yaml"), "--clock",
                          "manual:2026-10-12T09:00:00+08:00"}),
          q(ctx, b.query) {
        b.export_env();
        hazard("420502K001", "HZ-A", "2026-10-13T09:00:00+08:00");
        hazard("420502P001", "HZ-B", "2026-10-13T09:00:00+08:00");
        hazard("420503P001", "HZ-C", "");
        drill("420502K001");
        food("cold_chain");
        food("cold_chain");
        food("illness");
        publish({{"type", "psych.alert"},
                 {"school", "420504P001"},
                 {"status", "Actual"},
                 {"scope", "Private"},
                 {"body",
                  {{"alert_id", "PA-1"},
                   {"student_ref", "S-7f3a"},
                   {"risk_level", "orange"},
                   {"source", "teacher"},
                   {"reported_by_role", "psych_teacher"}}}});
        advance("10m");
        ack("420502K001", "HZ-A");
        advance("20m");
        ack("420502P001", "HZ-B");
        advance("30m");
        ack("420503P001", "HZ-C");
        advance("2h");
        publish({{"type", "hazard.rectified"},
                 {"school", "420502K001"},
                 {"status", "Actual"},
                 {"body",
                  {{"hazard_id", "HZ-A"}, {"rectified_by", "wang"}, {"description", "已修复"}}}});
        q.clock({{"set", "2026-10-14T10:00:00+08:00"}});
        REQUIRE(eventually([&] {
            auto by = q.stats()["by_type"];
            return by.contains("incident.overdue") &&
                   by["incident.overdue"].get<std::uint64_t>() >= 1;
        }));
    }

    std::string now() { return q.clock(json::object())["now"].get<std::string>(); }
    void advance(const std::string& d) { q.clock({{"advance", d}}); }
    void publish(json e) {
        e["occurred_at"] = now();
        auto r = run({"publish", e.dump()});
        INFO(e.dump());
        REQUIRE(r.code == 0);
    }
    void hazard(const std::string& school, const std::string& id, const std::string& deadline) {
        json body = {{"hazard_id", id},      {"area", "building"},
                     {"grade", "general"},   {"description", "墙面开裂"},
                     {"location", "教学楼"}, {"found_by", "safety_officer"}};
        if (!deadline.empty()) body["deadline"] = deadline;
        publish({{"type", "hazard.reported"},
                 {"school", school},
                 {"status", "Actual"},
                 {"body", body}});
    }
    void drill(const std::string& school) {
        auto t = now();
        publish({{"type", "drill.recorded"},
                 {"school", school},
                 {"status", "Actual"},
                 {"body",
                  {{"drill_id", "DR-1"},
                   {"drill_type", "fire"},
                   {"mode", "live"},
                   {"started_at", t},
                   {"all_clear_at", t},
                   {"evacuation_seconds", 90},
                   {"target_seconds", 120},
                   {"participants", 200},
                   {"headcount_expected", 200},
                   {"headcount_reported", 200}}}});
    }
    void food(const std::string& kind) {
        publish(
            {{"type", "food.alert"},
             {"school", "420504P001"},
             {"status", "Actual"},
             {"body", {{"canteen_id", "C1"}, {"kind", kind}, {"description", "冷藏温度异常"}}}});
    }
    void ack(const std::string& school, const std::string& hazard_id) {
        REQUIRE(run({"incidents", "ack", hazard_id, "--school", school}).code == 0);
    }
};

// The CSV report's tables: id -> rows (each a vector of cells), header first.
std::map<std::string, std::vector<std::vector<std::string>>> tables_of(const std::string& csv) {
    std::map<std::string, std::vector<std::vector<std::string>>> out;
    std::string current;
    std::istringstream in(csv.substr(3)); // the BOM
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
            current.clear();
            continue;
        }
        std::vector<std::string> cells;
        std::string cell;
        bool quoted = false;
        for (char c : line) {
            if (c == '"') {
                quoted = !quoted;
            } else if (c == ',' && !quoted) {
                cells.push_back(cell);
                cell.clear();
            } else {
                cell += c;
            }
        }
        cells.push_back(cell);
        if (current.empty()) {
            current = cells[0];
            continue;
        }
        out[current].push_back(cells);
    }
    return out;
}

std::vector<std::string> row_of(const std::vector<std::vector<std::string>>& t,
                                const std::string& key) {
    for (const auto& r : t)
        if (!r.empty() && r[0] == key) return r;
    return {};
}

} // namespace

TEST_CASE("the term report counts response times, overdue deadlines, drills, hazards, food and "
          "psychological alerts",
          "[report]") {
    scripted_term s;
    auto file = s.d / "report.csv";
    auto r = run({"report", "--term", "2026-autumn", "--format", "csv", "--out", file});
    INFO((r.lines.empty() ? std::string() : r.lines[0]));
    REQUIRE(r.code == 0);
    auto t = tables_of(read_file(file));
    // Response times (minutes): 420502 had 10 and 30, 420503 had 60.
    CHECK(row_of(t["response_district"], "420502") ==
          std::vector<std::string>{"420502", "西陵区", "2", "2", "0", "10.0", "30.0"});
    auto d3 = row_of(t["response_district"], "420503");
    REQUIRE(d3.size() == 7);
    CHECK(d3[5] == "60.0");
    auto k = row_of(t["response_school"], "420502K001");
    REQUIRE(k.size() == 8);
    CHECK(k[6] == "10.0");
    CHECK(row_of(t["overdue_school"], "420502P001").at(2) == "1");
    CHECK(row_of(t["overdue_school"], "420502K001").empty());
    // Drills: a kindergarten drills each quarter (Q3 and Q4 have begun), a primary school each
    // month (September and October).
    CHECK(row_of(t["drills"], "420502K001") ==
          std::vector<std::string>{"420502K001", "西陵区第1幼儿园", "kindergarten", "1", "2", "1",
                                   "50"});
    CHECK(row_of(t["drills"], "420502P001").at(5) == "0");
    CHECK(row_of(t["hazards"], "420502") ==
          std::vector<std::string>{"420502", "西陵区", "1", "0", "1", "0", "50"});
    CHECK(row_of(t["hazards"], "420503").at(5) == "1");
    CHECK(row_of(t["food"], "cold_chain").at(2) == "2");
    CHECK(row_of(t["food"], "illness").at(2) == "1");
    CHECK(row_of(t["psych"], "orange").at(2) == "1");
    CHECK(row_of(t["psych"], "red").at(2) == "0");
    // Never a student reference.
    CHECK(read_file(file).find("S-7f3a") == std::string::npos);

    // One district only.
    auto only = run({"report", "--term", "2026-autumn", "--district", "420503", "--format", "csv",
                     "--data", s.d / "store", "--out", s.d / "d3.csv"});
    REQUIRE(only.code == 0);
    auto t3 = tables_of(read_file(s.d / "d3.csv"));
    CHECK(row_of(t3["response_district"], "420502").empty());
    CHECK(row_of(t3["response_district"], "420503").at(5) == "60.0");
    CHECK(row_of(t3["drills"], "420502K001").empty());
}

TEST_CASE("the term report is one self-contained HTML file that chromium renders", "[report]") {
    scripted_term s;
    auto html = s.d / "report.html";
    auto r = run({"report", "--term", "2026-autumn", "--data", s.d / "store", "--out", html});
    REQUIRE(r.code == 0);
    auto text = read_file(html);
    CHECK(text.starts_with("<!DOCTYPE html>"));
    CHECK(text.find("<svg") != std::string::npos);
    CHECK(text.find("响应时间") != std::string::npos);
    CHECK(text.find("心理预警") != std::string::npos);
    // Nothing to fetch: no external script, style, image or font.
    CHECK_FALSE(std::regex_search(text, std::regex(R"((src|href)\s*=)")));
    CHECK(text.find("url(") == std::string::npos);
    CHECK(text.find("S-7f3a") == std::string::npos);

    REQUIRE(std::filesystem::exists("/usr/bin/chromium"));
    auto png = s.d / "report.png";
    process c({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
               "--user-data-dir=" + (s.d / "chromium"), "--window-size=1200,2400",
               "--screenshot=" + png, "file://" + html});
    c.lines(std::chrono::seconds(90));
    CHECK(c.wait() == 0);
    REQUIRE(std::filesystem::exists(png));
    auto bytes = read_file(png);
    CHECK(bytes.substr(0, 8) == "\x89PNG\r\n\x1a\n");
    CHECK(bytes.size() > 10000);
    // Kept for people to look at.
    std::filesystem::create_directories(std::string(PINGAN_BIN_DIR) + "/../screenshots");
    std::filesystem::copy_file(png, std::string(PINGAN_BIN_DIR) + "/../screenshots/term-report.png",
                               std::filesystem::copy_options::overwrite_existing);

    auto bad = run({"report", "--term", "autumn"});
    CHECK(bad.code == 2);
}
