// Who may connect, and what each client may do: the broker's least-privilege
// table, and the decisions made from it. Text in, decisions out: no sockets.
//
// The table (YAML, config/access.example.yaml) lists each client's CURVE
// public key, its identity (which becomes the `actor` of what it publishes),
// its scope and its rights:
//
//     clients:
//       - identity: school:420502K001
//         key: "<Z85 public key>"
//         scope: {school: 420502K001}   # or {district: "420502"}, or city
//         may: [publish, query, act]     # reports, replays and stats, incident actions
//         clearance: [minors]            # optional: unredacted psych/bullying details
//
// A school's key publishes only for that school; a district's for its
// schools; replays and stats of a scoped client are narrowed to its scope,
// and a replay filter outside it is refused. `act` is the right to publish
// the actions people take on incidents (admit.hpp action_types); the types
// the broker makes are refused from everyone.
#pragma once

#include "broker/store/store.hpp"
#include "common/errc.hpp"
#include "common/event.hpp"
#include "common/registry.hpp"

#include <map>
#include <string>
#include <string_view>

namespace YAML {
class Node;
}

namespace pingan {

struct principal {
    std::string identity;
    std::string key;           // Z85 public key
    std::string school;        // scope: one school
    std::string district;      // scope: one district (every school in it)
    std::string home_district; // a school scope's district, from the registry
    bool city = false;         // scope: everything
    bool may_publish = false;
    bool may_query = false;
    bool may_act = false;          // acknowledge and resolve incidents (admit.hpp action_types)
    bool minors_clearance = false; // sees psych and bullying details (each view is logged)
};

class access_table {
  public:
    // Parses the table; schools and districts must exist in `reg`.
    // Throws: pingan::error(bad_config) naming the line that is wrong.
    static access_table from_yaml(std::string_view text, const registry& reg);

    const principal* by_key(std::string_view z85) const;
    const principal* by_identity(std::string_view identity) const;
    std::size_t size() const noexcept { return by_key_.size(); }
    // Every client, in key order.
    template <class F> void each(F&& f) const {
        for (const auto& [k, p] : by_key_)
            f(p);
    }

  private:
    static access_table from_node(const YAML::Node& root, const registry& reg);

    std::map<std::string, principal, std::less<>> by_key_;
    std::map<std::string, std::string, std::less<>> key_of_identity_;
};

// May `p` publish `e` (district already filled in from the registry)? An
// action (acknowledge, resolve) needs `act`, anything else `publish`.
// Returns: ok, or forbidden naming the reason.
problem may_publish(const principal& p, const event& e);

// May `p` subscribe to the live feed with this topic prefix? A scoped client
// must name its district ("s/420502/") or its school ("s/420502/420502K001/").
bool may_subscribe(const principal& p, std::string_view prefix);

// May `p` read what `f` selects? Narrows `f` to the client's scope; a filter
// naming a school or district outside it is refused, not answered empty.
// Returns: ok, or forbidden naming the reason.
problem may_query(const principal& p, scan_filter& f, const registry& reg);

// Do `a` and `b` have the same scope, rights and clearance?
bool same_rights(const principal& a, const principal& b) noexcept;

// The client's scope in words: "school 420502K001", "district 420502", "the city".
std::string scope_text(const principal& p);

} // namespace pingan
