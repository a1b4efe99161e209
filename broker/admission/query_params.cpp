// The query socket's requests and parameters, read and checked (query_params.hpp).
#include "broker/admission/query_params.hpp"

#include "common/wire.hpp"

#include <set>

namespace pingan {
namespace {

std::optional<std::uint64_t> u64_field(const json& j, const char* name, std::string& problem) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_unsigned()) {
        problem = std::string(name) + ": expected a whole number";
        return std::nullopt;
    }
    return it->get<std::uint64_t>();
}

std::optional<timestamp> time_field(const json& j, const char* name, std::string& problem) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return std::nullopt;
    std::optional<timestamp> t;
    if (it->is_string()) t = parse_utc(it->get_ref<const std::string&>());
    if (!t) problem = std::string(name) + ": expected an RFC 3339 time";
    return t;
}

std::string str_field(const json& j, const char* name, std::string& problem) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_string()) {
        problem = std::string(name) + ": expected a string";
        return {};
    }
    return it->get<std::string>();
}

problem text_param(const json& params, const char* name, std::string& out) {
    auto it = params.find(name);
    if (it == params.end() || it->is_null()) return {};
    if (!it->is_string()) return {errc::bad_value, std::string(name) + ": expected a string"};
    out = it->get<std::string>();
    return {};
}

} // namespace

std::optional<query_request> parse_query_request(std::span<const std::string_view> f) {
    if (f.size() < 2) return std::nullopt;
    query_request r;
    r.routing = std::string(f[0]);
    std::size_t pos = 1;
    if (f[pos].empty() && f.size() > 2) {
        r.delimiter = true;
        ++pos;
    }
    r.cmd = std::string(f[pos++]);
    r.tag = pos < f.size() ? std::string(f[pos++]) : std::string();
    r.key_frame = pos - 1;
    if (r.tag.size() > wire::max_tag) {
        r.tag.resize(wire::max_tag);
        r.refused = {errc::bad_command, "tag is longer than 64 bytes"};
        return r;
    }
    if (pos < f.size() && !f[pos].empty()) {
        if (auto p = parse_json(f[pos], r.params); p || !r.params.is_object()) {
            r.params = json::object();
            r.refused = {errc::malformed_json, "parameters must be a JSON object"};
        }
    }
    return r;
}

problem parse_replay_params(const json& params, replay_params& out) {
    std::string problem;
    auto& f = out.filter;
    f.from = u64_field(params, "from", problem).value_or(1);
    f.to = u64_field(params, "to", problem).value_or(0);
    f.from_time = time_field(params, "from_time", problem);
    f.to_time = time_field(params, "to_time", problem);
    f.type_prefix = str_field(params, "type", problem);
    f.school = str_field(params, "school", problem);
    f.district = str_field(params, "district", problem);
    out.credit = u64_field(params, "credit", problem).value_or(1000);
    out.limit = u64_field(params, "limit", problem).value_or(0);
    auto format = str_field(params, "format", problem);
    if (!format.empty() && format != "binary" && format != "json" && format != "packed")
        problem = "format: expected \"binary\", \"packed\" or \"json\"";
    out.json = format == "json";
    out.packed = format == "packed";
    auto purpose = str_field(params, "purpose", problem);
    if (!purpose.empty() && purpose != "export") problem = "purpose: expected \"export\"";
    out.exporting = purpose == "export";
    if (!problem.empty()) return {errc::bad_value, problem};
    return {};
}

problem parse_credit_params(const json& params, std::uint64_t& credit) {
    std::string problem;
    auto n = u64_field(params, "credit", problem);
    if (!problem.empty() || !n)
        return {errc::bad_value, problem.empty() ? "credit: required" : problem};
    credit = *n;
    return {};
}

problem parse_clock_params(const json& params, clock_params& out) {
    out.moves = params.contains("set") || params.contains("advance");
    if (!out.moves) return {};
    std::string problem;
    if (auto t = time_field(params, "set", problem)) {
        out.set = t;
        return {};
    }
    if (auto it = params.find("advance"); it != params.end() && it->is_string()) {
        auto d = parse_duration(it->get<std::string>());
        if (!d || d->count() < 0)
            return {errc::bad_value, "advance: expected a duration such as 10m"};
        out.advance = d;
        return {};
    }
    return {errc::bad_value,
            problem.empty() ? "advance: expected a duration such as 10m" : problem};
}

problem parse_checkpoint_params(const json& params, bool& now) {
    now = false;
    if (auto it = params.find("now"); it != params.end() && !it->is_null()) {
        if (!it->is_boolean()) return {errc::bad_value, "now: expected true or false"};
        now = it->get<bool>();
    }
    return {};
}

problem parse_access_params(const json& params) {
    auto it = params.find("action");
    if (it == params.end() || !it->is_string() || *it != "reload")
        return {errc::bad_value, "action: expected \"reload\""};
    return {};
}

problem parse_incidents_params(const json& params, incidents_params& out) {
    for (auto [name, field] : {std::pair{"state", &out.state},
                               {"severity", &out.severity},
                               {"school", &out.school},
                               {"district", &out.district},
                               {"kind", &out.kind},
                               {"mode", &out.mode}})
        if (auto p = text_param(params, name, *field)) return p;
    static const std::set<std::string> states{"open", "acknowledged", "rectified", "closed",
                                              "active"};
    if (!out.state.empty() && !states.count(out.state))
        return {errc::bad_value, "state: \"" + out.state +
                                     "\" is not one of open, acknowledged, rectified, closed, "
                                     "active"};
    if (!out.severity.empty() && !enum_parse<pingan::severity>(out.severity))
        return {errc::unknown_enum, "severity: \"" + out.severity + "\" is not one of " +
                                        enum_choices<pingan::severity>()};
    if (!out.mode.empty() && out.mode != "Actual" && out.mode != "Exercise" && out.mode != "Test")
        return {errc::unknown_enum,
                "mode: \"" + out.mode + "\" is not one of Actual, Exercise, Test"};
    return {};
}

problem parse_incident_params(const json& params, incident_params& out) {
    std::string purpose;
    for (auto [name, field] : {std::pair{"id", &out.id},
                               {"subject", &out.subject},
                               {"school", &out.school},
                               {"purpose", &purpose}})
        if (auto p = text_param(params, name, *field)) return p;
    if (!purpose.empty() && purpose != "export")
        return {errc::bad_value, "purpose: expected \"export\""};
    out.exporting = purpose == "export";
    if (out.id.empty() == out.subject.empty())
        return {errc::bad_value, "give either id (an incident id) or subject (with school)"};
    return {};
}

problem check_place(const registry& reg, const principal* client, const std::string& school,
                    const std::string& district) {
    if (!school.empty() && !reg.find(school))
        return {errc::unknown_school, "school \"" + school + "\" is not in the registry"};
    if (!district.empty() && !reg.find_district(district))
        return {errc::bad_value, "district \"" + district + "\" is not in the registry"};
    if (client) {
        scan_filter f;
        f.school = school;
        f.district = district;
        if (auto p = may_query(*client, f, reg)) return p;
    }
    return {};
}

} // namespace pingan
