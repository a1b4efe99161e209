// YAML → rule set, with every error located and explained.
//
// The parser walks the document once and keeps going after an error, so that
// one `pingan rules check` run lists everything wrong with a file. Every
// message names what was found and what was expected there. Literal values in
// conditions are checked against the event type's field list by running them
// through the same JSON decoder the broker uses, so a misspelt enumerator
// ("illnes") is caught here and not at three in the morning.
#include "broker/engine/rules.hpp"

#include "common/privacy.hpp"

#include <sodium.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace pingan::rules {
namespace {

std::string qt(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

std::string join(const auto& items) {
    std::string s;
    for (const auto& i : items) {
        if (!s.empty()) s += ", ";
        s += std::string_view(i);
    }
    return s;
}

constexpr std::array period_names{"month", "quarter", "term"};

std::optional<period> parse_period(std::string_view s) {
    for (std::size_t i = 0; i < period_names.size(); ++i)
        if (s == period_names[i]) return static_cast<period>(i);
    return std::nullopt;
}

std::optional<micros> parse_signed_duration(std::string_view s) {
    bool neg = !s.empty() && s.front() == '-';
    if (neg) s.remove_prefix(1);
    if (s == "0") return micros{0};
    auto d = parse_duration(s);
    if (!d) return std::nullopt;
    return neg ? -*d : *d;
}

// "2mo", "24d", "2mo3d", "0d".
std::optional<cal_offset> parse_cal_offset(std::string_view s) {
    cal_offset o;
    bool any = false;
    while (!s.empty()) {
        std::size_t i = 0;
        int n = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i < 4)
            n = n * 10 + (s[i++] - '0');
        if (i == 0) return std::nullopt;
        s.remove_prefix(i);
        if (s.starts_with("mo")) {
            o.months += n;
            s.remove_prefix(2);
        } else if (s.starts_with("d")) {
            o.days += n;
            s.remove_prefix(1);
        } else {
            return std::nullopt;
        }
        any = true;
    }
    return any ? std::optional(o) : std::nullopt;
}

bool valid_rule_id(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    });
}

const std::map<std::string_view, condition::op>& op_names() {
    using o = condition::op;
    static const std::map<std::string_view, o> m{{"eq", o::eq},
                                                 {"ne", o::ne},
                                                 {"in", o::in},
                                                 {"not_in", o::not_in},
                                                 {"gt", o::gt},
                                                 {"ge", o::ge},
                                                 {"lt", o::lt},
                                                 {"le", o::le},
                                                 {"exists", o::exists},
                                                 {"contains", o::contains},
                                                 {"gt_field", o::gt_field},
                                                 {"ge_field", o::ge_field},
                                                 {"lt_field", o::lt_field},
                                                 {"le_field", o::le_field},
                                                 {"eq_field", o::eq_field},
                                                 {"ne_field", o::ne_field},
                                                 {"before", o::before},
                                                 {"after", o::after}};
    return m;
}

bool is_field_op(condition::op o) {
    using c = condition::op;
    return o == c::gt_field || o == c::ge_field || o == c::lt_field || o == c::le_field ||
           o == c::eq_field || o == c::ne_field;
}

// A plain YAML scalar becomes a bool, a number or a string; a quoted one stays a string.
json scalar_json(const YAML::Node& n) {
    auto s = n.Scalar();
    if (n.Tag() == "!") return s;
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
    if (!s.empty()) {
        char* end = nullptr;
        errno = 0;
        long long i = std::strtoll(s.c_str(), &end, 10);
        if (end && *end == '\0' && errno == 0) return i;
        double d = std::strtod(s.c_str(), &end);
        if (end && *end == '\0' && errno == 0) return d;
    }
    return s;
}

class parser {
  public:
    std::vector<diagnostic> errors;

    void error(const YAML::Mark& m, std::string msg) {
        diagnostic d;
        if (!m.is_null()) {
            d.line = m.line + 1;
            d.column = m.column + 1;
        }
        d.message = std::move(msg);
        errors.push_back(std::move(d));
    }
    void error(const YAML::Node& n, std::string msg) { error(n.Mark(), std::move(msg)); }
    void error_at(int line, std::string msg) {
        errors.push_back({line, line ? 1 : 0, std::move(msg)});
    }

    // Reports keys that are not in `allowed`.
    void check_keys(const YAML::Node& n, std::initializer_list<std::string_view> allowed,
                    std::string_view what) {
        for (auto it = n.begin(); it != n.end(); ++it) {
            auto k = it->first.Scalar();
            if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
                error(it->first, "unknown key " + qt(k) + " in " + std::string(what) +
                                     "; expected one of: " + join(allowed));
        }
    }

    bool want_map(const YAML::Node& n, std::string_view what) {
        if (n.IsMap()) return true;
        error(n, "expected " + std::string(what) + " to be a mapping (key: value lines)");
        return false;
    }

    std::optional<std::string> scalar(const YAML::Node& n, std::string_view what) {
        if (n.IsScalar()) return n.Scalar();
        error(n, "expected " + std::string(what) + " to be a single value");
        return std::nullopt;
    }

    // A required string under `key` of map `m`.
    std::optional<std::string> req_string(const YAML::Node& m, const char* key,
                                          std::string_view what) {
        auto n = m[key];
        if (!n) {
            error(m, std::string(what) + " needs \"" + key + "\"");
            return std::nullopt;
        }
        return scalar(n, std::string(what) + "." + key);
    }

    // A scalar or a list of scalars.
    std::vector<std::pair<std::string, YAML::Mark>> list(const YAML::Node& n,
                                                         std::string_view what) {
        std::vector<std::pair<std::string, YAML::Mark>> out;
        if (n.IsScalar()) {
            out.emplace_back(n.Scalar(), n.Mark());
        } else if (n.IsSequence()) {
            for (const auto& x : n)
                if (auto s = scalar(x, what)) out.emplace_back(*s, x.Mark());
        } else {
            error(n, "expected " + std::string(what) + " to be a value or a list of values");
        }
        return out;
    }

    std::optional<micros> duration(const YAML::Node& n, std::string_view what,
                                   bool allow_negative = false) {
        auto s = scalar(n, what);
        if (!s) return std::nullopt;
        auto d = allow_negative ? parse_signed_duration(*s)
                                : (*s == "0" ? std::optional(micros{0}) : parse_duration(*s));
        if (!d)
            error(n, std::string(what) + ": " + qt(*s) +
                         " is not a duration; expected e.g. 90s, 10m, 2h, 7d or 2h30m");
        return d;
    }

    std::optional<bool> boolean(const YAML::Node& n, std::string_view what) {
        auto s = scalar(n, what);
        if (!s) return std::nullopt;
        if (*s == "true") return true;
        if (*s == "false") return false;
        error(n, std::string(what) + ": " + qt(*s) + " is not true or false");
        return std::nullopt;
    }

    template <class E> std::optional<E> enumerator(const YAML::Node& n, std::string_view what) {
        auto s = scalar(n, what);
        if (!s) return std::nullopt;
        auto e = enum_parse<E>(*s);
        if (!e) error(n, std::string(what) + ": " + qt(*s) + " is not one of " + enum_choices<E>());
        return e;
    }

    std::optional<std::uint32_t> count(const YAML::Node& n, std::string_view what) {
        auto s = scalar(n, what);
        if (!s) return std::nullopt;
        char* end = nullptr;
        long v = std::strtol(s->c_str(), &end, 10);
        if (s->empty() || *end != '\0' || v < 1 || v > 1000000) {
            error(n, std::string(what) + ": " + qt(*s) + " is not a whole number from 1");
            return std::nullopt;
        }
        return static_cast<std::uint32_t>(v);
    }
};

// The fields of one event type, for checking names and literal values.
class type_fields {
  public:
    explicit type_fields(std::string_view type) : type_(type) {
        if (auto b = make_body(type)) {
            known_ = true;
            defaults_ = body_to_json(*b);
        }
    }
    bool known() const { return known_; }
    const std::string& type() const { return type_; }
    bool has(std::string_view f) const {
        if (f.starts_with("school.")) {
            auto a = f.substr(7);
            return std::find(school_fields.begin(), school_fields.end(), a) != school_fields.end();
        }
        return known_ && defaults_.contains(std::string(f));
    }
    std::string names() const {
        std::string s;
        for (auto it = defaults_.begin(); it != defaults_.end(); ++it) {
            if (!s.empty()) s += ", ";
            s += it.key();
        }
        return s;
    }
    bool is_list(std::string_view f) const {
        auto it = defaults_.find(std::string(f));
        return it != defaults_.end() && it->is_array();
    }
    // Returns: the decoder's complaint about `value` in field `f`, if any.
    std::optional<std::string> check_value(std::string_view f, const json& value) const {
        if (!known_ || f.starts_with("school.")) return std::nullopt;
        auto j = defaults_;
        j[std::string(f)] = value;
        body b;
        auto p = body_from_json(type_, j, b);
        if (!p) return std::nullopt;
        // The decoder names the field as "body.x"; in a rule it is just "x".
        return p.detail.starts_with("body.") ? p.detail.substr(5) : p.detail;
    }

  private:
    std::string type_;
    bool known_ = false;
    json defaults_;
};

// A field the decoder reads as a time: it takes an RFC 3339 time and refuses
// other text (a text field takes both).
bool is_time_field(const type_fields& tf, std::string_view f) {
    return !tf.check_value(f, json("2026-01-01T00:00:00Z")) &&
           tf.check_value(f, json("not a time")).has_value();
}

class rules_parser : parser {
  public:
    parse_result run(std::string_view text) {
        parse_result out;
        YAML::Node doc;
        try {
            doc = YAML::Load(std::string(text));
        } catch (const YAML::ParserException& x) {
            error(x.mark, "not valid YAML: " + x.msg);
            out.errors = std::move(errors);
            return out;
        }
        auto rs = std::make_shared<ruleset>();
        if (!doc.IsMap()) {
            error(doc, "expected a rule set: a mapping with ruleset, version, roles and rules");
            out.errors = std::move(errors);
            return out;
        }
        check_keys(doc,
                   {"ruleset", "version", "description", "roles", "evacuation_target", "rules"},
                   "the rule set");
        if (auto e = doc["evacuation_target"]) evacuation_of(e, rs->evacuation);
        if (auto s = req_string(doc, "ruleset", "the rule set")) rs->name = *s;
        if (auto s = req_string(doc, "version", "the rule set")) rs->version = *s;
        if (auto r = doc["roles"]) {
            for (auto& [name, mark] : list(r, "roles")) {
                if (std::find(rs->roles.begin(), rs->roles.end(), name) != rs->roles.end())
                    error(mark, "role " + qt(name) + " is declared twice");
                rs->roles.push_back(name);
            }
        } else {
            error(doc, "the rule set needs \"roles\": the list of roles pages may go to");
        }
        roles_ = &rs->roles;
        auto rn = doc["rules"];
        if (!rn || !rn.IsSequence() || rn.size() == 0) {
            error(rn ? rn : doc, "the rule set needs \"rules\": a non-empty list of rules");
        } else {
            for (const auto& r : rn)
                if (auto x = rule_of(r)) rs->rules.push_back(std::move(*x));
        }
        check_milestones(*rs);
        for (std::size_t i = 0; i < rs->rules.size(); ++i) {
            const auto& r = rs->rules[i];
            if (!rs->by_id.emplace(r.id, i).second)
                error_at(r.line, "rule id " + qt(r.id) + " is used twice");
            rs->by_type[r.match.type].push_back(i);
        }
        std::sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) {
            return std::tie(a.line, a.column) < std::tie(b.line, b.column);
        });
        if (errors.empty()) {
            rs->hash = hash_text(text);
            out.rules = std::move(rs);
        }
        out.errors = std::move(errors);
        return out;
    }

  private:
    const std::vector<std::string>* roles_ = nullptr;
    std::set<std::string> marks_;
    std::vector<std::pair<std::string, YAML::Mark>> untils_;
    std::string rule_id_; // the rule being read, for messages

    void check_milestones(const ruleset&) {
        for (auto& [u, mark] : untils_) {
            bool ok = std::find(builtin_milestones.begin(), builtin_milestones.end(), u) !=
                          builtin_milestones.end() ||
                      u == "resolved" || marks_.count(u) ||
                      (u.starts_with(reported_prefix) &&
                       enum_parse<pingan::tier>(u.substr(reported_prefix.size())));
            if (!ok) {
                std::string choices =
                    join(builtin_milestones) +
                    ", resolved, reported:TIER (TIER: " + enum_choices<pingan::tier>() + ")";
                for (auto& m : marks_)
                    choices += ", " + m;
                error(mark, "until: " + qt(u) + " is not a milestone; expected one of: " + choices);
            }
        }
    }

    std::optional<condition> condition_of(const YAML::Node& n, const type_fields& tf) {
        if (!want_map(n, "a condition")) return std::nullopt;
        condition c;
        c.line = n.Mark().line + 1;
        auto f = n["field"];
        if (!f) {
            error(n, "a condition needs \"field\": the body field it tests");
            return std::nullopt;
        }
        if (auto s = scalar(f, "field")) c.field = *s;
        if (!c.field.empty() && tf.known() && !tf.has(c.field)) {
            error(f, "field " + qt(c.field) +
                         " is not a field of this event type; expected "
                         "one of: " +
                         tf.names() + ", or school." + std::string(school_fields[0]) + " …");
            return std::nullopt;
        }
        int ops = 0;
        bool ok = true;
        for (auto it = n.begin(); it != n.end(); ++it) {
            auto k = it->first.Scalar();
            if (k == "field") continue;
            if (k == "offset") {
                if (auto d = duration(it->second, "offset", true)) c.offset = *d;
                continue;
            }
            auto o = op_names().find(k);
            if (o == op_names().end()) {
                std::string choices;
                for (auto& [name, _] : op_names())
                    choices += std::string(name) + " ";
                error(it->first, "unknown condition " + qt(k) +
                                     "; expected field, offset and one of: " + choices);
                ok = false;
                continue;
            }
            ++ops;
            c.what = o->second;
            // A copy: yaml-cpp's iterator hands out a temporary, and a reference to
            // its member would dangle.
            const YAML::Node v = it->second;
            using op = condition::op;
            if (is_field_op(c.what)) {
                if (auto s = scalar(v, k)) {
                    c.other_field = *s;
                    if (tf.known() && !tf.has(c.other_field)) {
                        error(v, k + ": " + qt(*s) + " is not a field of this event type");
                        ok = false;
                    }
                }
            } else if (c.what == op::before || c.what == op::after) {
                if (auto d = duration(v, k, true)) c.offset = *d;
            } else if (c.what == op::in || c.what == op::not_in) {
                if (!v.IsSequence()) {
                    error(v, k + ": expected a list of values, e.g. [a, b]");
                    ok = false;
                    continue;
                }
                c.value = json::array();
                for (const auto& x : v) {
                    if (!x.IsScalar()) {
                        error(x, k + ": expected a single value in the list");
                        ok = false;
                        continue;
                    }
                    auto j = scalar_json(x);
                    if (auto p = tf.check_value(c.field, j)) {
                        error(x, *p);
                        ok = false;
                    }
                    c.value.push_back(std::move(j));
                }
            } else if (c.what == op::exists) {
                if (auto b = boolean(v, "exists")) c.value = *b;
            } else {
                if (!v.IsScalar()) {
                    error(v, k + ": expected a single value");
                    ok = false;
                    continue;
                }
                c.value = scalar_json(v);
                json probe = c.what == op::contains ? json::array({c.value}) : c.value;
                if (c.what == op::contains && !c.field.starts_with("school.") &&
                    !tf.is_list(c.field)) {
                    error(v, "contains: field " + qt(c.field) + " is not a list");
                    ok = false;
                } else if (auto p = tf.check_value(c.field, probe)) {
                    error(v, *p);
                    ok = false;
                }
            }
        }
        if (ops != 1) {
            error(n, "a condition needs exactly one test (eq, ne, in, not_in, gt, ge, lt, le, "
                     "exists, contains, *_field, before, after); found " +
                         std::to_string(ops));
            ok = false;
        }
        return ok ? std::optional(c) : std::nullopt;
    }

    all_of conditions_of(const YAML::Node& n, const type_fields& tf, std::string_view what) {
        all_of out;
        if (!n.IsSequence()) {
            error(n, std::string(what) + ": expected a list of conditions");
            return out;
        }
        for (const auto& c : n)
            if (auto x = condition_of(c, tf)) out.push_back(std::move(*x));
        return out;
    }

    void fields_of(const YAML::Node& n, const type_fields& tf, std::string_view what,
                   std::vector<std::string>& out, bool allow_place) {
        out.clear();
        for (auto& [f, mark] : list(n, what)) {
            bool place = f == "school" || f == "district";
            if (place && !allow_place) {
                error(mark, std::string(what) + ": " + qt(f) + " is not a body field");
                continue;
            }
            if (!place && tf.known() && !tf.has(f))
                error(mark, std::string(what) + ": " + qt(f) +
                                " is not a field of this event type; expected school, district "
                                "or one of: " +
                                tf.names());
            if (!place) refuse_classified(mark, tf, f, what);
            out.push_back(f);
        }
    }

    void match_of(const YAML::Node& n, match_spec& m, type_fields& tf) {
        if (!want_map(n, "match")) return;
        check_keys(n,
                   {"type", "status", "severity_at_least", "school_type", "district", "school_bus",
                    "boarding", "canteen", "where", "any"},
                   "match");
        if (auto t = req_string(n, "type", "match")) {
            m.type = *t;
            tf = type_fields(*t);
            if (!tf.known())
                error(n["type"],
                      "type " + qt(*t) +
                          " is not a known event type; expected one of: " + join(known_types()));
        }
        if (auto s = n["status"]) {
            for (auto& [v, mark] : list(s, "status")) {
                auto e = enum_parse<pingan::status>(v);
                if (!e || *e == pingan::status::system)
                    error(mark, "status: " + qt(v) + " is not one of Actual, Exercise, Test");
                else
                    m.statuses.push_back(*e);
            }
        }
        if (auto s = n["severity_at_least"])
            m.severity_at_least = enumerator<pingan::severity>(s, "severity_at_least");
        if (auto s = n["school_type"]) {
            for (auto& [v, mark] : list(s, "school_type")) {
                if (auto t = parse_school_type(v))
                    m.school_types.push_back(*t);
                else
                    error(mark, "school_type: " + qt(v) +
                                    " is not one of kindergarten, primary, junior, nine_year, "
                                    "senior, vocational, special");
            }
        }
        if (auto s = n["district"])
            for (auto& [v, mark] : list(s, "district"))
                m.districts.push_back(v);
        if (auto s = n["school_bus"]) m.school_bus = boolean(s, "school_bus");
        if (auto s = n["boarding"]) m.boarding = boolean(s, "boarding");
        if (auto s = n["canteen"]) m.canteen = boolean(s, "canteen");
        if (auto w = n["where"]) m.where = conditions_of(w, tf, "where");
        if (auto a = n["any"]) {
            if (!a.IsSequence()) {
                error(a, "any: expected a list of condition lists");
            } else {
                for (const auto& g : a) {
                    if (g.IsMap()) { // a single condition is a group of one
                        if (auto c = condition_of(g, tf)) m.any.push_back({std::move(*c)});
                    } else {
                        m.any.push_back(conditions_of(g, tf, "any"));
                    }
                }
            }
        }
    }

    void step_of(const YAML::Node& n, rule& r, bool has_due) {
        if (!want_map(n, "a step")) return;
        check_keys(n, {"tier", "roles", "text", "after", "after_due", "until", "repeat", "if_told"},
                   "a step");
        step s;
        s.line = n.Mark().line + 1;
        if (auto t = n["tier"]) {
            if (auto x = enumerator<pingan::tier>(t, "tier")) s.tier = *x;
        } else {
            error(n, "a step needs \"tier\": one of " + enum_choices<pingan::tier>());
        }
        if (auto ro = n["roles"]) {
            for (auto& [v, mark] : list(ro, "roles")) {
                if (std::find(roles_->begin(), roles_->end(), v) == roles_->end())
                    error(mark,
                          "role " + qt(v) + " is not declared; expected one of: " + join(*roles_));
                s.roles.push_back(v);
            }
            if (s.roles.empty()) error(ro, "roles: expected at least one role");
        } else {
            error(n, "a step needs \"roles\": whom to page");
        }
        if (auto t = n["text"]) {
            if (auto x = scalar(t, "text")) {
                s.text = *x;
                check_template(t, s.text, r);
            }
        } else {
            error(n, "a step needs \"text\": the message, e.g. \"{school_name}: {title}\"");
        }
        if (n["after"] && n["after_due"])
            error(n, "a step has either after or after_due, not both");
        if (auto a = n["after"]) {
            if (auto d = duration(a, "after")) s.after = *d;
        } else if (auto a = n["after_due"]) {
            s.from_due = true;
            if (auto d = duration(a, "after_due", true)) s.after = *d;
            if (!has_due)
                error(a, "after_due needs the incident to have a due time: set incident.due");
        }
        if (auto u = n["until"]) {
            if (auto x = scalar(u, "until")) {
                s.until = *x;
                untils_.emplace_back(*x, u.Mark());
            }
        } else {
            s.until = s.from_due ? "closed" : "acknowledged";
        }
        if (auto rp = n["repeat"]) {
            if (want_map(rp, "repeat")) {
                check_keys(rp, {"every", "max"}, "repeat");
                if (auto e = rp["every"]) {
                    if (auto d = duration(e, "repeat.every")) {
                        s.repeat_every = *d;
                        if (d->count() <= 0) error(e, "repeat.every: expected more than 0s");
                    }
                } else {
                    error(rp, "repeat needs \"every\": the time between reminders");
                }
                if (auto m = rp["max"]) {
                    if (auto c = count(m, "repeat.max")) s.repeat_max = *c;
                } else {
                    error(rp, "repeat needs \"max\": how many reminders at most");
                }
            }
        }
        if (auto t = n["if_told"]) {
            if (auto x = scalar(t, "if_told")) {
                if (*x == "remind")
                    s.remind_if_told = true;
                else if (*x == "escalate")
                    s.escalate_if_told = true;
                else if (*x != "satisfied")
                    error(t, "if_told: " + qt(*x) + " is not satisfied, remind or escalate");
                if (s.immediate())
                    error(t, "if_told applies to a deadline step (one with after or after_due)");
            }
        }
        r.steps.push_back(std::move(s));
    }

    void evacuation_of(const YAML::Node& n, evacuation_target& e) {
        if (!want_map(n, "evacuation_target")) return;
        check_keys(n, {"seconds", "by_school_type", "floors_included", "per_floor_above"},
                   "evacuation_target");
        auto number = [&](const YAML::Node& x, std::string_view what, std::uint32_t& out,
                          bool zero_ok) {
            auto v = scalar(x, what);
            if (!v) return;
            char* end = nullptr;
            long l = std::strtol(v->c_str(), &end, 10);
            if (v->empty() || *end != '\0' || l < (zero_ok ? 0 : 1) || l > 100000)
                error(x, std::string(what) + ": " + qt(*v) + " is not a whole number of " +
                             (zero_ok ? "seconds or floors from 0" : "seconds from 1"));
            else
                out = static_cast<std::uint32_t>(l);
        };
        if (auto x = n["seconds"]) number(x, "evacuation_target.seconds", e.seconds, false);
        if (auto m = n["by_school_type"]; m && want_map(m, "evacuation_target.by_school_type")) {
            e.by_school_type.clear();
            for (auto it = m.begin(); it != m.end(); ++it) {
                auto t = parse_school_type(it->first.Scalar());
                if (!t) {
                    error(it->first, "evacuation_target.by_school_type: " + qt(it->first.Scalar()) +
                                         " is not a school type");
                    continue;
                }
                number(it->second, "evacuation_target.by_school_type", e.by_school_type[*t], false);
            }
        }
        if (auto x = n["floors_included"])
            number(x, "evacuation_target.floors_included", e.floors_included, true);
        if (auto x = n["per_floor_above"])
            number(x, "evacuation_target.per_floor_above", e.per_floor_above, true);
    }

    void report_of(const YAML::Node& n, rule& r, const type_fields& tf) {
        if (!want_map(n, "incident.report")) return;
        check_keys(n, {"category", "deaths", "serious_injuries", "injuries"}, "incident.report");
        report_spec rp;
        rp.line = n.Mark().line + 1;
        if (auto c = n["category"]) {
            if (auto x = enumerator<incident_category>(c, "incident.report.category"))
                rp.category = *x;
        } else {
            error(n, "incident.report needs \"category\": one of " +
                         enum_choices<incident_category>());
        }
        for (auto [key, out] : {std::pair{"deaths", &rp.deaths},
                                {"serious_injuries", &rp.serious_injuries},
                                {"injuries", &rp.injuries}}) {
            auto f = n[key];
            if (!f) continue;
            auto x = scalar(f, std::string("incident.report.") + key);
            if (!x) continue;
            if (tf.known() && !tf.has(*x))
                error(f, std::string("incident.report.") + key + ": " + qt(*x) +
                             " is not a field of this event type; expected one of: " + tf.names());
            *out = *x;
        }
        if (r.match.type == incident_reported::type)
            error(n, "incident.report: a rule on incident.reported cannot open another report");
        r.incident.report = std::move(rp);
    }

    // A classified field (minors' data) never becomes part of an incident's
    // subject: the subject is shown in incident.opened and its texts.
    void refuse_classified(const YAML::Mark& mark, const type_fields& tf, std::string_view f,
                           std::string_view what) {
        if (!is_classified(tf.type(), f)) return;
        error(mark, "rule " + qt(rule_id_) + ": " + std::string(what) + ": " + qt(f) +
                        " is minors' data (classified in docs/events.md) and may not name an "
                        "incident; use the report's id (alert_id, case_id)");
    }

    // Texts (titles, page texts) reach people without clearance: a template
    // may not name a classified field, whatever the tier.
    void refuse_classified_text(const YAML::Node& n, std::string_view t, const rule& r,
                                std::string_view what) {
        for (auto i = t.find("{body."); i != std::string_view::npos; i = t.find("{body.", i + 1)) {
            auto j = t.find('}', i);
            if (j == std::string_view::npos) return;
            auto f = t.substr(i + 6, j - i - 6);
            if (is_classified(r.match.type, f))
                error(n, "rule " + qt(r.id) + ": " + std::string(what) + ": {body." +
                             std::string(f) +
                             "} is minors' data (classified in docs/events.md) and is never "
                             "rendered into text; name the incident ({incident}) instead");
        }
    }

    void check_template(const YAML::Node& n, std::string_view t, const rule& r) {
        refuse_classified_text(n, t, r, "text");
        static constexpr std::array names{"school",   "school_name", "district", "kind",  "subject",
                                          "incident", "tier",        "rule",     "title", "count",
                                          "deadline", "due",         "period",   "basis"};
        type_fields tf(r.match.type);
        for (std::size_t i = 0; i < t.size(); ++i) {
            if (t[i] != '{') continue;
            auto j = t.find('}', i);
            if (j == std::string_view::npos) {
                error(n, "text: a \"{\" is not closed by \"}\"");
                return;
            }
            auto name = t.substr(i + 1, j - i - 1);
            bool ok = std::find(names.begin(), names.end(), name) != names.end();
            if (!ok && name.starts_with("body.")) ok = !tf.known() || tf.has(name.substr(5));
            if (!ok)
                error(n, "text: {" + std::string(name) + "} is not a placeholder; expected " +
                             "{body.FIELD} or one of: " + join(names));
            i = j;
        }
    }

    std::optional<rule> rule_of(const YAML::Node& n) {
        if (!want_map(n, "a rule")) return std::nullopt;
        check_keys(n,
                   {"id", "basis", "title", "description", "match", "window", "sustained",
                    "absence", "incident", "mark", "steps"},
                   "a rule");
        rule r;
        r.line = n.Mark().line + 1;
        rule_id_.clear();
        if (auto s = req_string(n, "id", "a rule")) {
            r.id = *s;
            rule_id_ = r.id;
            if (!valid_rule_id(r.id))
                error(n["id"], "id " + qt(r.id) +
                                   " must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-'");
        }
        if (auto b = n["basis"]) {
            if (auto s = scalar(b, "basis")) {
                if (*s == "S")
                    r.basis = basis::S;
                else if (*s == "L")
                    r.basis = basis::L;
                else if (*s == "M")
                    r.basis = basis::M;
                else
                    error(b, "basis: " + qt(*s) + " is not one of S, L, M (DOMAIN.md tags)");
            }
        } else {
            error(n, "rule " + qt(r.id) + " needs \"basis\": S, L or M, the tag of its limit");
        }
        if (auto s = req_string(n, "title", "a rule")) r.title = *s;
        if (auto d = n["description"])
            if (auto s = scalar(d, "description")) r.description = *s;

        type_fields tf("");
        if (auto m = n["match"])
            match_of(m, r.match, tf);
        else
            error(n, "rule " + qt(r.id) + " needs \"match\" with at least a type");

        int triggers = 0;
        if (auto w = n["window"]; w && want_map(w, "window")) {
            ++triggers;
            r.trigger = trigger::window;
            check_keys(w,
                       {"at_least", "within", "group_by", "sum", "distinct_schools", "consecutive"},
                       "window");
            if (auto a = w["at_least"]) {
                if (auto c = count(a, "window.at_least")) r.window.at_least = *c;
            } else {
                error(w, "window needs \"at_least\": the count that triggers the rule");
            }
            if (auto a = w["within"]) {
                if (auto d = duration(a, "window.within")) r.window.within = *d;
            } else {
                error(w, "window needs \"within\": the length of the window, e.g. 7d");
            }
            if (auto g = w["group_by"])
                fields_of(g, tf, "window.group_by", r.window.group_by, true);
            if (auto s = w["sum"]) {
                if (auto x = scalar(s, "window.sum")) {
                    r.window.sum = *x;
                    if (tf.known() && !tf.has(*x))
                        error(s, "window.sum: " + qt(*x) + " is not a field of this type");
                }
            }
            if (auto d = w["distinct_schools"])
                if (auto b = boolean(d, "window.distinct_schools")) r.window.distinct_schools = *b;
            if (auto c = w["consecutive"]) {
                if (auto b = boolean(c, "window.consecutive")) r.window.consecutive = *b;
                if (r.window.consecutive && r.window.distinct_schools)
                    error(c, "window.consecutive counts a run of events of one group; it cannot "
                             "be combined with distinct_schools");
            }
        }
        if (auto s = n["sustained"]; s && want_map(s, "sustained")) {
            ++triggers;
            r.trigger = trigger::sustained;
            check_keys(s, {"for", "group_by"}, "sustained");
            if (auto a = s["for"]) {
                if (auto d = duration(a, "sustained.for")) r.sustained.duration = *d;
            } else {
                error(s, "sustained needs \"for\": how long the conditions must hold");
            }
            if (auto g = s["group_by"])
                fields_of(g, tf, "sustained.group_by", r.sustained.group_by, true);
        }
        if (auto a = n["absence"]; a && want_map(a, "absence")) {
            ++triggers;
            r.trigger = trigger::absence;
            absence_of(a, r.absence);
        }
        if (triggers > 1) error(n, "a rule has at most one of window, sustained and absence");

        bool has_due = false;
        if (auto i = n["incident"]; i && want_map(i, "incident")) {
            check_keys(
                i,
                {"kind", "subject", "title", "due", "lifecycle", "redact_above_school", "report"},
                "incident");
            if (auto rp = i["report"]) report_of(rp, r, tf);
            if (auto s = req_string(i, "kind", "incident")) r.incident.kind = *s;
            if (auto s = i["subject"]) {
                for (auto& [f, mark] : list(s, "incident.subject")) {
                    std::vector<std::string> alts;
                    std::size_t p = 0;
                    while (true) {
                        auto q = f.find('|', p);
                        alts.push_back(f.substr(p, q == std::string::npos ? q : q - p));
                        if (q == std::string::npos) break;
                        p = q + 1;
                    }
                    for (auto& a : alts) {
                        if (tf.known() && !tf.has(a))
                            error(mark, "incident.subject: " + qt(a) +
                                            " is not a field of this event type; expected one "
                                            "of: " +
                                            tf.names());
                        refuse_classified(mark, tf, a, "incident.subject");
                    }
                    r.incident.subject.push_back(std::move(alts));
                }
            }
            if (auto t = i["title"]) {
                if (auto s = scalar(t, "incident.title")) {
                    r.incident.title = *s;
                    check_template(t, *s, r);
                }
            } else {
                r.incident.title = r.title;
                if (auto t = n["title"]) refuse_classified_text(t, r.title, r, "title");
            }
            if (auto d = i["due"]; d && want_map(d, "incident.due")) {
                check_keys(d, {"field", "offset", "default"}, "incident.due");
                if (auto f = d["field"]) {
                    if (auto s = scalar(f, "incident.due.field")) {
                        r.incident.due_field = *s;
                        if (tf.known() && !tf.has(*s))
                            error(f, "incident.due.field: " + qt(*s) +
                                         " is not a field of this event type");
                        else if (tf.known() && !is_time_field(tf, *s))
                            error(f, "incident.due.field: " + qt(*s) +
                                         " is not a time field (RFC 3339) of this event type");
                    }
                }
                if (auto o = d["offset"]) {
                    if (!d["field"])
                        error(o, "incident.due.offset is added to incident.due.field; name the "
                                 "field");
                    if (auto x = duration(o, "incident.due.offset", true))
                        r.incident.due_offset = *x;
                }
                if (auto f = d["default"]) {
                    if (auto x = duration(f, "incident.due.default")) r.incident.due_default = *x;
                } else {
                    error(d, "incident.due needs \"default\": the time allowed when the event "
                             "names no due time");
                }
                has_due = true;
                r.incident.has_due = true;
            }
            if (auto l = i["lifecycle"]) {
                if (auto s = scalar(l, "incident.lifecycle")) {
                    if (*s == "plain")
                        r.incident.lifecycle = lifecycle_kind::plain;
                    else if (*s == "hazard")
                        r.incident.lifecycle = lifecycle_kind::hazard;
                    else
                        error(l, "incident.lifecycle: " + qt(*s) + " is not plain or hazard");
                }
            }
            if (auto x = i["redact_above_school"])
                if (auto b = boolean(x, "incident.redact_above_school"))
                    r.incident.redact_above_school = *b;
        } else if (!i) {
            error(n, "rule " + qt(r.id) +
                         " needs \"incident\" with a kind: what the rule opens or marks");
        }
        if (r.incident.lifecycle == lifecycle_kind::hazard &&
            (r.incident.subject.size() != 1 ||
             r.incident.subject[0] != std::vector<std::string>{"hazard_id"}))
            error(n, "incident.lifecycle hazard needs subject: [hazard_id]");
        if (r.trigger == trigger::absence && !r.incident.subject.empty())
            error(n, "an absence rule's subject is its period; remove incident.subject");

        if (r.trigger == trigger::absence) has_due = true; // the end of the period
        if (n["mark"] && r.incident.has_due && n["mark"].IsScalar() &&
            (n["mark"].Scalar() == "closed" || n["mark"].Scalar() == "resolved"))
            error(n["mark"], "mark: closed closes the incident; it cannot also set incident.due");
        if (auto m = n["mark"]) {
            if (auto s = scalar(m, "mark")) {
                r.mark = *s;
                if (*s == "resolved") r.mark = "closed";
                if (*r.mark != "closed") marks_.insert(*s);
                if (r.trigger != trigger::each)
                    error(m, "mark: a rule that marks an incident cannot have a window, "
                             "sustained or absence trigger");
                if (*r.mark == "acknowledged" || *r.mark == "rectified" || *r.mark == "verified" ||
                    s->starts_with(reported_prefix))
                    error(m, "mark: " + qt(*s) +
                                 " is set only by its own events (incident.acknowledged, "
                                 "hazard.rectified, hazard.verified, report.submitted); name "
                                 "another milestone, or closed");
                if (r.incident.lifecycle == lifecycle_kind::hazard)
                    error(m, "mark: a rule that marks an incident does not set its lifecycle; "
                             "remove incident.lifecycle");
                if (r.incident.report)
                    error(m, "mark: a rule that marks an incident opens no typed incident; "
                             "remove incident.report");
            }
        }
        if (auto s = n["steps"]) {
            if (r.mark) error(s, "a rule with mark has no steps: it only records a milestone");
            if (!s.IsSequence() || s.size() == 0)
                error(s, "steps: expected a non-empty list of steps");
            else
                for (const auto& x : s)
                    step_of(x, r, has_due);
        } else if (!r.mark) {
            error(n, "rule " + qt(r.id) + " needs \"steps\" (or \"mark\")");
        }
        return r;
    }

    void absence_of(const YAML::Node& a, absence_spec& s) {
        check_keys(a, {"period", "period_by_school_type", "remind_at"}, "absence");
        auto per = [&](const YAML::Node& n, std::string_view what) -> std::optional<period> {
            auto x = scalar(n, what);
            if (!x) return std::nullopt;
            auto p = parse_period(*x);
            if (!p)
                error(n,
                      std::string(what) + ": " + qt(*x) + " is not one of " + join(period_names));
            return p;
        };
        if (auto p = a["period"]) {
            if (auto x = per(p, "absence.period")) s.default_period = *x;
        } else {
            error(a, "absence needs \"period\": month, quarter or term");
        }
        if (auto m = a["period_by_school_type"]; m && want_map(m, "period_by_school_type")) {
            for (auto it = m.begin(); it != m.end(); ++it) {
                auto t = parse_school_type(it->first.Scalar());
                if (!t) {
                    error(it->first, "period_by_school_type: " + qt(it->first.Scalar()) +
                                         " is not a school type");
                    continue;
                }
                if (auto x = per(it->second, "period_by_school_type")) s.by_school_type[*t] = *x;
            }
        }
        if (auto m = a["remind_at"]; m && want_map(m, "remind_at")) {
            for (auto it = m.begin(); it != m.end(); ++it) {
                auto p = parse_period(it->first.Scalar());
                if (!p) {
                    error(it->first, "remind_at: " + qt(it->first.Scalar()) + " is not one of " +
                                         join(period_names));
                    continue;
                }
                auto x = scalar(it->second, "remind_at");
                if (!x) continue;
                auto o = parse_cal_offset(*x);
                if (!o)
                    error(it->second, "remind_at: " + qt(*x) +
                                          " is not a calendar offset; expected e.g. 24d, 2mo or "
                                          "2mo10d from the start of the period");
                else
                    s.remind_at[*p] = *o;
            }
        }
    }
};

} // namespace

std::uint32_t evacuation_target::for_school(const school& s) const noexcept {
    auto it = by_school_type.find(s.type);
    std::uint32_t base = it == by_school_type.end() ? seconds : it->second;
    if (s.max_floors > floors_included) base += per_floor_above * (s.max_floors - floors_included);
    return base;
}

const rule* ruleset::find(std::string_view id) const {
    auto it = by_id.find(std::string(id));
    return it == by_id.end() ? nullptr : &rules[it->second];
}

std::string diagnostic::text() const {
    if (line == 0) return message;
    return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + message;
}

parse_result parse(std::string_view text) {
    return rules_parser{}.run(text);
}

std::string_view basis_name(basis b) noexcept {
    switch (b) {
    case basis::S:
        return "S";
    case basis::L:
        return "L";
    default:
        return "M";
    }
}

std::string_view period_name(period p) noexcept {
    return period_names[static_cast<int>(p)];
}

std::string hash_text(std::string_view text) {
    unsigned char h[16];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), nullptr, 0);
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    for (unsigned char c : h) {
        s += hex[c >> 4];
        s += hex[c & 15];
    }
    return s;
}

} // namespace pingan::rules
