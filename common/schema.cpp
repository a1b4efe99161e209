// Markdown description of event bodies from their field lists.
#include "common/schema.hpp"

#include "common/event.hpp"

#include <sstream>

namespace pingan {
namespace {

template <class T> std::string json_type(field_opts o) {
    if constexpr (std::is_same_v<T, timestamp>) {
        return "time (RFC 3339)";
    } else if constexpr (std::is_enum_v<T>) {
        std::string s = "one of ";
        bool first = true;
        for (std::string_view n : enum_names<T>::names) {
            s += first ? "`" : ", `";
            s += n;
            s += "`";
            first = false;
        }
        return s;
    } else if constexpr (is_optional<T>::value) {
        return json_type<typename T::value_type>(o);
    } else if constexpr (is_vector<T>::value) {
        return "list (max " + std::to_string(o.max_items) + ") of " +
               json_type<typename T::value_type>(o);
    } else if constexpr (field_record<T>) {
        std::string s = "object {";
        bool first = true;
        T r{};
        r.fields([&](std::string_view name, auto& x, field_opts xo) {
            s += first ? "`" : ", `";
            s += name;
            s += "`: " + json_type<std::decay_t<decltype(x)>>(xo);
            first = false;
        });
        return s + "}";
    } else if constexpr (std::is_same_v<T, std::string>) {
        switch (o.what) {
        case field_opts::kind::text:
            return "text (max " + std::to_string(o.max) + " bytes)";
        case field_opts::kind::key:
            return "key (max " + std::to_string(o.max) + " bytes, no spaces)";
        case field_opts::kind::code:
            return "code `[A-Za-z0-9_.:-]` (max " + std::to_string(o.max) + " bytes)";
        }
        return "string";
    } else if constexpr (std::is_same_v<T, bool>) {
        return "true/false";
    } else if constexpr (std::is_floating_point_v<T>) {
        return "number";
    } else if constexpr (std::is_unsigned_v<T>) {
        return "whole number >= 0";
    } else {
        return "whole number";
    }
}

template <class T> std::string presence() {
    if constexpr (is_optional<T>::value)
        return "optional (null)";
    else if constexpr (is_vector<T>::value)
        return "default []";
    else if constexpr (std::is_same_v<T, bool>)
        return "default false";
    else if constexpr (std::is_arithmetic_v<T>)
        return "default 0";
    else
        return "required";
}

template <std::size_t... I> void each_body(std::ostringstream& o, std::index_sequence<I...>) {
    (
        [&] {
            using B = std::variant_alternative_t<I, body>;
            B b{};
            o << "### `" << B::type << "` (version " << B::version << ")\n\n"
              << "| field | JSON | presence |\n| --- | --- | --- |\n";
            b.fields([&](std::string_view name, auto& v, field_opts opts) {
                using T = std::decay_t<decltype(v)>;
                o << "| `" << name << "` | " << json_type<T>(opts)
                  << (opts.classified ? "; **classified** (minors' data)" : "") << " | "
                  << presence<T>() << " |\n";
            });
            o << "\n";
        }(),
        ...);
}

} // namespace

std::string body_schema_markdown() {
    std::ostringstream o;
    each_body(o, std::make_index_sequence<std::variant_size_v<body>>{});
    return o.str();
}

} // namespace pingan
