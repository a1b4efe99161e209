// Incident stories and school terms for inspectors (audit.hpp).
#include "tools/pingan/audit.hpp"

#include "broker/engine/engine.hpp"
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "common/privacy.hpp"
#include "tools/pingan/commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

namespace pingan::cli {
namespace {

std::string str(const json& j, const char* k) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

std::optional<timestamp> time_of(const json& j, const char* k) {
    auto s = str(j, k);
    if (s.empty()) return std::nullopt;
    return parse_utc(s);
}

std::string joined(const json& j, const char* k) {
    std::string s;
    if (auto it = j.find(k); it != j.end() && it->is_array())
        for (const auto& x : *it)
            s += (s.empty() ? "" : ",") + (x.is_string() ? x.get<std::string>() : x.dump());
    return s;
}

} // namespace

std::string data_dir_or_env(const std::string& given) {
    if (!given.empty()) return given;
    if (const char* d = std::getenv("PINGAN_DATA"); d && *d) return d;
    return {};
}

void scan_store(const std::string& dir, scan_filter f,
                const std::function<bool(std::uint64_t, std::string_view)>& visit) {
    try {
        store_options o;
        o.path = dir;
        o.read_only = true;
        store s(o);
        auto [from, to] = s.range(f);
        f.from = from;
        f.to = to;
        f.from_time.reset();
        f.to_time.reset();
        bool more = true;
        while (more && to && f.from <= f.to) {
            auto next = s.scan(f, 1000, [&](std::uint64_t off, std::string_view rec) {
                return more = visit(off, rec);
            });
            if (next <= f.from) break;
            f.from = next;
        }
    } catch (const error& e) {
        fatal(dir + ": " + e.detail());
    }
}

namespace {

bool wanted(const incident_filter& f, const json& i) {
    auto state = i["state"].get<std::string>();
    if (f.open_only && state == "closed") return false;
    if (!f.state.empty() && (f.state == "active" ? state == "closed" : state != f.state))
        return false;
    if (!f.severity.empty() && i["severity"] != f.severity) return false;
    if (!f.school.empty() && i["school"] != f.school) return false;
    if (!f.district.empty() && i["district"] != f.district) {
        // A cross-school incident is in every district one of its schools is in.
        auto d = i.find("districts");
        if (d == i.end() || !d->is_array() ||
            std::find(d->begin(), d->end(), f.district) == d->end())
            return false;
    }
    if (!f.kind.empty() && i["kind"] != f.kind) return false;
    if (!f.mode.empty() && i["mode"] != f.mode) return false;
    return true;
}

} // namespace

std::vector<json> list_incidents(const incident_filter& f, const std::string& dir,
                                 bool& truncated) {
    truncated = false;
    std::vector<json> rows;
    if (!dir.empty()) {
        std::vector<incident> v;
        try {
            store_options o;
            o.path = dir;
            o.read_only = true;
            store s(o);
            s.scan_table("incidents", "", [&](std::string_view, std::string_view value) {
                incident i;
                if (decode_incident(value, i)) v.push_back(std::move(i));
                return true;
            });
        } catch (const error& e) {
            fatal(dir + ": " + e.detail());
        }
        std::sort(v.begin(), v.end(), [](const incident& x, const incident& y) {
            return x.opened_us != y.opened_us ? x.opened_us < y.opened_us : x.id < y.id;
        });
        for (const auto& i : v)
            if (auto j = incident_to_json(i); wanted(f, j)) rows.push_back(std::move(j));
        return rows;
    }
    json p = json::object();
    if (f.open_only) p["state"] = "active";
    if (!f.state.empty()) p["state"] = f.state;
    for (auto [name, value] : {std::pair{"severity", &f.severity},
                               {"school", &f.school},
                               {"district", &f.district},
                               {"kind", &f.kind},
                               {"mode", &f.mode}})
        if (!value->empty()) p[name] = *value;
    zmq::context_t ctx(1);
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    json r;
    try {
        r = q.request("INCIDENTS", p, answer_timeout());
    } catch (const error& e) {
        fail(e);
    }
    for (auto& i : r["incidents"])
        if (wanted(f, i)) rows.push_back(std::move(i));
    truncated = r.value("truncated", false);
    return rows;
}

incident_record incident_from_broker(const std::string& ref, const std::string& school,
                                     const std::string& purpose) {
    json p = json::object();
    if (!purpose.empty()) p["purpose"] = purpose;
    if (ref.starts_with("INC-")) {
        p["id"] = ref;
    } else {
        p["subject"] = ref;
        if (!school.empty()) p["school"] = school;
    }
    zmq::context_t ctx(1);
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    json r;
    try {
        r = q.request("INCIDENT", p, answer_timeout());
    } catch (const error& e) {
        if (e.code() == errc::not_found) fatal(e.detail(), 1);
        fail(e);
    }
    incident_record out;
    out.incident = r["incident"];
    for (auto& e : r["timeline"])
        out.events.push_back(std::move(e));
    out.truncated = r.value("truncated", false);
    return out;
}

incident_record incident_from_store(const std::string& dir, const std::string& ref,
                                    const std::string& school) {
    incident_record out;
    try {
        store_options o;
        o.path = dir;
        o.read_only = true;
        store s(o);
        std::optional<incident> found;
        std::size_t open = 0;
        s.scan_table("incidents", "", [&](std::string_view, std::string_view value) {
            incident i;
            if (!decode_incident(value, i)) return true;
            if (ref.starts_with("INC-")) {
                if (i.id == ref) found = std::move(i);
            } else if (i.subject == ref && (school.empty() || i.school == school)) {
                if (!i.closed) ++open;
                if (!found || !i.closed || found->closed) found = std::move(i);
            }
            return true;
        });
        if (!found) fatal("no incident \"" + ref + "\" in " + dir, 1);
        if (open > 1)
            fatal(ref + " names more than one open incident; give the incident id or --school", 1);
        const auto& inc = *found;
        out.incident = incident_to_json(inc);
        scan_filter f;
        f.school = inc.school;
        if (auto cause = event_id::parse(inc.cause))
            if (auto off = s.find(*cause)) f.from = *off;
        if (f.from == 1) f.from_time = from_us(inc.opened_us);
        auto [from, to] = s.range(f);
        f.from = from;
        f.to = to;
        f.from_time.reset();
        while (f.to && f.from <= f.to) {
            auto next = s.scan(f, 1000, [&](std::uint64_t off, std::string_view rec) {
                event e;
                if (decode(rec, e) || !concerns(e, inc)) return true;
                e.offset = off;
                redact_minors(e);
                out.events.push_back(to_json(e));
                return true;
            });
            if (next <= f.from) break;
            f.from = next;
        }
    } catch (const error& e) {
        fatal(dir + ": " + e.detail());
    }
    return out;
}

namespace {

// What a step of the story is, from its event's type.
std::string step_of(const std::string& type, bool first) {
    if (first) return "report";
    static const std::map<std::string, std::string> steps{
        {"incident.opened", "rule"},
        {"notification.requested", "page"},
        {"escalation.raised", "escalation"},
        {"incident.overdue", "overdue"},
        {"notification.delivered", "delivered"},
        {"notification.failed", "delivery_failed"},
        {"incident.acknowledged", "acknowledged"},
        {"incident.note", "note"},
        {"hazard.rectified", "rectified"},
        {"hazard.verified", "verified"},
        {"incident.resolved", "resolved"},
        {"incident.closed", "closed"},
        {"incident.reopened", "reopened"},
        {"timer.fired", "timer"}};
    auto it = steps.find(type);
    return it == steps.end() ? "report" : it->second;
}

// Step names for people (Chinese first: the inspectors' language).
std::string step_label(const std::string& step) {
    static const std::map<std::string, std::string> labels{{"report", "报告 report"},
                                                           {"rule", "规则触发 rule"},
                                                           {"page", "通知 page"},
                                                           {"escalation", "升级 escalation"},
                                                           {"overdue", "超时 overdue"},
                                                           {"delivered", "送达 delivered"},
                                                           {"delivery_failed", "送达失败 failed"},
                                                           {"acknowledged", "确认 acknowledged"},
                                                           {"note", "备注 note"},
                                                           {"rectified", "整改 rectified"},
                                                           {"verified", "验收 verified"},
                                                           {"resolved", "处置 resolved"},
                                                           {"closed", "关闭 closed"},
                                                           {"reopened", "重开 reopened"},
                                                           {"timer", "计时 timer"}};
    auto it = labels.find(step);
    return it == labels.end() ? step : it->second;
}

double seconds_between(timestamp a, timestamp b) {
    return static_cast<double>(to_us(b) - to_us(a)) / 1e6;
}

std::string duration_text(double seconds) {
    return format_duration(micros{static_cast<std::int64_t>(seconds * 1e6)});
}

} // namespace

json build_timeline(const incident_record& r, const rules::ruleset* rs) {
    const auto& inc = r.incident;
    json steps = json::array();
    std::map<std::string, std::string> basis_of; // rule id -> basis tag, from pages
    for (const auto& e : r.events)
        if (e.value("type", "") == "notification.requested")
            basis_of.emplace(str(e["body"], "rule_id"), str(e["body"], "basis"));
    if (rs)
        for (const auto& rule : rs->rules)
            basis_of.emplace(rule.id, std::string(rules::basis_name(rule.basis)));

    std::optional<timestamp> start, prev;
    std::map<std::string, timestamp> reached; // milestone -> first time
    std::vector<json> overdue;
    for (std::size_t n = 0; n < r.events.size(); ++n) {
        const auto& e = r.events[n];
        auto type = e.value("type", "");
        const auto& b = e["body"];
        auto at = time_of(e, "received_at").value_or(timestamp{});
        if (!start) start = at;
        json s = json::object();
        s["offset"] = e.value("offset", std::uint64_t{0});
        s["at"] = format_utc(at);
        s["step"] = step_of(type, n == 0);
        s["type"] = type;
        s["since_previous_s"] = prev ? seconds_between(*prev, at) : 0.0;
        s["since_start_s"] = seconds_between(*start, at);
        if (!str(e, "actor").empty()) s["actor"] = str(e, "actor");
        for (const char* k : {"rule_id", "ruleset_hash", "basis", "tier", "deadline", "receiver",
                              "channel", "attempt", "latency_ms", "error", "final", "repeat",
                              "waited_for", "late", "verifier", "result", "rectified_by"})
            if (b.contains(k) && !b[k].is_null()) s[k] = b[k];
        if (b.contains("roles")) s["roles"] = b["roles"];
        if (s.contains("rule_id") && !s.contains("basis")) {
            auto it = basis_of.find(s["rule_id"].get<std::string>());
            if (it != basis_of.end() && !it->second.empty()) s["basis"] = it->second;
        }
        // What it says, in one line.
        std::string what;
        if (type == "notification.requested" || type == "escalation.raised")
            what = str(b, type == "escalation.raised" ? "reason" : "text");
        else if (type == "incident.opened")
            what = str(b, "title");
        else if (type == "incident.acknowledged")
            what = str(b, "note");
        else if (type == "incident.resolved")
            what = str(b, "resolution");
        else if (type == "incident.closed" || type == "incident.reopened")
            what = str(b, "reason");
        else if (type == "hazard.reported" || type == "hazard.rectified")
            what = str(b, "description");
        else if (type == "hazard.verified")
            what = str(b, "evidence");
        else if (type == "incident.note")
            what = !str(b, "text").empty() ? str(b, "text") : str(b, "note");
        else if (type == "incident.overdue")
            what = "waited for " + str(b, "waited_for");
        else if (type == "notification.failed")
            what = str(b, "error");
        else if (b.contains("summary"))
            what = str(b, "summary");
        else if (b.contains("description"))
            what = str(b, "description");
        s["what"] = what;
        steps.push_back(std::move(s));
        prev = at;

        auto mark = [&](const std::string& m) { reached.emplace(m, at); };
        if (type == "incident.acknowledged") mark("acknowledged");
        if (type == "hazard.rectified") mark("rectified");
        if (type == "hazard.verified" && str(b, "result") == "pass") mark("verified");
        if (type == "incident.closed") mark("closed");
        if (type == "incident.overdue") overdue.push_back(b);
    }

    // Deadlines: each one met, missed or still pending.
    json deadlines = json::array();
    auto judge = [&](json d, timestamp deadline, const std::string& waited_for) {
        d["deadline"] = format_utc(deadline);
        d["waited_for"] = waited_for;
        auto it = reached.find(waited_for);
        bool was_overdue = false;
        for (const auto& o : overdue)
            if (str(o, "deadline") == format_utc(deadline) && str(o, "waited_for") == waited_for &&
                (!d.contains("rule_id") || str(o, "rule_id") == d["rule_id"]))
                was_overdue = true;
        if (it != reached.end()) {
            d["reached_at"] = format_utc(it->second);
            d["margin_s"] = seconds_between(it->second, deadline);
        }
        auto closed = reached.find("closed");
        d["status"] = (it != reached.end() && it->second <= deadline) ? "met"
                      : (was_overdue || it != reached.end())          ? "missed"
                      : (closed != reached.end() && closed->second <= deadline)
                          ? "cancelled" // closed before it fell due
                          : "pending";
        deadlines.push_back(std::move(d));
    };
    bool hazard = inc.contains("rectified_by");
    if (auto due = time_of(inc, "due"))
        judge(json{{"what", "due"}}, *due, hazard ? "rectified" : "closed");
    auto opened = time_of(inc, "opened_at");
    if (rs && opened) {
        for (const auto& rid : inc["rules"]) {
            const auto* rule = rs->find(rid.get<std::string>());
            if (!rule) continue;
            for (std::size_t i = 0; i < rule->steps.size(); ++i) {
                const auto& st = rule->steps[i];
                if (st.immediate()) continue;
                std::optional<timestamp> at;
                if (st.from_due) {
                    if (auto due = time_of(inc, "due")) at = *due + st.after;
                } else {
                    at = *opened + st.after;
                }
                if (!at) continue;
                auto until = st.until == "resolved" ? std::string("closed") : st.until;
                judge(json{{"what", "step"},
                           {"rule_id", rule->id},
                           {"step", i},
                           {"tier", std::string(enum_name(st.tier))},
                           {"roles", st.roles}},
                      *at, until);
            }
        }
    } else {
        for (const auto& o : overdue) {
            auto at = time_of(o, "deadline");
            if (!at) continue;
            judge(json{{"what", "step"},
                       {"rule_id", str(o, "rule_id")},
                       {"step", o.value("step", 0)},
                       {"tier", str(o, "tier")}},
                  *at, str(o, "waited_for"));
        }
    }
    std::stable_sort(deadlines.begin(), deadlines.end(), [](const json& a, const json& b) {
        return a["deadline"].get<std::string>() < b["deadline"].get<std::string>();
    });

    json summary = inc;
    return json{{"incident", std::move(summary)},
                {"steps", std::move(steps)},
                {"deadlines", std::move(deadlines)},
                {"truncated", r.truncated},
                {"rule_set_checked", rs != nullptr}};
}

std::string render_timeline(const json& t, const registry* reg) {
    std::ostringstream o;
    const auto& inc = t["incident"];
    auto school = str(inc, "school");
    o << str(inc, "id") << "  " << str(inc, "kind") << "  " << (school.empty() ? "-" : school);
    if (reg && !school.empty())
        if (auto* s = reg->find(school)) o << " " << s->name;
    o << "  " << str(inc, "severity") << "  " << str(inc, "state");
    if (str(inc, "mode") == "Exercise") o << "  [EXERCISE]";
    if (str(inc, "mode") == "Test") o << "  [TEST]";
    o << "\n" << str(inc, "title") << "\n";
    if (auto t0 = time_of(inc, "opened_at")) o << "opened " << format_local(*t0);
    if (auto t1 = time_of(inc, "closed_at")) o << "  closed " << format_local(*t1);
    o << "\n\n";
    for (const auto& s : t["steps"]) {
        auto at = time_of(s, "at").value_or(timestamp{});
        o << "#" << s["offset"].get<std::uint64_t>() << "  " << format_local(at) << "  +"
          << duration_text(s["since_previous_s"].get<double>()) << "  "
          << step_label(s["step"].get<std::string>()) << "  " << s["type"].get<std::string>();
        if (s.contains("rule_id")) {
            o << "  rule " << str(s, "rule_id");
            if (s.contains("basis")) o << " [" << str(s, "basis") << "]";
            if (s.contains("ruleset_hash")) o << " rules " << str(s, "ruleset_hash").substr(0, 12);
        }
        if (s.contains("tier")) o << "  " << str(s, "tier") << " " << joined(s, "roles");
        if (s.contains("receiver")) o << "  " << str(s, "receiver") << " via " << str(s, "channel");
        if (s.contains("actor")) o << "  by " << str(s, "actor");
        if (s.contains("rectified_by")) o << "  by " << str(s, "rectified_by");
        if (s.contains("verifier")) o << "  " << str(s, "result") << " by " << str(s, "verifier");
        if (!str(s, "what").empty()) o << ": " << str(s, "what");
        o << "\n";
    }
    if (t.value("truncated", false)) o << "(cut: more events follow)\n";
    o << "\ndeadlines";
    if (!t.value("rule_set_checked", false)) o << " (due time and overdue steps; --rules for all)";
    o << ":\n";
    if (t["deadlines"].empty()) o << "  none\n";
    for (const auto& d : t["deadlines"]) {
        auto at = time_of(d, "deadline").value_or(timestamp{});
        auto status = str(d, "status");
        o << "  " << format_local(at) << "  " << str(d, "what");
        if (d.contains("rule_id")) o << " " << str(d, "rule_id") << "#" << str(d, "step");
        if (d.contains("tier")) o << " (" << str(d, "tier") << ")";
        o << "  waits for " << str(d, "waited_for") << "  "
          << (status == "met"         ? "met 按时"
              : status == "missed"    ? "MISSED 超时"
              : status == "cancelled" ? "cancelled 已关闭"
                                      : "pending 未到");
        if (d.contains("margin_s")) {
            auto m = d["margin_s"].get<double>();
            o << " (" << str(d, "waited_for") << " at " << format_local(*time_of(d, "reached_at"))
              << ", " << duration_text(m < 0 ? -m : m) << (m < 0 ? " late" : " early") << ")";
        }
        o << "\n";
    }
    return o.str();
}

std::optional<school_term> parse_term(std::string_view name) {
    auto dash = name.find('-');
    if (dash != 4) return std::nullopt;
    int year = 0;
    for (char c : name.substr(0, 4)) {
        if (c < '0' || c > '9') return std::nullopt;
        year = year * 10 + (c - '0');
    }
    auto season = name.substr(5);
    auto at = [](int y, int m) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%04d-%02d-01T00:00:00+08:00", y, m);
        return *parse_utc(buf);
    };
    if (season == "autumn") return school_term{std::string(name), at(year, 9), at(year + 1, 2)};
    if (season == "spring") return school_term{std::string(name), at(year, 2), at(year, 9)};
    return std::nullopt;
}

} // namespace pingan::cli
