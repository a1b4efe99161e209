// The access table and the authorisation decisions.
#include "broker/admission/access.hpp"

#include "broker/admission/admit.hpp"
#include "common/curve.hpp"

#include <yaml-cpp/yaml.h>

namespace pingan {
namespace {

[[noreturn]] void bad(const YAML::Node& n, const std::string& what) {
    throw error(errc::bad_config, "line " + std::to_string(n.Mark().line + 1) + ": " + what);
}

} // namespace

bool same_rights(const principal& a, const principal& b) noexcept {
    return a.school == b.school && a.district == b.district && a.city == b.city &&
           a.may_publish == b.may_publish && a.may_query == b.may_query && a.may_act == b.may_act &&
           a.minors_clearance == b.minors_clearance;
}

std::string scope_text(const principal& p) {
    if (p.city) return "the city";
    if (!p.district.empty()) return "district " + p.district;
    return "school " + p.school;
}

access_table access_table::from_yaml(std::string_view text, const registry& reg) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::ParserException& x) {
        throw error(errc::bad_config, "line " + std::to_string(x.mark.line + 1) + ": " + x.msg);
    }
    // Any other mistake yaml-cpp finds (a scalar where a map must be, a map
    // where a text must be) is a configuration error too, never an exception
    // that escapes.
    try {
        return from_node(root, reg);
    } catch (const YAML::Exception& x) {
        throw error(errc::bad_config, "line " + std::to_string(x.mark.line + 1) + ": " + x.msg);
    }
}

access_table access_table::from_node(const YAML::Node& root, const registry& reg) {
    if (!root.IsMap()) throw error(errc::bad_config, "expected a map with a list under clients:");
    access_table t;
    auto clients = root["clients"];
    if (!clients || !clients.IsSequence())
        throw error(errc::bad_config, "expected a list under clients:");
    for (const auto& c : clients) {
        if (!c.IsMap()) bad(c, "each client is a map of identity, key, scope and may");
        principal p;
        if (!c["identity"] || !c["identity"].IsScalar()) bad(c, "identity: required");
        p.identity = c["identity"].as<std::string>();
        if (!c["key"] || !c["key"].IsScalar()) bad(c, "key: required (a Z85 public key)");
        p.key = c["key"].as<std::string>();
        if (!valid_z85_key(p.key)) bad(c["key"], "key: not a 40-character Z85 public key");
        auto scope = c["scope"];
        if (!scope) bad(c, "scope: required (city, {district: CODE} or {school: ID})");
        if (scope.IsScalar() && scope.as<std::string>() == "city") {
            p.city = true;
        } else if (scope.IsMap() && scope["school"]) {
            p.school = scope["school"].as<std::string>();
            auto* sch = reg.find(p.school);
            if (!sch) bad(scope, "scope: school " + p.school + " is not in the registry");
            p.home_district = sch->district_code;
        } else if (scope.IsMap() && scope["district"]) {
            p.district = scope["district"].as<std::string>();
            if (!reg.find_district(p.district))
                bad(scope, "scope: district " + p.district + " is not in the registry");
        } else {
            bad(scope, "scope: expected city, {district: CODE} or {school: ID}");
        }
        auto may = c["may"];
        if (!may || !may.IsSequence()) bad(c, "may: expected a list of publish, query, act");
        for (const auto& m : may) {
            auto r = m.as<std::string>();
            if (r == "publish")
                p.may_publish = true;
            else if (r == "query")
                p.may_query = true;
            else if (r == "act")
                p.may_act = true;
            else
                bad(m, "may: \"" + r + "\" is not publish, query or act");
        }
        if (auto cl = c["clearance"]) {
            if (!cl.IsSequence()) bad(cl, "clearance: expected a list, e.g. [minors]");
            for (const auto& x : cl) {
                if (x.as<std::string>() != "minors")
                    bad(x, "clearance: \"" + x.as<std::string>() + "\" is not minors");
                p.minors_clearance = true;
            }
        }
        if (t.key_of_identity_.count(p.identity))
            bad(c, "identity " + p.identity + " appears twice");
        if (t.by_key_.count(p.key)) bad(c, "key of " + p.identity + " is already another client's");
        t.key_of_identity_[p.identity] = p.key;
        t.by_key_[p.key] = std::move(p);
    }
    return t;
}

const principal* access_table::by_key(std::string_view z85) const {
    auto it = by_key_.find(z85);
    return it == by_key_.end() ? nullptr : &it->second;
}

const principal* access_table::by_identity(std::string_view identity) const {
    auto it = key_of_identity_.find(identity);
    return it == key_of_identity_.end() ? nullptr : by_key(it->second);
}

problem may_publish(const principal& p, const event& e) {
    if (broker_only(e.type()))
        return {errc::forbidden, std::string(e.type()) + " is made only by the broker"};
    if (is_action(e.type())) {
        if (!p.may_act)
            return {errc::forbidden, p.identity + " may not act on incidents (" +
                                         std::string(e.type()) + " needs the act right)"};
    } else if (!p.may_publish) {
        return {errc::forbidden, p.identity + " may not publish"};
    }
    if (p.city) return {};
    if (!p.district.empty() && e.district == p.district) return {};
    if (!p.school.empty() && e.school == p.school) return {};
    return {errc::forbidden,
            p.identity + " may publish only for " + scope_text(p) + ", not for school " + e.school};
}

bool may_subscribe(const principal& p, std::string_view prefix) {
    if (!p.may_query) return false;
    if (p.city) return true;
    if (!p.district.empty()) return prefix.starts_with("s/" + p.district + "/");
    return prefix.starts_with("s/" + p.home_district + "/" + p.school + "/");
}

problem may_query(const principal& p, scan_filter& f, const registry& reg) {
    if (!p.may_query) return {errc::forbidden, p.identity + " may not query"};
    if (p.city) return {};
    if (!p.school.empty()) {
        if (!f.school.empty() && f.school != p.school)
            return {errc::forbidden,
                    p.identity + " may read only school " + p.school + ", not school " + f.school};
        if (!f.district.empty() && f.district != p.home_district)
            return {errc::forbidden, p.identity + " may read only school " + p.school +
                                         " (district " + p.home_district + "), not district " +
                                         f.district};
        f.school = p.school;
        return {};
    }
    if (!f.district.empty() && f.district != p.district)
        return {errc::forbidden, p.identity + " may read only district " + p.district +
                                     ", not district " + f.district};
    if (!f.school.empty()) {
        const auto* s = reg.find(f.school);
        if (!s || s->district_code != p.district)
            return {errc::forbidden,
                    p.identity + " may read only district " + p.district + ", and school " +
                        f.school +
                        (s ? " is in district " + s->district_code : " is not in the registry")};
    }
    f.district = p.district;
    return {};
}

} // namespace pingan
