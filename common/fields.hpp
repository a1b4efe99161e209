// Field descriptions: one list per struct drives the binary codec, the JSON
// mapping and validation, so the three can never disagree.
//
// A struct lists its fields in a member template:
//
//     template <class F> void fields(F&& f) {
//         f("hazard_id", hazard_id, key);
//         f("description", description, text(2000));
//     }
//
// Field order is the binary layout: new fields are appended with a higher
// `since` version, and a record written by an older version simply lacks them.
#pragma once

#include "time.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pingan {

// How a field is checked. Limits on strings are in bytes of UTF-8; on lists, in items.
struct field_opts {
    enum class kind : std::uint8_t {
        text, // free text, UTF-8, may be empty
        key,  // a non-empty identifier: printable, no spaces or control characters
        code, // a coded value [A-Za-z0-9_.:-]+, never free text (minors' data)
    };
    kind what = kind::key;
    std::uint32_t max = 64;       // bytes per string
    std::uint32_t max_items = 32; // items per list
    std::uint32_t since = 1;      // first body version with this field
    // Minors' data (DOMAIN §5): a student's reference or health codes. Redacted
    // wherever the value is copied for someone without clearance, never
    // rendered into text, never part of an incident's subject (privacy.hpp).
    bool classified = false;
};

inline constexpr field_opts key{};
inline constexpr field_opts code{field_opts::kind::code, 64, 32, 1};
constexpr field_opts text(std::uint32_t max, std::uint32_t max_items = 32) {
    return {field_opts::kind::text, max, max_items, 1};
}
constexpr field_opts classified(field_opts o) {
    o.classified = true;
    return o;
}
constexpr field_opts since(field_opts o, std::uint32_t version) {
    o.since = version;
    return o;
}

// Enumerations declare their names by specialising enum_names:
//   template <> struct enum_names<grade> { static constexpr std::array names{"general", "major"};
//   };
template <class E> struct enum_names;

template <class E>
concept named_enum = std::is_enum_v<E> && requires {
    enum_names<E>::names;
};

template <named_enum E> constexpr std::string_view enum_name(E e) noexcept {
    auto i = static_cast<std::size_t>(e);
    const auto& n = enum_names<E>::names;
    return i < n.size() ? std::string_view(n[i]) : std::string_view("?");
}

template <named_enum E> std::optional<E> enum_parse(std::string_view s) noexcept {
    const auto& n = enum_names<E>::names;
    for (std::size_t i = 0; i < n.size(); ++i)
        if (s == n[i]) return static_cast<E>(i);
    return std::nullopt;
}

// "a, b, c": the names an enum accepts, for error messages.
template <named_enum E> std::string enum_choices() {
    std::string s;
    for (std::string_view n : enum_names<E>::names) {
        if (!s.empty()) s += ", ";
        s += n;
    }
    return s;
}

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};

// A nested record (a photo reference): a struct with its own field list,
// encoded field after field like a body, and as an object in JSON.
struct field_probe {
    template <class V> void operator()(std::string_view, V&, field_opts) const {}
};
template <class T>
concept field_record = std::is_class_v<T> && requires(T& t) {
    t.fields(field_probe{});
};

} // namespace pingan
