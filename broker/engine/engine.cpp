// The escalation engine: rules, incidents and deadlines as a pure function of
// the log. See engine.hpp for the promises it keeps and docs/rules.md for the
// rule language it evaluates.
#include "broker/engine/engine.hpp"

#include "common/privacy.hpp"

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/common.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

namespace pingan {
namespace {

using namespace std::chrono;
using rules::condition;
using rules::rule;

constexpr std::string_view engine_source = "pingan-broker/engine";
constexpr std::int64_t us_per_hour = 3'600'000'000LL;
constexpr std::int64_t cst_offset_us = 8 * us_per_hour; // Asia/Shanghai, no DST
// An event holds at most 32 references (validate.cpp).
constexpr std::size_t max_member_references = 32;

const std::array derived_types{incident_opened::type,        incident_overdue::type,
                               incident_closed::type,        incident_reopened::type,
                               notification_requested::type, timer_fired::type,
                               ruleset_loaded::type,         escalation_raised::type};

char mode_char(pingan::status s) {
    switch (s) {
    case pingan::status::exercise:
        return 'X';
    case pingan::status::test:
        return 'T';
    default:
        return 'A';
    }
}

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s += digits[p[i] >> 4];
        s += digits[p[i] & 15];
    }
    return s;
}

std::string incident_id_of(std::string_view key) {
    unsigned char h[8];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                       nullptr, 0);
    return "INC-" + hex(h, sizeof h);
}

// The text of a JSON value as a dedup or group component.
std::string value_text(const json& j) {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_null()) return {};
    return j.dump();
}

// Cuts `s` to at most `n` bytes without splitting a UTF-8 sequence.
void truncate_utf8(std::string& s, std::size_t n) {
    if (s.size() <= n) return;
    std::size_t i = n;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80)
        --i;
    s.resize(i);
}

// ---- the Asia/Shanghai calendar, for absence periods ------------------------------

year_month_day local_date(std::int64_t us) {
    return year_month_day{floor<days>(sys_time<microseconds>(microseconds(us + cst_offset_us)))};
}

std::int64_t local_midnight_us(year_month_day d) {
    return duration_cast<microseconds>(sys_days(d).time_since_epoch()).count() - cst_offset_us;
}

int period_months(rules::period p) {
    switch (p) {
    case rules::period::month:
        return 1;
    case rules::period::quarter:
        return 3;
    default:
        return 6;
    }
}

// First day of the period containing local date `d`. Terms run from 1 February
// and 1 August (spring and autumn).
year_month_day period_start(rules::period p, year_month_day d) {
    int y = static_cast<int>(d.year());
    unsigned m = static_cast<unsigned>(d.month());
    switch (p) {
    case rules::period::month:
        return year(y) / month(m) / 1;
    case rules::period::quarter:
        return year(y) / month((m - 1) / 3 * 3 + 1) / 1;
    default:
        if (m >= 2 && m <= 7) return year(y) / February / 1;
        if (m >= 8) return year(y) / August / 1;
        return year(y - 1) / August / 1;
    }
}

std::string period_label(rules::period p, year_month_day start) {
    int y = static_cast<int>(start.year());
    unsigned m = static_cast<unsigned>(start.month());
    char buf[32];
    switch (p) {
    case rules::period::month:
        std::snprintf(buf, sizeof buf, "%04d-%02u", y, m);
        break;
    case rules::period::quarter:
        std::snprintf(buf, sizeof buf, "%04d-Q%u", y, (m - 1) / 3 + 1);
        break;
    default:
        std::snprintf(buf, sizeof buf, "%04d-%s", y, m == 2 ? "spring" : "autumn");
        break;
    }
    return buf;
}

year_month_day add_offset(year_month_day d, rules::cal_offset o) {
    d = d + months(o.months);
    return year_month_day{sys_days(d) + days(o.days)};
}

rules::cal_offset remind_offset(const rules::absence_spec& a, rules::period p) {
    auto it = a.remind_at.find(p);
    if (it != a.remind_at.end()) return it->second;
    return {period_months(p), 0}; // no reminder: noticed when the period ends
}

// The first reminder time strictly after `now` for period kind `p`, with its period's start.
std::pair<std::int64_t, year_month_day> next_checkpoint(const rules::absence_spec& a,
                                                        rules::period p, std::int64_t now) {
    auto start = period_start(p, local_date(now));
    for (int i = 0; i < 3; ++i) {
        auto at = local_midnight_us(add_offset(start, remind_offset(a, p)));
        if (at > now) return {at, start};
        start = start + months(period_months(p));
    }
    return {local_midnight_us(add_offset(start, remind_offset(a, p))), start};
}

std::set<rules::period> periods_used(const rules::absence_spec& a) {
    std::set<rules::period> s{a.default_period};
    for (auto& [t, p] : a.by_school_type)
        s.insert(p);
    return s;
}

rules::period period_for(const rules::absence_spec& a, const school& s) {
    auto it = a.by_school_type.find(s.type);
    return it == a.by_school_type.end() ? a.default_period : it->second;
}

// ---- comparing field values ---------------------------------------------------------

std::optional<std::int64_t> time_of(const json& j) {
    if (!j.is_string()) return std::nullopt;
    auto t = parse_utc(j.get_ref<const std::string&>());
    if (!t) return std::nullopt;
    return to_us(*t);
}

bool json_eq(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
    if (a.is_string() && b.is_number()) return a.get_ref<const std::string&>() == b.dump();
    return a == b;
}

// -1, 0, 1; nothing when the two cannot be ordered.
std::optional<int> json_cmp(const json& a, const json& b, micros offset = {}) {
    if (a.is_number() && b.is_number()) {
        double x = a.get<double>(), y = b.get<double>();
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) {
        auto ta = time_of(a), tb = time_of(b);
        if (ta && tb) {
            auto y = *tb + offset.count();
            return *ta < y ? -1 : *ta > y ? 1 : 0;
        }
        auto c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
        return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    return std::nullopt;
}

std::string tier_role(pingan::tier t, std::string_view role) {
    return std::string(enum_name(t)) + "/" + std::string(role);
}

template <class T> std::string encode_cereal(T& v) {
    std::ostringstream os;
    {
        cereal::PortableBinaryOutputArchive ar(os);
        ar(v);
    }
    return std::move(os).str();
}

template <class T> bool decode_cereal(std::string_view b, T& v) {
    try {
        std::istringstream is{std::string(b)};
        cereal::PortableBinaryInputArchive ar(is);
        ar(v);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

} // namespace

// ---- state --------------------------------------------------------------------------

void engine_state::clear() {
    *this = engine_state{};
}

void engine_state::index(const incident& i) {
    by_key[i.key] = i.id;
    auto sk = std::string(1, mode_char(i.mode)) + "|" + i.school + "|" + i.subject;
    for (auto [a, b] = by_subject.equal_range(sk); a != b; ++a)
        if (a->second == i.id) return;
    by_subject.emplace(sk, i.id);
}

// ---- one application of the engine to one input ---------------------------------------

struct engine::run {
    const engine& eng;
    engine_state& st;
    const event& cause;
    std::vector<event>& out;
    std::int64_t now;
    // The mode of what the input causes: its status, or for a typed incident's
    // report (made by the engine, status System) the mode of its incident.
    pingan::status mode = cause.status;
    std::uint32_t seq = 0;
    std::optional<json> body_json_{};
    std::optional<json> school_json_{};
    const std::vector<window_entry>* members_ = nullptr; // the window that triggered a rule

    const rules::ruleset& rs() const { return *eng.rules_; }

    const school* find_school(std::string_view id) const {
        return eng.reg_ && !id.empty() ? eng.reg_->find(id) : nullptr;
    }

    const json& body_json() {
        if (!body_json_) body_json_ = body_to_json(cause.body);
        return *body_json_;
    }

    const json& school_json() {
        if (!school_json_) {
            json j = json::object();
            if (auto* s = find_school(cause.school)) {
                j["type"] = std::string(school_type_name(s->type));
                j["students"] = s->students;
                j["boarding"] = s->boarding;
                j["school_bus"] = s->school_bus;
                j["canteen"] = s->canteen;
                j["max_floors"] = s->max_floors;
                j["evacuation_target_seconds"] = rs().evacuation.for_school(*s);
            }
            school_json_ = std::move(j);
        }
        return *school_json_;
    }

    // The value a condition names, or null when absent.
    const json* field(std::string_view f) {
        const json& src = f.starts_with("school.") ? school_json() : body_json();
        if (f.starts_with("school.")) f.remove_prefix(7);
        auto it = src.find(std::string(f));
        if (it == src.end() || it->is_null()) return nullptr;
        return &*it;
    }

    // ---- matching ----

    bool holds(const condition& c) {
        using op = condition::op;
        const json* v = field(c.field);
        if (!v)
            return (c.what == op::exists && !c.value.get<bool>()) || c.what == op::ne ||
                   c.what == op::not_in;
        switch (c.what) {
        case op::eq:
            return json_eq(*v, c.value);
        case op::ne:
            return !json_eq(*v, c.value);
        case op::in:
        case op::not_in: {
            bool found = std::any_of(c.value.begin(), c.value.end(),
                                     [&](const json& x) { return json_eq(*v, x); });
            return c.what == op::in ? found : !found;
        }
        case op::gt: {
            auto r = json_cmp(*v, c.value);
            return r && *r > 0;
        }
        case op::ge: {
            auto r = json_cmp(*v, c.value);
            return r && *r >= 0;
        }
        case op::lt: {
            auto r = json_cmp(*v, c.value);
            return r && *r < 0;
        }
        case op::le: {
            auto r = json_cmp(*v, c.value);
            return r && *r <= 0;
        }
        case op::exists:
            return c.value.get<bool>();
        case op::contains:
            return v->is_array() && std::any_of(v->begin(), v->end(),
                                                [&](const json& x) { return json_eq(x, c.value); });
        case op::before:
        case op::after: {
            auto t = time_of(*v);
            if (!t) return false;
            auto ref = now + c.offset.count();
            return c.what == op::before ? *t < ref : *t > ref;
        }
        default: {
            const json* o = field(c.other_field);
            if (!o) return false;
            auto r = json_cmp(*v, *o, c.offset);
            if (!r) return c.what == op::ne_field ? !json_eq(*v, *o) : false;
            switch (c.what) {
            case op::gt_field:
                return *r > 0;
            case op::ge_field:
                return *r >= 0;
            case op::lt_field:
                return *r < 0;
            case op::le_field:
                return *r <= 0;
            case op::eq_field:
                return *r == 0;
            default:
                return *r != 0;
            }
        }
        }
    }

    bool all(const rules::all_of& cs) {
        return std::all_of(cs.begin(), cs.end(), [&](const condition& c) { return holds(c); });
    }

    // Type, status, severity and school filters.
    bool filters(const rules::match_spec& m) {
        if (m.statuses.empty()) {
            if (mode == pingan::status::system) return false;
        } else if (std::find(m.statuses.begin(), m.statuses.end(), mode) == m.statuses.end()) {
            return false;
        }
        if (m.severity_at_least &&
            severity_rank(cause.severity) < severity_rank(*m.severity_at_least))
            return false;
        if (!m.districts.empty() &&
            std::find(m.districts.begin(), m.districts.end(), cause.district) == m.districts.end())
            return false;
        if (!m.school_types.empty() || m.school_bus || m.boarding || m.canteen) {
            auto* s = find_school(cause.school);
            if (!s) return false;
            if (!school_passes(m, *s)) return false;
        }
        return true;
    }

    static bool school_passes(const rules::match_spec& m, const school& s) {
        if (!m.school_types.empty() &&
            std::find(m.school_types.begin(), m.school_types.end(), s.type) == m.school_types.end())
            return false;
        if (m.school_bus && *m.school_bus != s.school_bus) return false;
        if (m.boarding && *m.boarding != s.boarding) return false;
        if (m.canteen && *m.canteen != s.canteen) return false;
        if (!m.districts.empty() &&
            std::find(m.districts.begin(), m.districts.end(), s.district_code) == m.districts.end())
            return false;
        return true;
    }

    bool conditions(const rules::match_spec& m) {
        if (!all(m.where)) return false;
        if (m.any.empty()) return true;
        return std::any_of(m.any.begin(), m.any.end(), [&](const auto& g) { return all(g); });
    }

    // ---- derived events ----

    void emit(body b, const incident* inc, std::string_view rule_id) {
        event d;
        d.id = derived_id(cause.id, rule_id, seq++);
        d.school = inc ? inc->school : cause.school;
        d.district = inc ? inc->district : cause.district;
        // A cross-school incident's events go to the district of the report
        // that caused them, so that each district involved sees its part.
        if (inc && inc->school.empty() && inc->districts.count(cause.district))
            d.district = cause.district;
        d.source = std::string(engine_source);
        d.occurred_at = from_us(now);
        d.received_at = from_us(now);
        d.status = inc ? effect_status(inc->mode) : pingan::status::system;
        d.severity = inc ? inc->severity : pingan::severity::unknown;
        d.scope = inc && inc->redact ? pingan::scope::private_ : pingan::scope::restricted;
        d.references.push_back(cause.id);
        d.body = std::move(b);
        out.push_back(std::move(d));
    }

    std::string render(std::string_view t, const incident& inc, const rule& r,
                       std::optional<pingan::tier> tier, std::optional<std::int64_t> deadline) {
        std::string s;
        json facts;
        bool facts_read = false;
        for (std::size_t i = 0; i < t.size(); ++i) {
            if (t[i] != '{') {
                s += t[i];
                continue;
            }
            auto j = t.find('}', i);
            if (j == std::string_view::npos) {
                s.append(t.substr(i));
                break;
            }
            auto name = t.substr(i + 1, j - i - 1);
            i = j;
            if (name == "school")
                s += inc.school;
            else if (name == "school_name") {
                auto* sc = find_school(inc.school);
                s += sc ? sc->name : (inc.school.empty() ? std::string("全市") : inc.school);
            } else if (name == "district")
                s += inc.district;
            else if (name == "kind")
                s += inc.kind;
            else if (name == "subject")
                s += inc.subject;
            else if (name == "incident")
                s += inc.id;
            else if (name == "tier")
                s += tier ? std::string(enum_name(*tier)) : "";
            else if (name == "rule")
                s += r.id;
            else if (name == "title")
                s += inc.title;
            else if (name == "count")
                s += std::to_string(inc.count);
            else if (name == "basis")
                s += rules::basis_name(r.basis);
            else if (name == "deadline")
                s += deadline ? format_local(from_us(*deadline)) : "";
            else if (name == "due")
                s += inc.due_us ? format_local(from_us(*inc.due_us)) : "";
            else if (name == "period")
                s += inc.subject;
            else if (name.starts_with("body.")) {
                auto key = std::string(name.substr(5));
                // A classified value (minors' data) is never copied into text,
                // which reaches people without clearance; above school level a
                // redacted incident's texts name no body field at all.
                if (is_classified_anywhere(key) ||
                    (inc.redact && tier && *tier != pingan::tier::school)) {
                    s += withheld_text;
                    continue;
                }
                if (!facts_read) {
                    facts = json::parse(inc.facts.empty() ? "{}" : inc.facts, nullptr, false);
                    facts_read = true;
                }
                if (facts.is_object() && facts.contains(key)) s += value_text(facts[key]);
            }
        }
        return s;
    }

    // Tells a step's roles about an incident. Test never pages; Exercise pages
    // are flagged and say so in their first words, whatever the template says.
    // `late`: the deadline passed while the broker was down. `prefix` marks a
    // page that is not the step's first (a cluster that grew, a reminder to a
    // tier already told); it goes to every role, told or not.
    void page(incident& inc, const rule& r, std::size_t si, std::uint32_t repeat,
              std::optional<std::int64_t> deadline, bool late = false,
              std::string_view prefix = {}) {
        if (inc.mode == pingan::status::test) return;
        const auto& s = r.steps[si];
        notification_requested n;
        n.incident_id = inc.id;
        n.rule_id = r.id;
        n.ruleset_hash = rs().hash;
        n.basis = std::string(rules::basis_name(r.basis));
        n.tier = s.tier;
        n.exercise = inc.mode == pingan::status::exercise;
        n.repeat = repeat;
        n.late = late;
        for (const auto& role : s.roles) {
            // Inhibition: a role is told at once about an incident only once.
            auto tr = tier_role(s.tier, role);
            if (s.immediate() && repeat == 0 && !inc.paged.insert(tr).second && prefix.empty())
                continue;
            inc.told_at.emplace(tr, now);
            n.roles.push_back(role);
        }
        if (n.roles.empty()) return;
        n.text = render(s.text, inc, r, s.tier, deadline);
        if (repeat > 0) n.text = "（第" + std::to_string(repeat) + "次提醒）" + n.text;
        n.text = std::string(prefix) + n.text;
        if (n.exercise) n.text = "【演练 EXERCISE】" + n.text;
        truncate_utf8(n.text, 1000);
        emit(std::move(n), &inc, r.id);
        st.dirty_incidents.insert(inc.id);
    }

    // ---- timers ----

    void add_timer(engine_timer t) {
        st.queue.emplace(t.due_us, t.id);
        st.timer_changes[timer_key(t.due_us, t.id)] = encode_timer(t);
        auto id = t.id;
        st.timers.insert_or_assign(id, std::move(t));
    }

    void drop_timer(std::map<std::string, engine_timer>::iterator it) {
        st.queue.erase({it->second.due_us, it->first});
        st.timer_changes[timer_key(it->second.due_us, it->first)] = std::nullopt;
        st.timers.erase(it);
    }

    std::string step_timer_id(const incident& inc, const rule& r, std::size_t si,
                              std::uint32_t repeat) {
        return inc.id + "/" + r.id + "/" + std::to_string(si) + "/" + std::to_string(repeat) +
               "/g" + std::to_string(inc.reopened);
    }

    void schedule_step(const incident& inc, const rule& r, std::size_t si, std::uint32_t repeat,
                       std::int64_t due) {
        engine_timer t;
        t.id = step_timer_id(inc, r, si, repeat);
        t.due_us = due;
        t.kind = engine_timer::what::step;
        t.rule_id = r.id;
        t.incident_id = inc.id;
        t.step = static_cast<std::uint32_t>(si);
        t.repeat = repeat;
        add_timer(std::move(t));
    }

    static bool reached(const incident& inc, std::string_view milestone) {
        if (inc.closed) return true;
        if (milestone == "resolved") milestone = "closed";
        return inc.milestones.count(std::string(milestone)) > 0;
    }

    // Drops the incident's timers that wait for `milestone` (all when it closed).
    void cancel_timers(const incident& inc) {
        auto prefix = inc.id + "/";
        for (auto it = st.timers.lower_bound(prefix);
             it != st.timers.end() && it->first.starts_with(prefix);) {
            auto next = std::next(it);
            const auto* r = rs().find(it->second.rule_id);
            if (!r || it->second.step >= r->steps.size() ||
                reached(inc, r->steps[it->second.step].until))
                drop_timer(it);
            it = next;
        }
    }

    std::int64_t step_time(const incident& inc, const rules::step& s) const {
        if (s.from_due && inc.due_us) return *inc.due_us + s.after.count();
        return inc.anchor_us + s.after.count();
    }

    // Runs a rule's steps for an incident it has just opened or joined.
    void start_steps(incident& inc, const rule& r) {
        for (std::size_t i = 0; i < r.steps.size(); ++i) {
            const auto& s = r.steps[i];
            if (s.immediate()) {
                page(inc, r, i, 0, std::nullopt);
                if (s.repeat_every.count() > 0 && s.repeat_max > 0 && !reached(inc, s.until))
                    schedule_step(inc, r, i, 1, now + s.repeat_every.count());
            } else if (!reached(inc, s.until) && !inc.fired.count(r.id + "#" + std::to_string(i))) {
                schedule_step(inc, r, i, 0, std::max(step_time(inc, s), now));
            }
        }
    }

    void run_step_timer(const engine_timer& t, bool late) {
        auto it = st.incidents.find(t.incident_id);
        const auto* r = rs().find(t.rule_id);
        if (it == st.incidents.end() || !r || t.step >= r->steps.size()) return;
        auto& inc = it->second;
        const auto& s = r->steps[t.step];
        if (reached(inc, s.until)) return;
        // Were all its roles told about this incident already (at once, by
        // this rule or another joining it)? Then the deadline is met, unless
        // the rule asks for a reminder, which says that it is one.
        bool told = !s.escalate_if_told && t.repeat == 0 && !s.immediate() && !s.roles.empty() &&
                    std::all_of(s.roles.begin(), s.roles.end(), [&](const std::string& role) {
                        auto tr = tier_role(s.tier, role);
                        return inc.paged.count(tr) > 0 || inc.told_at.count(tr) > 0;
                    });
        if (told && !s.remind_if_told) {
            inc.fired.insert(r->id + "#" + std::to_string(t.step));
            inc.updated_us = now;
            st.dirty_incidents.insert(inc.id);
            return;
        }
        if (t.repeat == 0 && !s.immediate()) {
            inc.fired.insert(r->id + "#" + std::to_string(t.step));
            incident_overdue o;
            o.incident_id = inc.id;
            o.rule_id = r->id;
            o.ruleset_hash = rs().hash;
            o.step = t.step;
            o.tier = s.tier;
            o.deadline = from_us(t.due_us);
            o.waited_for = s.until == "resolved" ? "closed" : s.until;
            o.late = late;
            emit(std::move(o), &inc, r->id);
            if (inc.mode != pingan::status::test && !told) {
                escalation_raised x;
                x.incident_id = inc.id;
                x.rule_id = r->id;
                x.ruleset_hash = rs().hash;
                x.tier = s.tier;
                x.roles = s.roles;
                x.reason = render(s.text, inc, *r, s.tier, t.due_us);
                truncate_utf8(x.reason, 500);
                x.deadline = from_us(t.due_us);
                x.late = late;
                emit(std::move(x), &inc, r->id);
            }
        }
        page(inc, *r, t.step, t.repeat, t.due_us, late, told ? "【催办 REMINDER】" : "");
        if (s.repeat_every.count() > 0 && t.repeat < s.repeat_max)
            schedule_step(inc, *r, t.step, t.repeat + 1, t.due_us + s.repeat_every.count());
        inc.updated_us = now;
        st.dirty_incidents.insert(inc.id);
    }

    void run_absence_timer(const engine_timer& t) {
        const auto* r = rs().find(t.rule_id);
        if (!r || r->trigger != rules::trigger::absence) return;
        auto p = static_cast<rules::period>(t.period);
        if (eng.reg_) {
            auto start = local_date(t.period_start_us);
            auto label = period_label(p, start);
            auto end = local_midnight_us(start + months(period_months(p)));
            for (const auto& s : eng.reg_->schools()) {
                if (period_for(r->absence, s) != p || !school_passes(r->match, s)) continue;
                auto seen = st.last_seen.find(seen_key(*r, pingan::status::actual, s.id));
                if (seen != st.last_seen.end() && seen->second >= t.period_start_us) continue;
                open_or_join(*r, pingan::status::actual, s.id, s.district_code, label,
                             pingan::severity::moderate, end, 0);
            }
        }
        schedule_absence(*r, p, now);
    }

    void run_timer(std::map<std::string, engine_timer>::iterator it, bool late) {
        auto t = it->second;
        drop_timer(it);
        if (t.kind == engine_timer::what::absence)
            run_absence_timer(t);
        else
            run_step_timer(t, late);
    }

    // Timers due at or before now, earliest first.
    void catch_up(bool late_marks) {
        while (!st.queue.empty() && st.queue.begin()->first <= now) {
            auto it = st.timers.find(st.queue.begin()->second);
            if (it == st.timers.end()) {
                st.queue.erase(st.queue.begin());
                continue;
            }
            bool late = late_marks && now - it->second.due_us > eng.opts_.late_after.count();
            run_timer(it, late);
        }
    }

    // An absence checkpoint scheduled before the first event of a replayed
    // range (at a broker's start) is known from its timer event alone: its id
    // names the rule, the period kind and the period.
    std::map<std::string, engine_timer>::iterator restore_absence_timer(const timer_fired& f) {
        std::string_view id = f.timer_id;
        if (!id.starts_with("absence/")) return st.timers.end();
        id.remove_prefix(8);
        auto a = id.find('/'), b = id.rfind('/');
        if (a == std::string_view::npos || b <= a) return st.timers.end();
        const auto* r = rs().find(id.substr(0, a));
        if (!r || r->trigger != rules::trigger::absence) return st.timers.end();
        auto due = to_us(f.due_at);
        for (auto p : periods_used(r->absence)) {
            if (rules::period_name(p) != id.substr(a + 1, b - a - 1)) continue;
            auto start = period_start(p, local_date(due));
            for (int back = 0; back < 3; ++back, start = start - months(period_months(p)))
                if (period_label(p, start) == id.substr(b + 1)) {
                    engine_timer t;
                    t.id = f.timer_id;
                    t.due_us = due;
                    t.kind = engine_timer::what::absence;
                    t.rule_id = r->id;
                    t.period = static_cast<std::uint8_t>(p);
                    t.period_start_us = local_midnight_us(start);
                    add_timer(std::move(t));
                    return st.timers.find(f.timer_id);
                }
        }
        return st.timers.end();
    }

    void schedule_absence(const rule& r, rules::period p, std::int64_t after) {
        auto [at, start] = next_checkpoint(r.absence, p, after);
        engine_timer t;
        t.id = "absence/" + r.id + "/" + std::string(rules::period_name(p)) + "/" +
               period_label(p, start);
        if (st.timers.count(t.id)) return;
        t.due_us = at;
        t.kind = engine_timer::what::absence;
        t.rule_id = r.id;
        t.period = static_cast<std::uint8_t>(p);
        t.period_start_us = local_midnight_us(start);
        add_timer(std::move(t));
    }

    // Every absence rule has a pending checkpoint for each kind of period it
    // uses. The horizon (the earliest of them) saves the check on most events;
    // it is not stored, and recomputing it schedules nothing new.
    void ensure_absence_timers() {
        if (st.absence_hash == rs().hash && now < st.absence_horizon) return;
        st.absence_hash = rs().hash;
        st.absence_horizon = std::numeric_limits<std::int64_t>::max();
        for (const auto* r : eng.absence_)
            for (auto p : periods_used(r->absence)) {
                schedule_absence(*r, p, now);
                auto [at, start] = next_checkpoint(r->absence, p, now);
                st.absence_horizon = std::min(st.absence_horizon, at);
            }
    }

    // ---- incidents ----

    std::string seen_key(const rule& r, pingan::status mode, std::string_view school) {
        return r.id + '\x1f' + mode_char(mode) + '\x1f' + std::string(school);
    }

    std::string key_of(pingan::status mode, std::string_view school, std::string_view kind,
                       std::string_view subject) {
        std::string k(1, mode_char(mode));
        k += '|';
        k += school;
        k += '|';
        k += kind;
        k += '|';
        k += subject;
        return k;
    }

    incident* by_key(const std::string& key) {
        auto it = st.by_key.find(key);
        if (it == st.by_key.end()) return nullptr;
        auto i = st.incidents.find(it->second);
        return i == st.incidents.end() ? nullptr : &i->second;
    }

    std::string subject_of(const rule& r) {
        std::string s;
        for (const auto& alts : r.incident.subject) {
            std::string v;
            for (const auto& a : alts)
                if (auto* j = field(a); j && !value_text(*j).empty()) {
                    v = value_text(*j);
                    break;
                }
            if (!s.empty()) s += "/";
            s += v;
        }
        return s;
    }

    // The time the cause happened, for windows and periods: occurred_at, but
    // never later than when the broker received it.
    std::int64_t event_time() const { return std::min(to_us(cause.occurred_at), now); }

    // A cross-school incident (no school of its own) records the schools,
    // districts and reports of its window. Returns: true if a school is new.
    bool add_members(incident& inc) {
        if (!inc.school.empty()) return false;
        auto before = inc.schools.size();
        auto add = [&](const std::string& school, const std::string& report) {
            if (school.empty()) return;
            inc.schools.insert(school);
            if (auto* s = find_school(school))
                inc.districts.insert(s->district_code);
            else if (school == cause.school && !cause.district.empty())
                inc.districts.insert(cause.district);
            if (!report.empty() && inc.reports.size() < 1000 &&
                std::find(inc.reports.begin(), inc.reports.end(), report) == inc.reports.end())
                inc.reports.push_back(report);
        };
        if (members_)
            for (const auto& e : *members_)
                add(e.school, e.report);
        if (!derived_type(cause.type()) && cause.source != engine_source)
            add(cause.school, cause.id.str());
        return inc.schools.size() > before;
    }

    // A cluster grew: its immediate steps tell their roles again, saying so.
    void grown(incident& inc, const rule& r) {
        inc.title = render(r.incident.title, inc, r, std::nullopt, std::nullopt);
        truncate_utf8(inc.title, 500);
        auto* sc = find_school(cause.school);
        auto prefix = "【扩大 GROWN】新增 " + (sc ? sc->name : cause.school) + "，共 " +
                      std::to_string(inc.schools.size()) + " 所学校：";
        for (const auto& id : inc.rules)
            if (const auto* rr = rs().find(id))
                for (std::size_t i = 0; i < rr->steps.size(); ++i)
                    if (rr->steps[i].immediate()) page(inc, *rr, i, 0, std::nullopt, false, prefix);
    }

    // Level from the casualty thresholds of 生产安全事故报告和调查处理条例 art. 3.
    static incident_level level_of(std::uint32_t deaths, std::uint32_t serious) {
        if (deaths >= 30 || serious >= 100) return incident_level::I;
        if (deaths >= 10 || serious >= 50) return incident_level::II;
        if (deaths >= 3 || serious >= 10) return incident_level::III;
        return incident_level::IV;
    }

    // The typed incident a rule opens beside its own: an incident.reported of
    // the rule's category, made by the engine, naming the incident it comes
    // from, and run at once through the incident.reported rules in the mode of
    // that incident. What those rules derive references the report.
    void open_report(incident& parent, const rule& r) {
        if (!r.incident.report || !parent.fired.insert("report").second) return;
        const auto& rp = *r.incident.report;
        incident_reported b;
        b.incident_id = parent.id;
        b.category = rp.category;
        auto num = [&](const std::optional<std::string>& f) -> std::uint32_t {
            const json* j = f ? field(*f) : nullptr;
            if (!j || !j->is_number()) return 0;
            auto v = j->get<double>();
            return v <= 0 ? 0u : v >= 1e9 ? 1'000'000'000u : static_cast<std::uint32_t>(v);
        };
        b.deaths = num(rp.deaths);
        b.serious_injuries = num(rp.serious_injuries);
        b.injuries = num(rp.injuries);
        b.provisional_level = level_of(b.deaths, b.serious_injuries);
        b.reporter_role = "engine";
        b.summary = parent.title;
        emit(std::move(b), &parent, r.id);
        event report = out.back();
        run nested{eng, st, report, out, now};
        nested.mode = parent.mode;
        auto it = rs().by_type.find(std::string(incident_reported::type));
        if (it == rs().by_type.end()) return;
        for (auto i : it->second)
            nested.apply_rule(rs().rules[i]);
    }

    void open_or_join(const rule& r, pingan::status mode, const std::string& school,
                      const std::string& district, const std::string& subject, pingan::severity sev,
                      std::optional<std::int64_t> due, std::uint32_t count) {
        auto key = key_of(mode, school, r.incident.kind, subject);
        incident* inc = by_key(key);
        if (!inc) {
            incident n;
            n.id = incident_id_of(key);
            n.key = key;
            n.kind = r.incident.kind;
            n.subject = subject;
            n.school = school;
            n.district = district;
            n.mode = mode;
            n.severity = sev;
            n.hazard = r.incident.lifecycle == rules::lifecycle_kind::hazard;
            n.redact = r.incident.redact_above_school;
            n.opened_us = n.anchor_us = n.updated_us = now;
            n.cause = cause.id.str();
            n.count = count;
            n.events = 1;
            if (!derived_type(cause.type())) {
                // The incident table keeps no classified value: texts never show one.
                json facts = body_json();
                redact_classified(cause.type(), facts, withheld_text);
                n.facts = facts.dump();
            }
            n.due_us = due ? due : due_of(r);
            n.rules.push_back(r.id);
            if (cause.source == engine_source)
                if (const auto* rep = std::get_if<incident_reported>(&cause.body))
                    n.parent = rep->incident_id;
            add_members(n);
            auto id = n.id;
            inc = &st.incidents.emplace(id, std::move(n)).first->second;
            st.index(*inc);
            inc->title = render(r.incident.title, *inc, r, std::nullopt, std::nullopt);
            truncate_utf8(inc->title, 500);
            incident_opened o;
            o.incident_id = inc->id;
            o.rule_id = r.id;
            o.ruleset_hash = rs().hash;
            o.kind = inc->kind;
            o.subject = inc->subject;
            truncate_utf8(o.subject, 200);
            o.title = inc->title;
            if (inc->due_us) o.due = from_us(*inc->due_us);
            emit(std::move(o), inc, r.id);
            // A cross-school incident's opening references, after its cause,
            // the other reports of its window, so that a reader of the log
            // (the console) knows every member school from the start.
            if (inc->school.empty())
                for (const auto& rep : inc->reports) {
                    if (out.back().references.size() >= max_member_references) break;
                    auto id = event_id::parse(rep);
                    if (id && *id != cause.id) out.back().references.push_back(*id);
                }
            start_steps(*inc, r);
            open_report(*inc, r);
        } else if (inc->closed) {
            ++inc->events;
            inc->updated_us = now;
            st.dirty_incidents.insert(inc->id);
            // Evidence from before the incident was closed, arriving late,
            // does not reopen it: it is recorded in the log and nothing else.
            if (to_us(cause.occurred_at) <= inc->closed_us) return;
            reopen(*inc, r, "new evidence: " + std::string(cause.type()) + " " + cause.id.str());
            inc->count = std::max(inc->count, count);
            inc->due_us = due ? due : due_of(r);
            inc->rules = {r.id};
            add_members(*inc);
            start_steps(*inc, r);
            open_report(*inc, r);
        } else {
            ++inc->events;
            inc->updated_us = now;
            inc->count = std::max(inc->count, count);
            if (severity_rank(sev) > severity_rank(inc->severity)) inc->severity = sev;
            st.dirty_incidents.insert(inc->id);
            bool grew = add_members(*inc);
            if (std::find(inc->rules.begin(), inc->rules.end(), r.id) == inc->rules.end()) {
                inc->rules.push_back(r.id);
                if (!inc->due_us) inc->due_us = due ? due : due_of(r);
                start_steps(*inc, r);
            } else if (grew) {
                grown(*inc, r);
            }
            open_report(*inc, r);
        }
        st.dirty_incidents.insert(inc->id);
    }

    std::optional<std::int64_t> due_of(const rule& r) {
        if (r.incident.due_field) {
            if (auto* j = field(*r.incident.due_field))
                if (auto t = time_of(*j)) return *t + r.incident.due_offset.count();
        }
        if (r.incident.due_default.count() > 0) return now + r.incident.due_default.count();
        return std::nullopt;
    }

    void reopen(incident& inc, const rule& r, std::string reason) {
        inc.closed = false;
        inc.milestones.clear();
        inc.paged.clear();
        inc.fired.clear();
        inc.acked_by.clear();
        inc.rectified_by.clear();
        inc.rectified_actor.clear();
        ++inc.reopened;
        inc.anchor_us = now;
        inc.closed_us = 0;
        incident_reopened o;
        o.incident_id = inc.id;
        o.rule_id = r.id;
        o.ruleset_hash = rs().hash;
        o.reason = std::move(reason);
        truncate_utf8(o.reason, 500);
        emit(std::move(o), &inc, r.id);
        st.dirty_incidents.insert(inc.id);
    }

    void close(incident& inc, std::string reason) {
        inc.closed = true;
        inc.milestones.insert("closed");
        inc.closed_us = now;
        inc.updated_us = now;
        cancel_timers(inc);
        incident_closed c;
        c.incident_id = inc.id;
        c.rule_id = inc.rules.empty() ? "" : inc.rules.front();
        c.ruleset_hash = rs().hash;
        c.reason = std::move(reason);
        truncate_utf8(c.reason, 500);
        emit(std::move(c), &inc, c.rule_id);
        st.dirty_incidents.insert(inc.id);
    }

    void mark(incident& inc, const std::string& milestone) {
        if (inc.closed || !inc.milestones.insert(milestone).second) return;
        inc.updated_us = now;
        cancel_timers(inc);
        st.dirty_incidents.insert(inc.id);
    }

    // A mark rule matched: set its milestone (or close a plain incident), and
    // with incident.due move the due time to the one the event names.
    void marked(incident& inc, const rule& r) {
        if (inc.closed) return;
        if (*r.mark == "closed") {
            if (!inc.hazard)
                close(inc, std::string(cause.type()) + " " + cause.id.str() + " (" + r.id + ")");
            return;
        }
        mark(inc, *r.mark);
        if (r.incident.has_due)
            if (auto d = due_of(r)) redue(inc, *d);
    }

    // The incident's due time moves: its after_due deadlines that have not
    // passed move with it (a remediation plan's own deadline).
    void redue(incident& inc, std::int64_t due) {
        if (inc.due_us && *inc.due_us == due) return;
        inc.due_us = due;
        inc.updated_us = now;
        st.dirty_incidents.insert(inc.id);
        for (const auto& id : inc.rules) {
            const auto* rr = rs().find(id);
            if (!rr) continue;
            for (std::size_t i = 0; i < rr->steps.size(); ++i) {
                const auto& s = rr->steps[i];
                if (!s.from_due) continue;
                if (auto it = st.timers.find(step_timer_id(inc, *rr, i, 0)); it != st.timers.end())
                    drop_timer(it);
                if (!inc.appeal.empty() || reached(inc, s.until) ||
                    inc.fired.count(rr->id + "#" + std::to_string(i)))
                    continue;
                schedule_step(inc, *rr, i, 0, std::max(step_time(inc, s), now));
            }
        }
    }

    // Incidents an acknowledgement, resolution or hazard event names: by
    // incident id, or by subject (a hazard id, a report's incident id) at the
    // event's school. Only incidents of the event's own mode (an exercise
    // acknowledgement never silences a real incident) and of the event's own
    // school (one school's key cannot silence another school's incident). A
    // cross-school incident is acted on from one of its member schools, or
    // from no school (the city); a city-wide incident of no member from anywhere.
    std::vector<incident*> named(std::string_view ref) {
        std::vector<incident*> v;
        auto it = st.incidents.find(std::string(ref));
        if (it != st.incidents.end()) {
            const auto& inc = it->second;
            bool from_place = !inc.school.empty() ? inc.school == cause.school
                                                  : inc.schools.empty() || cause.school.empty() ||
                                                        inc.schools.count(cause.school) > 0;
            if (mode_char(inc.mode) == mode_char(cause.status) && from_place)
                v.push_back(&it->second);
            return v;
        }
        auto sk =
            std::string(1, mode_char(cause.status)) + "|" + cause.school + "|" + std::string(ref);
        for (auto [a, b] = st.by_subject.equal_range(sk); a != b; ++a)
            if (auto i = st.incidents.find(a->second); i != st.incidents.end())
                v.push_back(&i->second);
        return v;
    }

    void acknowledged(const incident_acknowledged& a) {
        for (auto* inc : named(a.incident_id)) {
            if (inc->closed) continue;
            if (std::find(inc->acked_by.begin(), inc->acked_by.end(), cause.actor) ==
                inc->acked_by.end())
                inc->acked_by.push_back(cause.actor);
            st.dirty_incidents.insert(inc->id);
            mark(*inc, "acknowledged"); // a second acknowledgement changes nothing more
            // The typed incident a rule opened beside this one is the same
            // event: acknowledging one acknowledges both.
            for (auto& [id, child] : st.incidents)
                if (child.parent == inc->id && !child.closed && child.mode == inc->mode) {
                    if (std::find(child.acked_by.begin(), child.acked_by.end(), cause.actor) ==
                        child.acked_by.end())
                        child.acked_by.push_back(cause.actor);
                    st.dirty_incidents.insert(child.id);
                    mark(child, "acknowledged");
                }
        }
    }

    // A report made to a tier: the milestone only it sets. A report on an
    // incident counts for the typed incident opened beside it.
    void reported(const report_submitted& rp) {
        auto milestone = std::string(rules::reported_prefix) + std::string(enum_name(rp.to));
        for (auto* inc : named(rp.incident_id)) {
            if (inc->closed) continue;
            mark(*inc, milestone);
            for (auto& [id, child] : st.incidents)
                if (child.parent == inc->id && !child.closed && child.mode == inc->mode)
                    mark(child, milestone);
        }
    }

    void resolved(const incident_resolved& x) {
        for (auto* inc : named(x.incident_id)) {
            // A hazard closes only by verification (DOMAIN §4 rule 3).
            if (inc->closed || inc->hazard) continue;
            if (x.withdrawn) inc->milestones.insert("withdrawn");
            close(*inc, std::string(x.withdrawn ? "withdrawn" : "resolved") + " by " +
                            (cause.actor.empty() ? "unknown" : cause.actor) +
                            (x.resolution.empty() ? "" : ": " + x.resolution));
        }
    }

    // A note joins the incident's record (its count of events and its time of
    // update) and changes nothing of its state or deadlines.
    void noted(const incident_note& n) {
        for (auto* inc : named(n.incident_id)) {
            ++inc->events;
            inc->updated_us = now;
            st.dirty_incidents.insert(inc->id);
        }
    }

    void rectified(const hazard_rectified& h) {
        for (auto* inc : named(h.hazard_id)) {
            if (inc->closed || !inc->hazard) continue;
            inc->rectified_by = h.rectified_by;
            inc->rectified_actor = cause.actor;
            mark(*inc, "rectified");
        }
    }

    void verified(const hazard_verified& h) {
        for (auto* inc : named(h.hazard_id)) {
            if (inc->closed || !inc->hazard || !inc->milestones.count("rectified")) continue;
            const auto* r = inc->rules.empty() ? nullptr : rs().find(inc->rules.front());
            // The people named in the bodies decide; a publishing identity
            // counts only against a person, because a school's kiosk key may
            // publish both the fix and the check for two different people.
            bool same = h.verifier == inc->rectified_by ||
                        (!inc->rectified_actor.empty() && h.verifier == inc->rectified_actor) ||
                        (!cause.actor.empty() && cause.actor == inc->rectified_by);
            if (same) {
                // Two-person rule: the verification does not count; say so to
                // the school roles of the hazard's rule.
                if (r)
                    for (std::size_t i = 0; i < r->steps.size(); ++i)
                        if (r->steps[i].tier == pingan::tier::school) {
                            notification_requested n;
                            n.incident_id = inc->id;
                            n.rule_id = r->id;
                            n.ruleset_hash = rs().hash;
                            n.basis = std::string(rules::basis_name(r->basis));
                            n.tier = pingan::tier::school;
                            n.roles = r->steps[i].roles;
                            n.exercise = inc->mode == pingan::status::exercise;
                            n.text = "隐患 " + inc->subject + " 的验收无效：验收人 " + h.verifier +
                                     " 即整改人，须由他人验收 (verification must be by "
                                     "someone other than the fixer)";
                            if (n.exercise) n.text = "【演练 EXERCISE】" + n.text;
                            if (inc->mode != pingan::status::test) emit(std::move(n), inc, r->id);
                            break;
                        }
                continue;
            }
            inc->appeal.clear(); // a verification settles what an appeal disputed
            inc->last_verification = h.result == verify_result::pass ? 1 : 2;
            if (h.result == verify_result::pass) {
                inc->milestones.insert("verified");
                close(*inc, "verified by " + h.verifier);
            } else {
                inc->milestones.erase("rectified");
                inc->rectified_by.clear();
                inc->rectified_actor.clear();
                if (!r) continue;
                reopen_for_rectification(*inc, *r, h.verifier);
            }
        }
    }

    // A failed verification: back to "rectification due", with a fresh deadline.
    void reopen_for_rectification(incident& inc, const rule& r, const std::string& verifier) {
        for (auto it = st.timers.lower_bound(inc.id + "/");
             it != st.timers.end() && it->first.starts_with(inc.id + "/");)
            drop_timer(it++);
        auto keep_ack = inc.milestones.count("acknowledged") > 0;
        auto paged = inc.paged;
        reopen(inc, r, "verification failed (" + verifier + ")");
        if (keep_ack) inc.milestones.insert("acknowledged");
        inc.paged = std::move(paged); // those told at once already know of it
        inc.due_us = now + r.incident.due_default.count();
        resume_deadlines(inc);
    }

    // Schedules the incident's deadlines that have neither passed nor been met.
    void resume_deadlines(incident& inc) {
        for (const auto& id : inc.rules)
            if (const auto* rr = rs().find(id))
                for (std::size_t i = 0; i < rr->steps.size(); ++i)
                    if (!rr->steps[i].immediate() && !reached(inc, rr->steps[i].until) &&
                        !inc.fired.count(rr->id + "#" + std::to_string(i)))
                        schedule_step(inc, *rr, i, 0, std::max(step_time(inc, rr->steps[i]), now));
    }

    void drop_all_timers(const incident& inc) {
        for (auto it = st.timers.lower_bound(inc.id + "/");
             it != st.timers.end() && it->first.starts_with(inc.id + "/");)
            drop_timer(it++);
    }

    // An appeal of a hazard's last verification, to the tier above. A disputed
    // failure holds the rectification deadlines; a disputed pass reopens the
    // closed hazard, with no deadline, until the decision. The decision's own
    // deadline is a rule's (an incident the appeal opens).
    void appealed(const hazard_appealed& a) {
        auto want = a.disputed == verify_result::pass ? 1 : 2;
        for (auto* inc : named(a.hazard_id)) {
            if (!inc->hazard || !inc->appeal.empty() || inc->last_verification != want) continue;
            const auto* r = inc->rules.empty() ? nullptr : rs().find(inc->rules.front());
            if (!r) continue;
            if (want == 1) {
                if (!inc->closed) continue;
                auto keep_ack = inc->milestones.count("acknowledged") > 0;
                auto paged = inc->paged;
                reopen(*inc, *r,
                       "appeal " + a.appeal_id + " by the " + std::string(enum_name(a.appellant)) +
                           " disputes the passed verification");
                if (keep_ack) inc->milestones.insert("acknowledged");
                inc->paged = std::move(paged);
            } else {
                if (inc->closed) continue;
                drop_all_timers(*inc);
            }
            inc->appeal = a.appeal_id;
            inc->appeal_disputed = static_cast<std::uint8_t>(a.disputed);
            inc->held_us = now;
            inc->milestones.insert("appealed");
            ++inc->events;
            inc->updated_us = now;
            st.dirty_incidents.insert(inc->id);
        }
    }

    void appeal_decided(const hazard_appeal_decided& d) {
        for (auto* inc : named(d.hazard_id)) {
            if (!inc->hazard || inc->closed || inc->appeal.empty() || inc->appeal != d.appeal_id)
                continue;
            const auto* r = inc->rules.empty() ? nullptr : rs().find(inc->rules.front());
            if (!r) continue;
            bool disputed_pass =
                inc->appeal_disputed == static_cast<std::uint8_t>(verify_result::pass);
            bool upheld = d.outcome == appeal_outcome::upheld;
            auto held = now - inc->held_us;
            inc->appeal.clear();
            inc->milestones.erase("appealed");
            ++inc->events;
            inc->updated_us = now;
            st.dirty_incidents.insert(inc->id);
            auto who = " (appeal " + d.appeal_id + ", " + d.decided_by + ")";
            if (disputed_pass == upheld) {
                // The pass stands, or the failure is overturned: verified.
                inc->last_verification = 1;
                inc->milestones.insert("verified");
                close(*inc, (upheld ? "passed verification upheld on appeal"
                                    : "failed verification overturned on appeal") +
                                who);
            } else if (upheld) {
                // The failure stands: its deadlines run again, later by the hold.
                if (inc->due_us) *inc->due_us += held;
                inc->anchor_us += held;
                resume_deadlines(*inc);
            } else {
                // The pass is overturned: rectification is due again, from now.
                inc->last_verification = 2;
                inc->rectified_by.clear();
                inc->rectified_actor.clear();
                inc->milestones.erase("rectified");
                inc->anchor_us = now;
                inc->due_us = now + r->incident.due_default.count();
                resume_deadlines(*inc);
            }
        }
    }

    // ---- rules ----

    std::optional<std::string> group_of(const std::vector<std::string>& by, std::string& subject,
                                        bool& has_school) {
        std::string g;
        subject.clear();
        has_school = false;
        for (const auto& f : by) {
            std::string v;
            if (f == "school") {
                v = cause.school;
                has_school = true;
            } else if (f == "district") {
                v = cause.district;
            } else {
                auto* j = field(f);
                if (!j) return std::nullopt;
                v = value_text(*j);
                if (!subject.empty()) subject += "/";
                subject += v;
            }
            g += v;
            g += '\x1f';
        }
        return g;
    }

    void apply_rule(const rule& r) {
        if (!filters(r.match)) return;
        switch (r.trigger) {
        case rules::trigger::each:
            return apply_each(r);
        case rules::trigger::window:
            return apply_window(r);
        case rules::trigger::sustained:
            return apply_sustained(r);
        case rules::trigger::absence:
            return apply_absence(r);
        }
    }

    // Each matching event opens an incident, or joins (or marks) the open one.
    void apply_each(const rule& r) {
        if (!conditions(r.match)) return;
        auto key = key_of(mode, cause.school, r.incident.kind, subject_of(r));
        if (r.mark) {
            if (auto* inc = by_key(key)) marked(*inc, r);
            return;
        }
        open_or_join(r, mode, cause.school, cause.district, subject_of(r), cause.severity,
                     std::nullopt, 1);
    }

    // Enough matching events (or schools, or a sum) within the window open one.
    void apply_window(const rule& r) {
        bool holds = conditions(r.match);
        if (!holds && !r.window.consecutive) return;
        std::string subject;
        bool has_school;
        auto g = group_of(r.window.group_by, subject, has_school);
        if (!g) return;
        if (!holds) {
            // A run is broken: the count starts again.
            auto wkey = r.id + '\x1f' + mode_char(mode) + '\x1f' + *g;
            if (auto it = st.windows.find(wkey); it != st.windows.end()) {
                it->second.clear();
                st.dirty_engine.insert("w/" + wkey);
            }
            return;
        }
        auto t = event_time();
        auto from = now - r.window.within.count();
        if (t < from) return; // happened before the window: does not count now
        auto wkey = r.id + '\x1f' + mode_char(mode) + '\x1f' + *g;
        auto& w = st.windows[wkey];
        std::erase_if(w, [&](const window_entry& x) { return x.t_us < from; });
        window_entry x;
        x.t_us = t;
        x.school = cause.school;
        x.report = cause.id.str();
        if (r.window.sum) {
            auto* j = field(*r.window.sum);
            x.value = j && j->is_number() ? j->get<double>() : 0;
        }
        w.push_back(std::move(x));
        st.dirty_engine.insert("w/" + wkey);
        double total = 0;
        if (r.window.distinct_schools) {
            std::set<std::string> schools;
            for (auto& e : w)
                schools.insert(e.school);
            total = static_cast<double>(schools.size());
        } else {
            for (auto& e : w)
                total += e.value;
        }
        if (total < r.window.at_least) return;
        members_ = &w;
        open_or_join(r, mode, has_school ? cause.school : std::string(),
                     has_school || std::find(r.window.group_by.begin(), r.window.group_by.end(),
                                             "district") != r.window.group_by.end()
                         ? cause.district
                         : std::string(),
                     subject, cause.severity, std::nullopt,
                     static_cast<std::uint32_t>(std::lround(total)));
        members_ = nullptr;
    }

    // A condition held for the whole duration opens one.
    void apply_sustained(const rule& r) {
        std::string subject;
        bool has_school;
        auto g = group_of(r.sustained.group_by, subject, has_school);
        if (!g) return;
        auto skey = r.id + '\x1f' + mode_char(mode) + '\x1f' + *g;
        // Only a change of the held runs is written: most readings are in
        // range with no run held, and then there is nothing to store.
        if (!conditions(r.match)) {
            if (st.sustained.erase(skey) > 0) st.dirty_engine.insert("s/" + skey);
            return;
        }
        auto [it, fresh] = st.sustained.emplace(skey, event_time());
        if (fresh) {
            st.dirty_engine.insert("s/" + skey);
            return;
        }
        auto held = now - it->second;
        if (held < r.sustained.duration.count()) return;
        open_or_join(r, mode, has_school ? cause.school : std::string(),
                     has_school ? cause.district : std::string(), subject, cause.severity,
                     std::nullopt, static_cast<std::uint32_t>(held / 60'000'000));
    }

    // The awaited event came: records when, and closes the period's absence incident.
    void apply_absence(const rule& r) {
        if (!conditions(r.match) || cause.school.empty()) return;
        auto k = seen_key(r, mode, cause.school);
        auto t = event_time();
        if (auto [seen, fresh] = st.last_seen.try_emplace(k, t); fresh || t > seen->second) {
            seen->second = t;
            st.dirty_engine.insert("a/" + k);
        }
        // The awaited event came: close this period's absence incident.
        if (auto* s = find_school(cause.school)) {
            auto p = period_for(r.absence, *s);
            auto label = period_label(p, period_start(p, local_date(t)));
            if (auto* inc = by_key(key_of(mode, cause.school, r.incident.kind, label));
                inc && !inc->closed)
                close(*inc, std::string(cause.type()) + " recorded");
        }
    }

    void announce() {
        if (st.announced_hash == rs().hash) return;
        ruleset_loaded l;
        l.hash = rs().hash;
        l.name = rs().name;
        l.ruleset_version = rs().version;
        l.rule_count = static_cast<std::uint32_t>(rs().rules.size());
        if (!st.announced_hash.empty()) l.previous_hash = st.announced_hash;
        emit(std::move(l), nullptr, "ruleset");
        out.back().school.clear();
        out.back().district.clear();
        st.announced_hash = rs().hash;
        st.dirty_meta = true;
    }

    void input() {
        auto type = cause.type();
        if (derived_type(type) || cause.source == engine_source) {
            if (type != timer_fired::type) return;
            announce();
            // Only this timer runs here, so that what it causes references it.
            // Timers due before it have their own timer events, stored before
            // it; those it makes that are due already fire in the broker's next
            // round, each with its own. It may already have run (an event's
            // catch-up); then this changes nothing.
            const auto& f = std::get<timer_fired>(cause.body);
            auto it = st.timers.find(f.timer_id);
            if (it == st.timers.end()) it = restore_absence_timer(f);
            if (it != st.timers.end()) run_timer(it, f.late);
            ensure_absence_timers();
            return;
        }
        if (cause.status == pingan::status::system) return;
        announce();
        catch_up(true);
        ensure_absence_timers();
        if (const auto* a = std::get_if<incident_acknowledged>(&cause.body))
            acknowledged(*a);
        else if (const auto* x = std::get_if<incident_resolved>(&cause.body))
            resolved(*x);
        else if (const auto* n = std::get_if<incident_note>(&cause.body))
            noted(*n);
        else if (const auto* h = std::get_if<hazard_rectified>(&cause.body))
            rectified(*h);
        else if (const auto* v = std::get_if<hazard_verified>(&cause.body))
            verified(*v);
        else if (const auto* rp = std::get_if<report_submitted>(&cause.body))
            reported(*rp);
        else if (const auto* ap = std::get_if<hazard_appealed>(&cause.body))
            appealed(*ap);
        else if (const auto* ad = std::get_if<hazard_appeal_decided>(&cause.body))
            appeal_decided(*ad);
        auto it = rs().by_type.find(std::string(type));
        if (it == rs().by_type.end()) return;
        for (auto i : it->second)
            apply_rule(rs().rules[i]);
    }
};

// ---- public ---------------------------------------------------------------------------

engine::engine(std::shared_ptr<const rules::ruleset> rs, std::shared_ptr<const registry> reg,
               options o)
    : rules_(std::move(rs)), reg_(std::move(reg)), opts_(o) {
    if (!rules_) throw error(errc::internal, "engine needs a rule set");
    for (const auto& r : rules_->rules)
        if (r.trigger == rules::trigger::absence) absence_.push_back(&r);
}

void engine::apply(engine_state& st, const event& e, std::vector<event>& out) const {
    run r{*this, st, e, out, to_us(e.received_at)};
    r.input();
}

std::optional<timestamp> engine::next_due(const engine_state& st) const {
    if (st.queue.empty()) return std::nullopt;
    return from_us(st.queue.begin()->first);
}

void engine::fire(const engine_state& st, timestamp now, std::vector<event>& out) const {
    for (const auto& [due, id] : st.queue) {
        if (due > to_us(now)) break;
        auto it = st.timers.find(id);
        if (it == st.timers.end()) continue;
        event e;
        std::string tag = id + "@" + std::to_string(due);
        e.id = derived_id(event_id{}, tag, 0);
        if (it->second.kind == engine_timer::what::step)
            if (auto i = st.incidents.find(it->second.incident_id); i != st.incidents.end()) {
                e.school = i->second.school;
                e.district = i->second.district;
            }
        e.source = std::string(engine_source);
        e.occurred_at = from_us(due);
        e.received_at = now;
        e.status = pingan::status::system;
        timer_fired f;
        f.timer_id = id;
        f.due_at = from_us(due);
        f.late = to_us(now) - due > opts_.late_after.count();
        e.body = std::move(f);
        out.push_back(std::move(e));
    }
}

bool engine::derived_type(std::string_view type) noexcept {
    return std::find(derived_types.begin(), derived_types.end(), type) != derived_types.end();
}

bool engine::made_by_engine(const event& e) noexcept {
    return derived_type(e.type()) || e.source == engine_source;
}

void engine::start(engine_state& st, timestamp now) const {
    event none;
    std::vector<event> out;
    run r{*this, st, none, out, to_us(now)};
    r.ensure_absence_timers();
}

bool engine::started(const engine_state& st) const {
    if (absence_.empty() || st.absence_hash == rules_->hash) return true;
    // After a restart: the checkpoints are in the stored timers.
    for (const auto* r : absence_)
        for (auto p : periods_used(r->absence)) {
            auto prefix = "absence/" + r->id + "/" + std::string(rules::period_name(p)) + "/";
            auto it = st.timers.lower_bound(prefix);
            if (it == st.timers.end() || !it->first.starts_with(prefix)) return false;
        }
    return true;
}

event_id derived_id(const event_id& cause, std::string_view tag, std::uint32_t seq) {
    crypto_generichash_state s;
    crypto_generichash_init(&s, nullptr, 0, 16);
    crypto_generichash_update(&s, cause.bytes.data(), cause.bytes.size());
    crypto_generichash_update(&s, reinterpret_cast<const unsigned char*>(tag.data()), tag.size());
    unsigned char sq[5] = {0, static_cast<unsigned char>(seq >> 24),
                           static_cast<unsigned char>(seq >> 16),
                           static_cast<unsigned char>(seq >> 8), static_cast<unsigned char>(seq)};
    crypto_generichash_update(&s, sq, sizeof sq);
    event_id id;
    crypto_generichash_final(&s, id.bytes.data(), 16);
    id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0f) | 0x80); // version 8
    id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3f) | 0x80); // RFC 9562 variant
    return id;
}

pingan::status effect_status(pingan::status mode) noexcept {
    switch (mode) {
    case pingan::status::exercise:
        return pingan::status::exercise;
    case pingan::status::test:
        return pingan::status::test;
    default:
        return pingan::status::system;
    }
}

std::string encode_incident(const incident& i) {
    std::ostringstream os;
    {
        cereal::PortableBinaryOutputArchive ar(os);
        auto& x = const_cast<incident&>(i);
        ar(x);
        x.serialize_more(ar);
        x.serialize_extra(ar);
    }
    return std::move(os).str();
}
bool decode_incident(std::string_view b, incident& out) {
    try {
        std::istringstream is{std::string(b)};
        cereal::PortableBinaryInputArchive ar(is);
        ar(out);
        if (is.peek() != std::char_traits<char>::eof()) out.serialize_more(ar);
        if (is.peek() != std::char_traits<char>::eof()) out.serialize_extra(ar);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}
std::string encode_timer(const engine_timer& t) {
    return encode_cereal(const_cast<engine_timer&>(t));
}
bool decode_timer(std::string_view b, engine_timer& out) {
    return decode_cereal(b, out);
}
namespace {
// Windows stored before entries named their report: time, value, school.
struct window_entry_v1 {
    std::int64_t t_us = 0;
    double value = 1;
    std::string school;
    template <class A> void serialize(A& ar) { ar(t_us, value, school); }
};
constexpr std::string_view window_v2 = "W2"; // cereal's own first byte is 0 or 1
} // namespace

std::string encode_window(const std::vector<window_entry>& w) {
    return std::string(window_v2) + encode_cereal(const_cast<std::vector<window_entry>&>(w));
}
bool decode_window(std::string_view b, std::vector<window_entry>& out) {
    if (b.starts_with(window_v2)) return decode_cereal(b.substr(window_v2.size()), out);
    std::vector<window_entry_v1> old;
    if (!decode_cereal(b, old)) return false;
    out.clear();
    for (auto& e : old)
        out.push_back({e.t_us, e.value, std::move(e.school), {}});
    return true;
}

std::string timer_key(std::int64_t due_us, std::string_view id) {
    auto u = static_cast<std::uint64_t>(due_us) ^ (1ull << 63);
    std::string k(8, '\0');
    for (int i = 7; i >= 0; --i, u >>= 8)
        k[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xff);
    k.append(id);
    return k;
}

json incident_to_json(const incident& i) {
    json j;
    j["id"] = i.id;
    j["kind"] = i.kind;
    j["subject"] = i.subject;
    j["school"] = i.school;
    j["district"] = i.district;
    j["title"] = i.title;
    j["mode"] = std::string(enum_name(i.mode));
    j["severity"] = std::string(enum_name(i.severity));
    j["state"] = i.closed                             ? "closed"
                 : i.milestones.count("rectified")    ? "rectified"
                 : i.milestones.count("acknowledged") ? "acknowledged"
                                                      : "open";
    j["milestones"] = i.milestones;
    j["rules"] = i.rules;
    j["acknowledged_by"] = i.acked_by;
    j["opened_at"] = format_utc(from_us(i.opened_us));
    j["updated_at"] = format_utc(from_us(i.updated_us));
    j["closed_at"] = i.closed ? json(format_utc(from_us(i.closed_us))) : json(nullptr);
    j["due"] = i.due_us ? json(format_utc(from_us(*i.due_us))) : json(nullptr);
    j["deadlines_passed"] = i.fired;
    j["paged"] = i.paged;
    j["reopened"] = i.reopened;
    j["events"] = i.events;
    j["count"] = i.count;
    if (i.hazard) j["rectified_by"] = i.rectified_by;
    j["cause"] = i.cause;
    if (i.school.empty() && !i.schools.empty()) {
        j["schools"] = i.schools;
        j["districts"] = i.districts;
        j["reports"] = i.reports;
    }
    if (!i.parent.empty()) j["parent"] = i.parent;
    if (!i.appeal.empty()) j["appeal"] = i.appeal;
    return j;
}

bool concerns(const event& e, const incident& i) {
    if (e.id.str() == i.cause) return true;
    auto body = body_to_json(e.body);
    auto names = [&](const char* field, const std::string& what) {
        auto it = body.find(field);
        return it != body.end() && it->is_string() && it->get_ref<const std::string&>() == what;
    };
    if (names("incident_id", i.id)) return true;
    if (auto it = body.find("timer_id");
        it != body.end() && it->is_string() &&
        it->get_ref<const std::string&>().find(i.id) != std::string::npos)
        return true;
    if (e.school != i.school || e.status != i.mode) return false;
    return names("hazard_id", i.subject) || names("incident_id", i.subject);
}

} // namespace pingan
