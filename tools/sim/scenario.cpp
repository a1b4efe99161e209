// The simulated term: readings, hazards, drills, meals, psych alerts, buses.
#include "scenario.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace pingan::sim {
namespace {

using namespace std::chrono_literals;

constexpr micros cst_offset = 8h;

std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::uint64_t hash_str(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s)
        h = (h ^ c) * 1099511628211ULL;
    return h;
}

std::string fixed1(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

const char* hazard_texts[][3] = {
    {"building", "二楼走廊护栏松动", "教学楼二楼"}, {"fire", "灭火器压力不足", "实验楼一楼"},
    {"fire", "安全出口指示灯损坏", "宿舍楼三楼"},   {"utilities", "配电箱未上锁", "食堂后门"},
    {"surroundings", "校门口占道经营", "学校正门"}, {"traffic", "校车停靠点无护栏", "东门"},
    {"lab", "化学品柜未双人双锁", "化学实验室"},    {"equipment", "电梯年检即将到期", "综合楼"},
    {"food", "食堂冷库门封条老化", "食堂冷库"},     {"building", "操场围墙出现裂缝", "操场北侧"},
};
const char* indicators[] = {"SLEEP-2", "MOOD-1",   "WITHDRAW-1", "ACADEMIC-3",
                            "SH-1",    "FAMILY-2", "PEER-1"};
const char* dishes[] = {"番茄炒蛋", "红烧肉", "清炒时蔬", "米饭", "紫菜蛋汤"};

} // namespace

std::string_view target_name(target t) noexcept {
    switch (t) {
    case target::hazard:
        return "hazard";
    case target::drill:
        return "drill";
    case target::canteen_http:
        return "canteen";
    case target::canteen_line:
        return "canteen-line";
    case target::wellbeing:
        return "wellbeing";
    case target::broker:
        return "broker";
    }
    return "?";
}

scenario::scenario(const registry& r, options o) : reg_(r), o_(o) {
    const auto& all = r.schools();
    if (o_.schools == 0 || o_.schools >= all.size()) {
        for (const auto& s : all)
            schools_.push_back(&s);
    } else {
        // An even spread over the registry, so that every district takes part.
        for (std::size_t i = 0; i < o_.schools; ++i)
            schools_.push_back(&all[i * all.size() / o_.schools]);
    }
}

std::mt19937_64 scenario::rng_for(std::uint64_t a, std::uint64_t b) const {
    return std::mt19937_64(mix(o_.seed ^ mix(a ^ mix(b))));
}

std::string scenario::supplier_of(const school& s) const {
    char buf[16];
    std::snprintf(buf, sizeof buf, "SUP-%02u",
                  static_cast<unsigned>(mix(hash_str(s.district_code) ^ o_.seed) % 3 +
                                        3 * (hash_str(s.id) % 7)));
    return buf;
}

std::vector<action> scenario::next_tick() {
    auto t0 = o_.start + o_.tick * static_cast<std::int64_t>(tick_);
    auto t1 = t0 + o_.tick;
    std::vector<action> out;
    // Midnight (Asia/Shanghai) falls in this tick: plan the day.
    auto local = t0 + cst_offset;
    auto day_start = std::chrono::floor<std::chrono::days>(local);
    if (local - day_start < o_.tick) daily(timestamp(day_start - cst_offset), out);
    readings(t0, out);
    hazards(t0, out);
    psych(t0, out);
    ++tick_;
    for (auto it = later_.begin(); it != later_.end() && it->first < t1;) {
        out.push_back(std::move(it->second));
        it = later_.erase(it);
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const action& a, const action& b) { return a.at < b.at; });
    // Anything planned for later than this tick waits for its own.
    std::vector<action> now;
    for (auto& a : out) {
        if (a.at >= t1)
            later_.emplace(a.at, std::move(a));
        else
            now.push_back(std::move(a));
    }
    return now;
}

void scenario::readings(timestamp t0, std::vector<action>& out) {
    auto rng = rng_for(tick_, 1);
    std::normal_distribution<double> noise(0, 0.4);
    auto minutes = std::chrono::duration_cast<std::chrono::minutes>(t0 - o_.start).count();
    for (const auto* s : schools_) {
        if (!s->canteen) continue;
        auto h = hash_str(s->id) ^ o_.seed;
        double fridge = 3.5 + noise(rng);
        double freezer = -18 + noise(rng);
        // A few faulty fridges: one warms up for 90 minutes at 10:00 on the
        // first day; another hovers at the 8 °C threshold all morning.
        if (h % 83 == 0 && minutes >= 120 && minutes < 210) fridge = 10.5 + noise(rng);
        if (h % 89 == 1 && minutes >= 60 && minutes < 300) fridge = (tick_ % 2 ? 8.3 : 7.6);
        auto at = format_utc(t0);
        out.push_back({t0,
                       target::canteen_line,
                       {},
                       {},
                       s->id + "-main fridge-1 cold_storage " + fixed1(fridge) + " " + at});
        out.push_back({t0,
                       target::canteen_line,
                       {},
                       {},
                       s->id + "-main freezer-1 freezer " + fixed1(freezer) + " " + at});
    }
}

void scenario::daily(timestamp day, std::vector<action>& out) {
    auto day_no = std::chrono::duration_cast<std::chrono::days>(day - o_.start).count() + 1;
    auto rng = rng_for(tick_, 2);
    std::uniform_real_distribution<double> u(0, 1);
    auto local = [&](int h, int m) {
        return day + std::chrono::hours(h) + std::chrono::minutes(m);
    };
    auto date = format_utc(day + cst_offset).substr(0, 10);

    for (const auto* s : schools_) {
        auto h = mix(hash_str(s->id) ^ o_.seed);
        // Drills: each school on its own day of the month; some never do.
        bool overdue = static_cast<double>(h % 1000) / 1000.0 < o_.overdue_drill_share;
        if (!overdue && static_cast<std::int64_t>(h % 20) + 1 == day_no % 28) {
            auto start = local(10, static_cast<int>(h % 50));
            auto target = evacuation_target_seconds(*s);
            auto evac = static_cast<int>(target * (0.7 + 0.55 * u(rng)));
            json problems = json::array();
            if (u(rng) < 0.3) problems.push_back("东侧楼梯通道堆放杂物");
            if (u(rng) < 0.1)
                problems.push_back({{"description", "应急照明不亮"}, {"area", "fire"}});
            std::uint32_t reported = s->students - (u(rng) < 0.05 ? 1 : 0);
            bool bus = s->school_bus && u(rng) < 0.3;
            out.push_back({start,
                           target::drill,
                           "/drill/record",
                           {{"school", s->id},
                            {"drill_type", bus ? "bus" : (u(rng) < 0.7 ? "fire" : "earthquake")},
                            {"mode", "live"},
                            {"announced", u(rng) < 0.5},
                            {"started_at", format_utc(start)},
                            {"all_clear_at", format_utc(start + std::chrono::seconds(evac))},
                            {"participants", s->students},
                            {"headcount_expected", s->students},
                            {"headcount_reported", reported},
                            {"problems", problems},
                            {"simulated_alarm", u(rng) < 0.3}},
                           {}});
        }
        if (s->canteen) {
            auto lunch = local(12, static_cast<int>(h % 30));
            auto meal = date + "-lunch";
            out.push_back({lunch,
                           target::canteen_http,
                           "/canteen/sample",
                           {{"school", s->id},
                            {"occurred_at", format_utc(lunch)},
                            {"meal_id", meal},
                            {"dish", dishes[h % 5]},
                            {"grams", u(rng) < 0.03 ? 100 : 125 + static_cast<int>(h % 60)}},
                           {}});
            if (u(rng) < 0.95)
                out.push_back({lunch + 5min,
                               target::canteen_http,
                               "/canteen/accompany",
                               {{"school", s->id},
                                {"occurred_at", format_utc(lunch + 5min)},
                                {"meal_id", meal},
                                // The reporter is the intake credential's role.
                                {"leader", "safety_vp"},
                                {"leader_role", "safety_vp"},
                                {"remarks", "饭菜温度适宜"}},
                               {}});
        }
        if (s->school_bus) {
            for (auto [hh, mm] : {std::pair{7, 10}, std::pair{16, 40}}) {
                auto at = local(hh, mm + static_cast<int>(h % 10));
                int boarded = 20 + static_cast<int>(h % 25);
                int alighted = u(rng) < 0.01 ? boarded - 1 : boarded;
                double speed = u(rng) < 0.02 ? 68 : 38 + 10 * u(rng);
                auto trip = s->id + "-" + date + (hh < 12 ? "-am" : "-pm");
                out.push_back({at,
                               target::broker,
                               {},
                               {{"type", "bus.trip"},
                                {"school", s->id},
                                {"occurred_at", format_utc(at)},
                                {"status", "Actual"},
                                {"severity", alighted < boarded ? "Extreme" : "Minor"},
                                {"scope", "Restricted"},
                                {"body",
                                 {{"bus_id", s->id + "-bus-1"},
                                  {"trip_id", trip},
                                  {"boarded", boarded},
                                  {"alighted", alighted},
                                  {"max_speed_kmh", speed},
                                  {"speed_limit_kmh", 60.0}}}},
                               {}});
            }
        }
    }
    // An illness cluster after lunch at the schools sharing one supplier.
    if (day_no - 1 == o_.illness_day) {
        std::map<std::string, std::vector<const school*>> by_supplier;
        for (const auto* s : schools_)
            if (s->canteen) by_supplier[supplier_of(*s)].push_back(s);
        const std::vector<const school*>* pick = nullptr;
        for (const auto& [sup, v] : by_supplier)
            if (v.size() >= 2 && (!pick || v.size() > pick->size())) pick = &v;
        if (pick) {
            int n = 0;
            for (const auto* s : *pick) {
                if (n == 4) break;
                auto at = local(14, 10 * n);
                out.push_back({at,
                               target::canteen_http,
                               "/canteen/illness",
                               {{"school", s->id},
                                {"occurred_at", format_utc(at)},
                                {"meal_id", date + "-lunch"},
                                {"cases", 2 + (n * 3) % 6},
                                {"supplier", supplier_of(*s)},
                                {"lot", "L-" + date + "-" + std::to_string(o_.seed % 100)},
                                {"service_stopped", true},
                                {"samples_sealed", true},
                                {"description", "午餐后多名学生腹痛呕吐"}},
                               {}});
                ++n;
            }
        }
    }
}

void scenario::hazards(timestamp t0, std::vector<action>& out) {
    auto rng = rng_for(tick_, 3);
    std::uniform_real_distribution<double> u(0, 1);
    double p = o_.hazards_per_school_day * static_cast<double>(o_.tick.count()) / 86'400e6;
    for (const auto* s : schools_) {
        if (u(rng) >= p) continue;
        const auto& txt = hazard_texts[rng() % std::size(hazard_texts)];
        bool major = u(rng) < 0.06;
        auto at =
            t0 + micros(static_cast<std::int64_t>(u(rng) * static_cast<double>(o_.tick.count())));
        auto id = "HZ-SIM-" + std::to_string(o_.seed) + "-" + std::to_string(++hazard_seq_);
        json req = {
            {"school", s->id},    {"occurred_at", format_utc(at)},        {"hazard_id", id},
            {"area", txt[0]},     {"grade", major ? "major" : "general"}, {"description", txt[1]},
            {"location", txt[2]}, {"found_by", "safety_officer"}};
        if (major) {
            req["interim_control"] = "区域已拉警戒线";
            req["area_closed"] = true;
        }
        out.push_back({at, target::hazard, "/hazard/report", std::move(req), {}});
        // Most hazards are fixed within days, and verified by someone else.
        if (u(rng) < 0.8) {
            auto fixed = at + std::chrono::hours(6 + static_cast<int>(rng() % 120));
            later_.emplace(fixed, action{fixed,
                                         target::hazard,
                                         "/hazard/rectify",
                                         {{"school", s->id},
                                          {"occurred_at", format_utc(fixed)},
                                          {"hazard_id", id},
                                          {"rectified_by", "facilities_manager"},
                                          {"description", "已整改"}},
                                         {}});
            auto checked = fixed + std::chrono::hours(2 + static_cast<int>(rng() % 24));
            later_.emplace(checked, action{checked,
                                           target::hazard,
                                           "/hazard/verify",
                                           {{"school", s->id},
                                            {"occurred_at", format_utc(checked)},
                                            {"hazard_id", id},
                                            {"verifier", "safety_vp"},
                                            {"result", u(rng) < 0.9 ? "pass" : "fail"},
                                            {"evidence", "现场复查"}},
                                           {}});
        }
    }
}

void scenario::psych(timestamp t0, std::vector<action>& out) {
    auto rng = rng_for(tick_, 4);
    std::uniform_real_distribution<double> u(0, 1);
    double p = o_.psych_per_school_day * static_cast<double>(o_.tick.count()) / 86'400e6;
    for (const auto* s : schools_) {
        if (s->type == school_type::kindergarten || u(rng) >= p) continue;
        auto at =
            t0 + micros(static_cast<std::int64_t>(u(rng) * static_cast<double>(o_.tick.count())));
        double r = u(rng);
        const char* level = r < 0.05 ? "red" : r < 0.3 ? "orange" : "yellow";
        json codes = json::array({indicators[rng() % std::size(indicators)]});
        if (u(rng) < 0.5) codes.push_back(indicators[rng() % std::size(indicators)]);
        out.push_back({at,
                       target::wellbeing,
                       "/psych/alert",
                       {{"school", s->id},
                        {"occurred_at", format_utc(at)},
                        {"student_id",
                         "STU-" + s->id + "-" +
                             std::to_string(rng() % std::max<std::uint32_t>(s->students, 1) + 1)},
                        {"risk_level", level},
                        {"source", u(rng) < 0.5 ? "screening" : "teacher"},
                        {"indicator_codes", codes},
                        {"reported_by_role", "psych_teacher"}},
                       {}});
        ++psych_seq_;
    }
}

} // namespace pingan::sim
