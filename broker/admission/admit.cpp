// The admission decision for published events.
#include "broker/admission/admit.hpp"

#include "common/validate.hpp"

#include <algorithm>

namespace pingan {

bool broker_only(std::string_view type) noexcept {
    return std::find(broker_only_types.begin(), broker_only_types.end(), type) !=
           broker_only_types.end();
}

bool is_action(std::string_view type) noexcept {
    return std::find(action_types.begin(), action_types.end(), type) != action_types.end();
}

bool may_be_city_wide(std::string_view type) noexcept {
    return std::find(city_wide_types.begin(), city_wide_types.end(), type) != city_wide_types.end();
}

bool may_be_district_wide(std::string_view type) noexcept {
    return std::find(district_wide_types.begin(), district_wide_types.end(), type) !=
           district_wide_types.end();
}

problem admit(std::string_view frame, bool json_form, const registry& reg, std::string_view actor,
              timestamp now, const admit_limits& limits, event& e) {
    if (frame.size() > limits.max_event_bytes)
        return {errc::message_too_large, "event is " + std::to_string(frame.size()) +
                                             " bytes; the limit is " +
                                             std::to_string(limits.max_event_bytes)};
    if (json_form) {
        json j;
        if (auto p = parse_json(frame, j)) return p;
        if (auto p = from_json(j, e)) return p;
    } else {
        if (auto p = decode(frame, e)) return p;
    }
    if (broker_only(e.type()))
        return {errc::forbidden,
                std::string(e.type()) + " is made only by the broker; clients may not publish it"};
    if (auto p = validate(e)) return p;
    // The engine's own events (a typed incident's report) are known by their source.
    if (e.source.starts_with("pingan-broker/"))
        return {errc::forbidden, "source \"" + e.source +
                                     "\" is reserved for events the broker makes; name the "
                                     "publishing service instead"};
    if (e.status == status::system)
        return {errc::forbidden, "status System is reserved for events the broker makes"};
    if (e.school.empty() && !e.district.empty() && may_be_district_wide(e.type())) {
        if (!reg.find_district(e.district))
            return {errc::bad_value, "district " + e.district + " is not in the registry"};
    } else if (e.school.empty()) {
        if (!may_be_city_wide(e.type()))
            return {errc::missing_field,
                    "school is required (only receipts and acknowledgements of city-wide pages, "
                    "and credential changes of a district, may have none)"};
        if (!e.district.empty())
            return {errc::bad_value, "district " + e.district + " without a school"};
    } else {
        const auto* s = reg.find(e.school);
        if (!s) return {errc::unknown_school, "school \"" + e.school + "\" is not in the registry"};
        if (!e.district.empty() && e.district != s->district_code)
            return {errc::bad_value, "district " + e.district + " does not match the registry (" +
                                         s->district_code + ") for school " + e.school};
        e.district = s->district_code;
    }
    if (e.occurred_at > now + limits.max_future_skew)
        return {errc::bad_value, "occurred_at " + format_utc(e.occurred_at) +
                                     " is too far ahead of the broker clock (" + format_utc(now) +
                                     ")"};
    e.actor = actor;
    e.offset = 0;
    e.received_at = timestamp{};
    return {};
}

} // namespace pingan
