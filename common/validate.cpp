// Field-list driven validation of events.
#include "validate.hpp"

#include <cmath>

namespace pingan {
namespace {

// A field's name for messages, built only when there is a problem to report.
struct field_path {
    std::string_view prefix, name;
    std::ptrdiff_t index = -1;
    std::string str() const {
        std::string s(prefix);
        s += name;
        if (index >= 0) s += "[" + std::to_string(index) + "]";
        return s;
    }
};
std::string operator+(const field_path& p, const char* tail) {
    return p.str() + tail;
}

bool key_char_ok(unsigned char c) noexcept {
    return c > 0x20 && c != 0x7f;
}

bool code_char_ok(unsigned char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
}

problem check_string(const std::string& s, const field_path& path, field_opts o) {
    if (auto at = utf8_error_at(s); at != std::string_view::npos)
        return {errc::invalid_utf8, path.str() + ": invalid UTF-8 at byte " + std::to_string(at)};
    if (s.size() > o.max)
        return {errc::too_long, path.str() + " is " + std::to_string(s.size()) +
                                    " bytes; the limit is " + std::to_string(o.max)};
    switch (o.what) {
    case field_opts::kind::text:
        for (unsigned char c : s)
            if (c < 0x20 && c != '\n' && c != '\t' && c != '\r')
                return {errc::bad_value, path + " contains a control character"};
        break;
    case field_opts::kind::key:
        if (s.empty()) return {errc::missing_field, path + " must not be empty"};
        for (unsigned char c : s)
            if (!key_char_ok(c))
                return {errc::bad_value, path + " must not contain spaces or control characters"};
        break;
    case field_opts::kind::code:
        if (s.empty()) return {errc::missing_field, path + " must not be empty"};
        for (unsigned char c : s)
            if (!code_char_ok(c))
                return {errc::bad_value,
                        path + " must be a code of letters, digits and _.:- (no free text)"};
        break;
    }
    return {};
}

template <class T> problem check_value(const T& v, const field_path& path, field_opts o) {
    if constexpr (std::is_same_v<T, std::string>) {
        return check_string(v, path, o);
    } else if constexpr (is_optional<T>::value) {
        return v ? check_value(*v, path, o) : problem{};
    } else if constexpr (is_vector<T>::value) {
        if (v.size() > o.max_items)
            return {errc::too_long, path.str() + " has " + std::to_string(v.size()) +
                                        " items; the limit is " + std::to_string(o.max_items)};
        for (std::size_t i = 0; i < v.size(); ++i)
            if (auto p =
                    check_value(v[i], field_path{path.prefix, path.name, std::ptrdiff_t(i)}, o))
                return p;
        return {};
    } else if constexpr (field_record<T>) {
        // Each field by its own options: "body.photo_refs[0].hash".
        auto prefix = path.str() + ".";
        problem result;
        const_cast<T&>(v).fields([&](std::string_view name, const auto& x, field_opts xo) {
            if (!result) result = check_value(x, field_path{prefix, name}, xo);
        });
        return result;
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(v)) return {errc::bad_value, path + " must be a finite number"};
        return {};
    } else {
        return {};
    }
}

// Cross-field rules, one overload per body that has any.
problem check_body(const event&, const auto&) {
    return {};
}

problem check_body(const event&, const drill_recorded& d) {
    if (d.all_clear_at < d.started_at)
        return {errc::bad_value, "body.all_clear_at is before body.started_at"};
    return {};
}

problem check_body(const event& e, const psych_alert&) {
    if (e.scope != scope::private_)
        return {errc::bad_value, "scope must be Private for psych.alert (minors' data)"};
    return {};
}

problem check_body(const event& e, const bullying_reported& b) {
    if (e.scope != scope::private_)
        return {errc::bad_value, "scope must be Private for bullying.reported (minors' data)"};
    if (b.victim_refs.empty()) return {errc::missing_field, "body.victim_refs must not be empty"};
    return {};
}

problem check_body(const event&, const food_temp_reading& r) {
    if (r.celsius < -100 || r.celsius > 400)
        return {errc::bad_value, "body.celsius is outside -100..400"};
    return {};
}

problem check_body(const event&, const food_sample& s) {
    if (s.grams < 0) return {errc::bad_value, "body.grams must not be negative"};
    return {};
}

problem check_body(const event& e, const hazard_remediation_planned& p) {
    if (p.hazard_id.empty()) return {errc::missing_field, "body.hazard_id must not be empty"};
    if (to_us(p.due) <= to_us(e.occurred_at))
        return {errc::bad_value, "body.due must be after occurred_at: the plan's deadline"};
    if (p.measures.empty()) return {errc::missing_field, "body.measures must not be empty"};
    if (p.responsible.empty()) return {errc::missing_field, "body.responsible must not be empty"};
    return {};
}

problem check_body(const event&, const hazard_appealed& a) {
    if (a.hazard_id.empty()) return {errc::missing_field, "body.hazard_id must not be empty"};
    if (a.appeal_id.empty()) return {errc::missing_field, "body.appeal_id must not be empty"};
    return {};
}

problem check_body(const event&, const hazard_appeal_decided& d) {
    if (d.hazard_id.empty()) return {errc::missing_field, "body.hazard_id must not be empty"};
    if (d.appeal_id.empty()) return {errc::missing_field, "body.appeal_id must not be empty"};
    if (d.decided_by.empty()) return {errc::missing_field, "body.decided_by must not be empty"};
    return {};
}

} // namespace

std::size_t utf8_error_at(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* begin = p;
    const auto* end = p + s.size();
    auto at = [&] { return static_cast<std::size_t>(p - begin); };
    while (p < end) {
        // Fast path over ASCII, eight bytes at a time.
        while (end - p >= 8) {
            std::uint64_t w;
            __builtin_memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL) break;
            p += 8;
        }
        if (p >= end) break;
        unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int n;
        std::uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return at();
        }
        if (end - p <= n) return at();
        for (int i = 1; i <= n; ++i) {
            if ((p[i] & 0xc0) != 0x80) return at();
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return at();
        p += n + 1;
    }
    return std::string_view::npos;
}

bool valid_utf8(std::string_view s) noexcept {
    return utf8_error_at(s) == std::string_view::npos;
}

problem validate(const event& e) {
    if (e.id.is_nil()) return {errc::bad_id, "id is missing (nil UUID)"};
    if (auto p = check_string(e.school, {"", "school"}, {field_opts::kind::text, 32, 0, 1}))
        return p;
    if (auto p = check_string(e.district, {"", "district"}, {field_opts::kind::text, 16, 0, 1}))
        return p;
    if (auto p = check_string(e.source, {"", "source"}, {field_opts::kind::text, 128, 0, 1}))
        return p;
    if (auto p = check_string(e.actor, {"", "actor"}, {field_opts::kind::text, 128, 0, 1}))
        return p;
    if (e.references.size() > 32)
        return {errc::too_long, "references has " + std::to_string(e.references.size()) +
                                    " items; the limit is 32"};
    if (to_us(e.occurred_at) <= 0)
        return {errc::bad_value, "occurred_at is missing or before 1970"};
    return std::visit(
        [&](const auto& b) -> problem {
            problem result;
            const_cast<std::decay_t<decltype(b)>&>(b).fields(
                [&](std::string_view name, const auto& v, field_opts o) {
                    if (!result) result = check_value(v, field_path{"body.", name}, o);
                });
            if (result) return result;
            return check_body(e, b);
        },
        e.body);
}

} // namespace pingan
