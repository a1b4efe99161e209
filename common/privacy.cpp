// Redaction of minors' details, driven by the `classified` marks of the field lists.
#include "common/privacy.hpp"

#include <map>
#include <string>

namespace pingan {
namespace {

// Classified fields are strings or lists of strings (codes, references);
// replacing anything else would not hide a value, so nothing else is touched.
template <class T> void redact_value(T& v) {
    if constexpr (std::is_same_v<T, std::string>) {
        v = std::string(redacted);
    } else if constexpr (is_optional<T>::value || is_vector<T>::value) {
        if constexpr (is_optional<T>::value) {
            if (v) redact_value(*v);
        } else {
            for (auto& x : v)
                redact_value(x);
        }
    }
}

// type -> its classified field names, from the field lists, built once.
const std::map<std::string, std::vector<std::string_view>, std::less<>>& classified_index() {
    static const auto index = [] {
        std::map<std::string, std::vector<std::string_view>, std::less<>> m;
        for (auto type : known_types()) {
            auto b = make_body(type);
            if (!b) continue;
            std::vector<std::string_view> names;
            std::visit(
                [&](auto& body) {
                    body.fields([&](std::string_view name, auto&, const field_opts& o) {
                        if (o.classified) names.push_back(name);
                    });
                },
                *b);
            if (!names.empty()) m.emplace(std::string(type), std::move(names));
        }
        return m;
    }();
    return index;
}

} // namespace

const std::vector<std::string_view>& classified_fields(std::string_view type) {
    static const std::vector<std::string_view> none;
    const auto& m = classified_index();
    auto it = m.find(type);
    return it == m.end() ? none : it->second;
}

bool carries_minors_details(std::string_view type) noexcept {
    const auto& m = classified_index();
    return m.find(type) != m.end();
}

bool is_classified(std::string_view type, std::string_view field) {
    for (auto f : classified_fields(type))
        if (f == field) return true;
    return false;
}

bool is_classified_anywhere(std::string_view field) {
    for (const auto& [type, names] : classified_index())
        for (auto f : names)
            if (f == field) return true;
    return false;
}

bool redact_minors(event& e) {
    return std::visit(
        [](auto& body) {
            bool any = false;
            body.fields([&](std::string_view, auto& v, const field_opts& o) {
                if (!o.classified) return;
                redact_value(v);
                any = true;
            });
            return any;
        },
        e.body);
}

namespace {

template <class T> bool holds_value(const T& v) {
    if constexpr (std::is_same_v<T, std::string>) {
        return !v.empty() && v != redacted;
    } else if constexpr (is_optional<T>::value) {
        return v && holds_value(*v);
    } else if constexpr (is_vector<T>::value) {
        for (const auto& x : v)
            if (holds_value(x)) return true;
        return false;
    } else {
        return false;
    }
}

} // namespace

bool shows_minors_details(const event& e) {
    return std::visit(
        [](auto body) { // a copy: fields() hands out mutable references
            bool any = false;
            body.fields([&](std::string_view, auto& v, const field_opts& o) {
                if (o.classified && holds_value(v)) any = true;
            });
            return any;
        },
        e.body);
}

bool redact_classified(std::string_view type, json& body, std::string_view placeholder) {
    if (!body.is_object()) return false;
    bool any = false;
    for (auto f : classified_fields(type)) {
        auto it = body.find(std::string(f));
        if (it == body.end() || it->is_null()) continue;
        *it = std::string(placeholder);
        any = true;
    }
    return any;
}

} // namespace pingan
