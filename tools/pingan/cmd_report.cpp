// pingan report: the term report a bureau files, as one self-contained HTML
// file (inline SVG charts, the numbers behind each in tables, Chinese labels)
// or its tables as CSV. How each number is counted is in docs/audit.md.
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "common/markup.hpp"
#include "common/privacy.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

namespace pingan::cli {
namespace {

struct report_args {
    std::string term, district, out, format = "html", data_dir, registry_file;
};

// ---- the events of the term ----

std::vector<event> term_events(const report_args& a, const school_term& t) {
    std::vector<event> v;
    auto keep = [&](std::uint64_t off, std::string_view rec) {
        event e;
        if (decode(rec, e)) return true;
        e.offset = off;
        if (!a.district.empty() && e.district != a.district && !e.district.empty()) return true;
        redact_minors(e); // the report counts; it never needs a student reference
        v.push_back(std::move(e));
        return true;
    };
    auto dir = data_dir_or_env(a.data_dir);
    if (!dir.empty()) {
        scan_filter f;
        f.from_time = t.from;
        f.to_time = t.to - micros{1};
        f.district = a.district;
        scan_store(dir, f, keep);
        return v;
    }
    zmq::context_t ctx(1);
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    replay_request r;
    r.from_time = format_utc(t.from);
    r.to_time = format_utc(t.to - micros{1});
    r.district = a.district;
    r.credit = 2000;
    try {
        q.replay(r, keep, answer_timeout());
    } catch (const error& e) {
        fail(e);
    }
    return v;
}

// ---- the numbers ----

struct table {
    std::string id, title;
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    // Nearest rank: the smallest value with at least p of the values at or below it.
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(rank, 1) - 1];
}

std::string num(double x, int decimals = 1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
    return buf;
}

struct incident_facts {
    std::string school, district, kind, subject;
    timestamp opened{};
    std::optional<timestamp> acked, due, rectified;
};

struct report {
    school_term term;
    timestamp as_of{};
    std::vector<table> tables;
};

std::string body_str(const json& b, const char* k) {
    auto it = b.find(k);
    return it != b.end() && it->is_string() ? it->get<std::string>() : std::string();
}

report compute(const report_args& a, const school_term& t, const std::vector<event>& events,
               const registry& reg) {
    report rep;
    rep.term = t;
    rep.as_of = t.from;
    std::map<std::string, incident_facts> incidents; // by id
    std::map<std::string, std::string> by_subject;   // school|subject -> open incident id
    std::map<std::string, std::uint64_t> overdue_school, overdue_district;
    std::map<std::string, std::set<std::string>> drill_periods; // school -> periods with a drill
    std::map<std::string, std::uint64_t> drills;
    std::map<std::string, std::uint64_t> food_kinds, psych_levels;
    std::map<std::string, timestamp> rectified; // school|hazard -> first rectification

    for (const auto& e : events) {
        rep.as_of = std::max(rep.as_of, e.received_at);
        auto type = e.type();
        auto b = body_to_json(e.body);
        if (type == "drill.recorded" && e.status != status::test) {
            auto started = parse_utc(body_str(b, "started_at")).value_or(e.occurred_at);
            auto local = format_local(started); // "2026-10-12 09:00:00 CST"
            drill_periods[e.school].insert(local.substr(0, 7));
            ++drills[e.school];
        }
        // Exercises and tests are not the term's facts (the engine's own
        // events for a real incident are System).
        if (e.status == status::exercise || e.status == status::test) continue;
        if (type == "incident.opened") {
            incident_facts f;
            f.school = e.school;
            f.district = e.district;
            f.kind = body_str(b, "kind");
            f.subject = body_str(b, "subject");
            f.opened = e.received_at;
            if (auto d = parse_utc(body_str(b, "due"))) f.due = *d;
            auto id = body_str(b, "incident_id");
            by_subject[e.school + "|" + f.subject] = id;
            incidents.emplace(id, std::move(f));
        } else if (type == "incident.acknowledged") {
            auto ref = body_str(b, "incident_id");
            auto it = incidents.find(ref);
            if (it == incidents.end())
                if (auto s = by_subject.find(e.school + "|" + ref); s != by_subject.end())
                    it = incidents.find(s->second);
            if (it != incidents.end() && !it->second.acked) it->second.acked = e.received_at;
        } else if (type == "incident.overdue") {
            auto it = incidents.find(body_str(b, "incident_id"));
            if (it == incidents.end()) continue;
            ++overdue_school[it->second.school];
            ++overdue_district[it->second.district];
        } else if (type == "hazard.rectified") {
            rectified.emplace(e.school + "|" + body_str(b, "hazard_id"), e.received_at);
        } else if (type == "food.alert") {
            ++food_kinds[body_str(b, "kind")];
        } else if (type == "psych.alert") {
            ++psych_levels[body_str(b, "risk_level")];
        }
    }
    rep.as_of = std::min(rep.as_of, t.to);

    auto district_name = [&](const std::string& code) {
        auto* d = reg.find_district(code);
        return d ? d->name : code;
    };
    auto school_name = [&](const std::string& id) {
        auto* s = reg.find(id);
        return s ? s->name : id;
    };

    // Response times: from an incident's opening to its first acknowledgement.
    {
        std::map<std::string, std::vector<double>> by_d, by_s;
        std::map<std::string, std::uint64_t> open_d, open_s;
        for (const auto& [id, f] : incidents) {
            if (f.school.empty()) continue;
            if (!f.acked) {
                ++open_d[f.district];
                ++open_s[f.school];
                by_d[f.district];
                by_s[f.school];
                continue;
            }
            double minutes = static_cast<double>(to_us(*f.acked) - to_us(f.opened)) / 60e6;
            by_d[f.district].push_back(minutes);
            by_s[f.school].push_back(minutes);
        }
        table td{"response_district",
                 "响应时间（按区县，分钟） Response time by district (minutes)",
                 {"区县代码", "区县", "事件数", "已确认", "未确认", "中位数", "90百分位"},
                 {}};
        for (const auto& [d, v] : by_d)
            td.rows.push_back({d, district_name(d), std::to_string(v.size() + open_d[d]),
                               std::to_string(v.size()), std::to_string(open_d[d]),
                               num(percentile(v, 0.5)), num(percentile(v, 0.9))});
        rep.tables.push_back(std::move(td));
        table ts{"response_school",
                 "响应时间（按学校，分钟） Response time by school (minutes)",
                 {"学校代码", "学校", "区县", "事件数", "已确认", "未确认", "中位数", "90百分位"},
                 {}};
        for (const auto& [s, v] : by_s)
            ts.rows.push_back(
                {s, school_name(s), district_name(reg.find(s) ? reg.find(s)->district_code : ""),
                 std::to_string(v.size() + open_s[s]), std::to_string(v.size()),
                 std::to_string(open_s[s]), num(percentile(v, 0.5)), num(percentile(v, 0.9))});
        rep.tables.push_back(std::move(ts));
    }

    // Overdue: incident.overdue events (a deadline passed without its milestone).
    {
        table td{"overdue_district",
                 "超时次数（按区县） Overdue deadlines by district",
                 {"区县代码", "区县", "超时次数"},
                 {}};
        for (const auto& [d, n] : overdue_district)
            td.rows.push_back({d, district_name(d), std::to_string(n)});
        rep.tables.push_back(std::move(td));
        table ts{"overdue_school",
                 "超时次数（按学校） Overdue deadlines by school",
                 {"学校代码", "学校", "超时次数"},
                 {}};
        for (const auto& [s, n] : overdue_school)
            ts.rows.push_back({s, school_name(s), std::to_string(n)});
        rep.tables.push_back(std::move(ts));
    }

    // Drill compliance: every month (kindergartens: every quarter) of the
    // term that has begun by the report's date needs a drill.
    {
        table t1{"drills",
                 "演练达标（按学校） Drill compliance by school",
                 {"学校代码", "学校", "类型", "演练次数", "应演练周期", "已演练周期", "达标率%"},
                 {}};
        for (const auto& s : reg.schools()) {
            if (!a.district.empty() && s.district_code != a.district) continue;
            bool quarterly = s.type == school_type::kindergarten;
            std::vector<std::string> periods; // "2026-09" months or quarter start months
            std::set<std::string> seen;
            for (auto m = t.from; m < t.to && m <= rep.as_of;) {
                auto local = format_local(m); // CST
                int y = std::stoi(local.substr(0, 4)), mo = std::stoi(local.substr(5, 2));
                int q0 = quarterly ? ((mo - 1) / 3) * 3 + 1 : mo;
                char key[16];
                std::snprintf(key, sizeof key, "%04d-%02d", y, q0);
                if (seen.insert(key).second) periods.push_back(key);
                int ny = mo == 12 ? y + 1 : y, nm = mo == 12 ? 1 : mo + 1;
                char next[40];
                std::snprintf(next, sizeof next, "%04d-%02d-01T00:00:00+08:00", ny, nm);
                m = *parse_utc(next);
            }
            std::size_t met = 0;
            const auto& done = drill_periods[s.id];
            for (const auto& p : periods) {
                bool any = false;
                for (const auto& d : done) {
                    int dy = std::stoi(d.substr(0, 4)), dm = std::stoi(d.substr(5, 2));
                    int py = std::stoi(p.substr(0, 4)), pm = std::stoi(p.substr(5, 2));
                    any = any || (dy == py && dm >= pm && dm < pm + (quarterly ? 3 : 1));
                }
                met += any;
            }
            if (periods.empty() && !drills.count(s.id)) continue;
            t1.rows.push_back({s.id, s.name, std::string(school_type_name(s.type)),
                               std::to_string(drills[s.id]), std::to_string(periods.size()),
                               std::to_string(met),
                               num(periods.empty() ? 100.0 : 100.0 * met / periods.size(), 0)});
        }
        rep.tables.push_back(std::move(t1));
    }

    // Hazards: rectified by the due time, late, overdue and still open, open and not yet due.
    {
        std::map<std::string, std::array<std::uint64_t, 4>> by_d;
        for (const auto& [id, f] : incidents) {
            if (f.kind != "hazard") continue;
            auto r = rectified.find(f.school + "|" + f.subject);
            auto& c = by_d[f.district];
            if (r != rectified.end())
                ++c[!f.due || r->second <= *f.due ? 0 : 1];
            else
                ++c[f.due && *f.due < rep.as_of ? 2 : 3];
        }
        table th{"hazards",
                 "隐患整改（按区县） Hazard rectification by district",
                 {"区县代码", "区县", "按时整改", "逾期整改", "逾期未整改", "未到期", "按时率%"},
                 {}};
        for (const auto& [d, c] : by_d) {
            auto total = c[0] + c[1] + c[2];
            th.rows.push_back({d, district_name(d), std::to_string(c[0]), std::to_string(c[1]),
                               std::to_string(c[2]), std::to_string(c[3]),
                               total ? num(100.0 * c[0] / total, 0) : std::string("-")});
        }
        rep.tables.push_back(std::move(th));
    }

    {
        static const std::map<std::string, std::string> names{{"illness", "疑似食源性疾病"},
                                                              {"sample", "留样问题"},
                                                              {"accompany_meal", "陪餐缺失"},
                                                              {"cold_chain", "冷链温度"}};
        table tf{"food",
                 "食品安全预警（按类别） Food-safety alerts by kind",
                 {"类别", "名称", "次数"},
                 {}};
        for (const auto& [k, n] : food_kinds)
            tf.rows.push_back({k, names.count(k) ? names.at(k) : k, std::to_string(n)});
        rep.tables.push_back(std::move(tf));
    }
    {
        static const std::map<std::string, std::string> names{
            {"red", "红色"}, {"orange", "橙色"}, {"yellow", "黄色"}};
        table tp{"psych",
                 "心理预警（按等级，仅计数） Psychological alerts by level (counts only)",
                 {"等级", "名称", "次数"},
                 {}};
        for (const char* level : {"red", "orange", "yellow"})
            tp.rows.push_back({level, names.at(level), std::to_string(psych_levels[level])});
        rep.tables.push_back(std::move(tp));
    }
    return rep;
}

// ---- HTML ----

// A horizontal bar chart: one group per row, one bar per series.
std::string svg_bars(const table& t, std::size_t label_col, const std::vector<std::size_t>& cols,
                     std::size_t max_rows = 20) {
    static const char* colours[] = {"#3b6ea8", "#d9822b", "#6aa84f", "#a64d79"};
    std::vector<const std::vector<std::string>*> rows;
    for (const auto& r : t.rows)
        rows.push_back(&r);
    if (rows.size() > max_rows) rows.resize(max_rows);
    double max = 0;
    for (const auto* r : rows)
        for (auto c : cols)
            max = std::max(max, std::atof((*r)[c].c_str()));
    if (max <= 0) max = 1;
    const int bar = 14, gap = 8, label_w = 220, chart_w = 420;
    int group_h = static_cast<int>(cols.size()) * bar + gap;
    int legend_h = 24;
    int h = legend_h + std::max<int>(1, static_cast<int>(rows.size())) * group_h + 10;
    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << label_w + chart_w + 80
      << "\" height=\"" << h << "\" role=\"img\" aria-label=\"" << markup_escape(t.title) << "\">";
    for (std::size_t i = 0; i < cols.size(); ++i)
        o << "<rect x=\"" << label_w + 150 * i << "\" y=\"4\" width=\"12\" height=\"12\" fill=\""
          << colours[i % 4] << "\"/><text x=\"" << label_w + 150 * i + 16
          << "\" y=\"15\" font-size=\"12\">" << markup_escape(t.columns[cols[i]]) << "</text>";
    if (rows.empty())
        o << "<text x=\"10\" y=\"" << legend_h + 14 << "\" font-size=\"12\">无数据 no data</text>";
    for (std::size_t r = 0; r < rows.size(); ++r) {
        int y = legend_h + static_cast<int>(r) * group_h;
        o << "<text x=\"" << label_w - 6 << "\" y=\"" << y + group_h / 2 + 2
          << "\" font-size=\"12\" text-anchor=\"end\">" << markup_escape((*rows[r])[label_col])
          << "</text>";
        for (std::size_t i = 0; i < cols.size(); ++i) {
            double v = std::atof((*rows[r])[cols[i]].c_str());
            int w = static_cast<int>(v / max * chart_w);
            int by = y + static_cast<int>(i) * bar;
            o << "<rect x=\"" << label_w << "\" y=\"" << by << "\" width=\"" << w << "\" height=\""
              << bar - 2 << "\" fill=\"" << colours[i % 4] << "\"/>"
              << "<text x=\"" << label_w + w + 4 << "\" y=\"" << by + bar - 4
              << "\" font-size=\"11\">" << markup_escape((*rows[r])[cols[i]]) << "</text>";
        }
    }
    o << "</svg>";
    return o.str();
}

std::string html_table(const table& t) {
    std::ostringstream o;
    o << "<table id=\"table-" << t.id << "\"><thead><tr>";
    for (const auto& c : t.columns)
        o << "<th>" << markup_escape(c) << "</th>";
    o << "</tr></thead><tbody>";
    for (const auto& r : t.rows) {
        o << "<tr>";
        for (const auto& c : r)
            o << "<td>" << markup_escape(c) << "</td>";
        o << "</tr>";
    }
    if (t.rows.empty())
        o << "<tr><td colspan=\"" << t.columns.size() << "\">无数据 no data</td></tr>";
    o << "</tbody></table>";
    return o.str();
}

const table& find_table(const report& r, const std::string& id) {
    for (const auto& t : r.tables)
        if (t.id == id) return t;
    fatal("internal: no table " + id);
}

std::string render_html(const report& r, const report_args& a, const registry& reg) {
    std::ostringstream o;
    std::string scope = a.district.empty() ? "全市 city-wide" : a.district;
    if (!a.district.empty())
        if (auto* d = reg.find_district(a.district)) scope = d->name + " " + a.district;
    o << "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
      << "<title>校园安全学期报告 " << markup_escape(r.term.name) << "</title><style>"
      << "body{font-family:'Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif;margin:24px;"
         "color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid "
         "#ccc}table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}td,th{border:1px "
         "solid #bbb;padding:3px 8px;text-align:left}th{background:#eef2f7}.note{color:#555;"
         "font-size:12px}"
      << "</style></head><body>\n";
    o << "<h1>校园安全学期报告 Term safety report — " << markup_escape(r.term.name) << "</h1>\n";
    o << "<p>范围 Scope: " << markup_escape(scope)
      << "；学期 Term: " << markup_escape(format_local(r.term.from)) << " 至 "
      << markup_escape(format_local(r.term.to - micros{1}))
      << "；数据截至 As of: " << markup_escape(format_local(r.as_of)) << "</p>\n";
    o << "<p class=\"note\">只计实际事件（不含演练、测试）；心理预警只计数，不含任何学生信息。 "
         "Actual events only (no exercises or tests); psychological alerts are counted, never "
         "identified.</p>\n";
    auto section = [&](const std::string& id, std::size_t label, std::vector<std::size_t> cols) {
        const auto& t = find_table(r, id);
        o << "<h2 id=\"" << id << "\">" << markup_escape(t.title) << "</h2>\n"
          << svg_bars(t, label, cols) << "\n"
          << html_table(t) << "\n";
    };
    section("response_district", 1, {5, 6});
    section("response_school", 1, {6, 7});
    section("overdue_district", 1, {2});
    section("overdue_school", 1, {2});
    section("drills", 1, {6});
    section("hazards", 1, {2, 3, 4, 5});
    section("food", 1, {2});
    section("psych", 1, {2});
    o << "<p class=\"note\">pingan report --term " << markup_escape(r.term.name)
      << (a.district.empty() ? "" : " --district " + markup_escape(a.district))
      << "；计算方法见 docs/audit.md。</p>\n</body></html>\n";
    return o.str();
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    return q + "\"";
}

std::string render_csv(const report& r) {
    std::string o = "\xEF\xBB\xBF";
    for (const auto& t : r.tables) {
        o += csv_field(t.id) + "," + csv_field(t.title) + "\r\n";
        std::string line;
        for (const auto& c : t.columns)
            line += (line.empty() ? "" : ",") + csv_field(c);
        o += line + "\r\n";
        for (const auto& row : t.rows) {
            line.clear();
            for (const auto& c : row)
                line += (line.empty() ? "" : ",") + csv_field(c);
            o += line + "\r\n";
        }
        o += "\r\n";
    }
    return o;
}

void run(const report_args& a) {
    auto t = parse_term(a.term);
    if (!t) fatal("--term " + a.term + ": not a school term; " + term_help);
    auto reg = load_school_registry(a.registry_file);
    if (!a.district.empty() && !reg->find_district(a.district))
        fatal("district \"" + a.district + "\" is not in the registry (a code such as 420502)");
    auto events = term_events(a, *t);
    auto rep = compute(a, *t, events, *reg);
    auto text = a.format == "csv" ? render_csv(rep) : render_html(rep, a, *reg);
    if (a.out.empty() || a.out == "-") {
        std::cout << text;
        return;
    }
    std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f) fatal("cannot write " + a.out);
    std::cerr << "pingan: " << t->name << " report (" << events.size() << " events) written to "
              << a.out << "\n";
}

} // namespace

void add_report_command(CLI::App& app) {
    auto a = std::make_shared<report_args>();
    auto* cmd = app.add_subcommand(
        "report", "The term report: response times, overdue deadlines, drill compliance, hazard "
                  "rectification, food-safety and psychological alerts, as one HTML file with "
                  "charts and tables (or the tables as CSV)");
    cmd->add_option("--term", a->term, term_help)->required();
    cmd->add_option("--district", a->district, "one district code, e.g. 420502");
    cmd->add_option("--out", a->out, "write to this file (default: standard output)");
    cmd->add_option("--format", a->format, "html or csv")
        ->check(CLI::IsMember({"html", "csv"}))
        ->capture_default_str();
    cmd->add_option("--data", a->data_dir,
                    "read this store directory instead of asking the broker ($PINGAN_DATA)");
    cmd->add_option("--registry", a->registry_file, "schools.csv (default: the shipped one)");
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(36, add_report_command);

} // namespace pingan::cli
