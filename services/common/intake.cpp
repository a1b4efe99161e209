// Request JSON → event, collecting every wrong field.
#include "intake.hpp"

#include "common/validate.hpp"

#include <algorithm>

namespace pingan::svc {
namespace {

// A value that parses and validates for a field of this kind, used in place
// of a wrong value so that the next run finds the next wrong field.
template <class T> json placeholder(field_opts o) {
    if constexpr (std::is_same_v<T, timestamp>) {
        return "2000-01-01T00:00:00Z";
    } else if constexpr (std::is_enum_v<T>) {
        return std::string(enum_names<T>::names[0]);
    } else if constexpr (is_optional<T>::value) {
        return nullptr;
    } else if constexpr (is_vector<T>::value) {
        return json::array();
    } else if constexpr (std::is_same_v<T, std::string>) {
        return o.what == field_opts::kind::text ? "" : "x";
    } else if constexpr (std::is_same_v<T, bool>) {
        return false;
    } else {
        return 0;
    }
}

json placeholder_for(std::string_view type, const std::string& field) {
    auto b = make_body(type);
    json out;
    if (!b) return out;
    std::visit(
        [&](auto& x) {
            x.fields([&](std::string_view name, auto& v, field_opts o) {
                if (name == field) out = placeholder<std::decay_t<decltype(v)>>(o);
            });
        },
        *b);
    return out;
}

bool is_body_field(std::string_view type, const std::string& field) {
    auto b = make_body(type);
    bool found = false;
    if (b)
        std::visit(
            [&](auto& x) {
                x.fields([&](std::string_view name, auto&, field_opts) {
                    found = found || name == field;
                });
            },
            *b);
    return found;
}

std::string strip_body_prefix(std::string s) {
    if (s.rfind("body.", 0) == 0) s.erase(0, 5);
    return s;
}

void add(problems& out, std::string field, const problem& p) {
    out.push_back({std::move(field), p.code, strip_body_prefix(p.detail)});
}

bool already(const problems& out, const std::string& field) {
    return std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.field == field; });
}

} // namespace

std::string field_of(std::string_view d) {
    if (d.rfind("body.", 0) == 0) d.remove_prefix(5);
    auto end = d.find_first_of(":[ ");
    return std::string(d.substr(0, end));
}

void read_envelope(json& req, const intake_context& ctx, event& e, problems& out) {
    auto now = ctx.now.now();
    e.id = new_event_id(now);
    e.source = ctx.source;
    e.occurred_at = now;
    e.status = status::actual;

    auto take = [&](const char* key) -> std::optional<json> {
        auto it = req.find(key);
        if (it == req.end()) return std::nullopt;
        json v = std::move(*it);
        req.erase(key);
        if (v.is_null()) return std::nullopt;
        return v;
    };

    // A client that reports while offline makes the id when the report is
    // made and resends it unchanged, so that a resend is recognised.
    if (auto id = take("id")) {
        auto parsed = id->is_string() ? event_id::parse(id->get<std::string>()) : std::nullopt;
        if (!parsed || (parsed->bytes[6] >> 4) != 7 || (parsed->bytes[8] & 0xc0) != 0x80)
            out.push_back({"id", errc::bad_id,
                           "id: expected a UUIDv7 such as 01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f"});
        else
            e.id = *parsed;
    }
    if (auto s = take("school")) {
        if (!s->is_string()) {
            out.push_back({"school", errc::wrong_type, "school: expected a string"});
        } else if (!ctx.schools.find(s->get<std::string>())) {
            out.push_back({"school", errc::unknown_school,
                           "school: \"" + s->get<std::string>() + "\" is not in the registry"});
        } else {
            e.school = s->get<std::string>();
        }
    } else {
        out.push_back({"school", errc::missing_field, "school is required"});
    }
    if (auto t = take("occurred_at")) {
        auto parsed = t->is_string() ? parse_utc(t->get<std::string>()) : std::nullopt;
        if (!parsed)
            out.push_back({"occurred_at", errc::bad_value,
                           "occurred_at: expected an RFC 3339 time such as 2026-11-29T07:31:50Z"});
        else
            e.occurred_at = *parsed;
    }
    if (auto s = take("status")) {
        auto st = s->is_string() ? enum_parse<status>(s->get<std::string>()) : std::nullopt;
        if (!st || *st == status::system)
            out.push_back(
                {"status", errc::unknown_enum, "status: expected one of Actual, Exercise, Test"});
        else
            e.status = *st;
    }
    if (auto r = take("references")) {
        if (!r->is_array()) {
            out.push_back({"references", errc::wrong_type, "references: expected an array"});
        } else {
            for (std::size_t i = 0; i < r->size(); ++i) {
                auto id = (*r)[i].is_string() ? event_id::parse((*r)[i].get<std::string>())
                                              : std::nullopt;
                if (!id) {
                    out.push_back({"references", errc::bad_id,
                                   "references[" + std::to_string(i) + "]: not an event id"});
                    break;
                }
                e.references.push_back(*id);
            }
        }
    }
}

void read_body(std::string_view type, const json& fields, event& e, problems& out) {
    if (!fields.is_object()) {
        out.push_back({"", errc::malformed_json, "the request must be a JSON object"});
        return;
    }
    json j = fields;
    auto before = out.size();
    // Each round fixes one field, so the number of fields bounds the rounds.
    for (std::size_t round = 0; round <= j.size() + 32; ++round) {
        body b;
        auto p = body_from_json(type, j, b);
        if (!p) {
            e.body = std::move(b);
            // Validation of the envelope is the envelope reader's job; here
            // only body problems count, so check a copy with a clean envelope.
            event probe = e;
            if (probe.school.empty()) probe.school = "x";
            p = validate(probe);
            if (!p) return;
        }
        auto field = field_of(p.detail);
        if (!is_body_field(type, field)) {
            // "unknown field" names a key the body does not have; anything else
            // spans fields (scope, times in the wrong order).
            if (p.detail.find("unknown field") != std::string::npos && j.contains(field)) {
                add(out, field, p);
                j.erase(field);
                continue;
            }
            if (field.empty() || !already(out, field)) add(out, field, p);
            return;
        }
        if (out.size() > before && already(out, field)) return; // no way forward
        add(out, field, p);
        j[field] = placeholder_for(type, field);
    }
}

json problems_json(const problems& p) {
    json a = json::array();
    for (const auto& x : p)
        a.push_back(
            {{"field", x.field}, {"code", std::string(errc_name(x.code))}, {"message", x.message}});
    return json{{"errors", std::move(a)}};
}

} // namespace pingan::svc
