// Type names of event bodies.
#include "event.hpp"

#include <utility>

namespace pingan {
namespace {

template <std::size_t... I>
std::optional<body> make_body_impl(std::string_view t, std::index_sequence<I...>) {
    std::optional<body> out;
    // Stops at the first alternative whose type name matches.
    (void)((std::variant_alternative_t<I, body>::type == t
                ? (out.emplace(std::in_place_index<I>), true)
                : false) ||
           ...);
    return out;
}

} // namespace

std::string_view type_name(const body& b) noexcept {
    return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::type; }, b);
}

std::string_view event::type() const noexcept {
    return type_name(body);
}

std::optional<body> make_body(std::string_view type) {
    return make_body_impl(type, std::make_index_sequence<std::variant_size_v<body>>{});
}

const std::vector<std::string_view>& known_types() {
    static const std::vector<std::string_view> types = [] {
        std::vector<std::string_view> v;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (v.push_back(std::variant_alternative_t<I, body>::type), ...);
        }
        (std::make_index_sequence<std::variant_size_v<body>>{});
        return v;
    }();
    return types;
}

} // namespace pingan
