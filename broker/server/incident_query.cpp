// INCIDENTS and INCIDENT on the query socket.
#include "broker/server/incident_query.hpp"
#include "common/key_ring.hpp"

#include "broker/admission/access.hpp"
#include "broker/admission/query_params.hpp"
#include "broker/engine/engine.hpp"
#include "common/codec.hpp"
#include "common/privacy.hpp"

#include <algorithm>
#include <set>

namespace pingan {
namespace {

// A timeline longer than this is cut (the reply says so), and a search
// examines at most this many records, so that one request cannot hold the
// query thread for long.
constexpr std::size_t max_timeline = 1000;
constexpr std::size_t max_examined = 200000;
constexpr std::size_t max_listed = 10000;

std::string state_of(const incident& i) {
    return i.closed                             ? "closed"
           : i.milestones.count("rectified")    ? "rectified"
           : i.milestones.count("acknowledged") ? "acknowledged"
                                                : "open";
}

// Within the client's scope: the same decision as a replay's (may_query),
// applied to the incident's place. A cross-school incident (a cluster) is
// visible to every district one of its schools is in.
bool visible(const principal* p, const incident& i) {
    if (!p || p->city) return true;
    if (!p->school.empty()) return i.school == p->school;
    return i.district == p->district || i.districts.count(p->district) > 0;
}

bool in_district(const incident& i, const std::string& district) {
    return i.district == district || i.districts.count(district) > 0;
}

std::vector<incident> read_incidents(broker::impl& b) {
    std::vector<incident> v;
    b.st.scan_table("incidents", "", [&](std::string_view, std::string_view value) {
        incident i;
        if (decode_incident(value, i)) v.push_back(std::move(i));
        return true;
    });
    std::sort(v.begin(), v.end(), [](const incident& x, const incident& y) {
        return x.opened_us != y.opened_us ? x.opened_us < y.opened_us : x.id < y.id;
    });
    return v;
}

incident_answer list(broker::impl& b, const principal* client, const json& params) {
    incidents_params q;
    if (auto p = parse_incidents_params(params, q)) return {p, {}};
    const auto &state = q.state, &severity = q.severity, &school = q.school, &district = q.district,
               &kind = q.kind, &mode = q.mode;
    if (auto p = check_place(b.reg, client, school, district)) return {p, {}};

    json out = json::array();
    bool truncated = false;
    for (const auto& i : read_incidents(b)) {
        if (!visible(client, i)) continue;
        if (!school.empty() && i.school != school) continue;
        if (!district.empty() && !in_district(i, district)) continue;
        if (!kind.empty() && i.kind != kind) continue;
        if (!severity.empty() && enum_name(i.severity) != severity) continue;
        if (!mode.empty() && enum_name(i.mode) != mode) continue;
        if (state == "active" ? i.closed : !state.empty() && state_of(i) != state) continue;
        if (out.size() == max_listed) {
            truncated = true;
            break;
        }
        out.push_back(incident_to_json(i));
    }
    json j = {{"incidents", std::move(out)}, {"truncated", truncated}};
    return {{}, j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace)};
}

incident_answer show(broker::impl& b, const principal* client, const json& params) {
    incident_params q;
    if (auto p = parse_incident_params(params, q)) return {p, {}};
    const auto &id = q.id, &subject = q.subject, &school = q.school;
    bool exporting = q.exporting;
    if (auto p = check_place(b.reg, client, school, {})) return {p, {}};

    // By id; or by subject at the school: the open incident if there is one,
    // else the latest.
    std::optional<incident> found;
    std::size_t open_matches = 0;
    for (auto& i : read_incidents(b)) {
        if (!id.empty()) {
            if (i.id == id) found = std::move(i);
            continue;
        }
        if (i.subject != subject || (!school.empty() && i.school != school)) continue;
        if (!visible(client, i)) continue;
        if (!i.closed) ++open_matches;
        if (!found || !i.closed || found->closed) found = std::move(i);
    }
    auto what = id.empty() ? "subject \"" + subject + "\"" : "\"" + id + "\"";
    if (!found || !visible(client, *found))
        return {{errc::not_found,
                 "no incident " + what +
                     (client && !client->city ? " within " + client->identity + "'s scope" : "")},
                {}};
    if (open_matches > 1)
        return {{errc::bad_value, "subject \"" + subject +
                                      "\" names more than one open incident; give the incident "
                                      "id or the school"},
                {}};
    const auto& inc = *found;

    // The timeline: from the opening event on, at the incident's school.
    scan_filter f;
    f.school = inc.school;
    if (auto cause = event_id::parse(inc.cause))
        if (auto off = b.st.find(*cause)) f.from = *off;
    if (f.from == 1) f.from_time = from_us(inc.opened_us);
    auto [from, to] = b.st.range(f);
    f.from = from;
    f.to = to;
    f.from_time.reset();
    json timeline = json::array();
    bool truncated = false;
    std::size_t examined = 0;
    std::uint64_t viewed_first = 0, viewed_last = 0;
    std::uint32_t viewed = 0;
    while (f.from <= f.to && f.to && !truncated) {
        auto next = b.st.scan(f, 1000, [&](std::uint64_t off, std::string_view rec) {
            if (++examined > max_examined) {
                truncated = true;
                return false;
            }
            event e;
            if (decode(rec, e) || !concerns(e, inc)) return true;
            if (timeline.size() == max_timeline) {
                truncated = true;
                return false;
            }
            bool cleared = !client || client->minors_clearance;
            if (cleared && b.opts.keys && carries_minors_details(e.type())) b.opts.keys->open(e);
            if (client && carries_minors_details(e.type())) {
                if (client->minors_clearance) {
                    if (!viewed) viewed_first = off;
                    viewed_last = off;
                    ++viewed;
                } else {
                    redact_minors(e);
                }
            }
            timeline.push_back(to_json(e));
            return true;
        });
        if (next <= f.from) break;
        f.from = next;
    }
    if (viewed)
        log_access_viewed(b, client, "minors_details", viewed_first, viewed_last, viewed,
                          {inc.school});
    if (exporting) {
        // What was sent, stored and durable before the reply: the exporter
        // finds it in the log at once.
        std::uint64_t first = 0, last = 0;
        std::set<std::string> schools;
        for (const auto& e : timeline) {
            auto off = e.value("offset", std::uint64_t{0});
            if (!first) first = off;
            last = off;
            if (auto s = e.value("school", std::string()); !s.empty()) schools.insert(s);
        }
        log_access_viewed(b, client, "export", first, last,
                          static_cast<std::uint32_t>(timeline.size()),
                          {schools.begin(), schools.end()}, true);
    }
    json j = {{"incident", incident_to_json(inc)},
              {"timeline", std::move(timeline)},
              {"truncated", truncated}};
    return {{}, j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace)};
}

} // namespace

void log_access_viewed(broker::impl& b, const principal* client, std::string what,
                       std::uint64_t first, std::uint64_t last, std::uint32_t count,
                       std::vector<std::string> schools, bool durable) {
    event e;
    auto now = b.clk.now();
    e.id = new_event_id(now);
    e.source = "pingan-broker/query";
    e.actor = client ? client->identity : "pingan-broker";
    e.occurred_at = now;
    e.status = status::system;
    e.scope = scope::restricted;
    access_viewed v;
    v.viewer = client ? client->identity : "unauthenticated (no access table)";
    v.what = std::move(what);
    v.first_offset = first;
    v.last_offset = last;
    v.count = count;
    v.schools = std::move(schools);
    if (v.schools.size() > 4096) v.schools.resize(4096); // the field's limit
    e.body = std::move(v);
    std::vector<prepared_event> one;
    one.push_back(prepare(std::move(e)));
    std::vector<owner_tag> owner{{nullptr, 0}};
    b.pipe.push(one, owner);
    if (durable) b.pipe.wait_settled(b.pipe.poke(), std::chrono::seconds(30));
}

incident_answer answer_incident_query(broker::impl& b, const principal* client,
                                      std::string_view cmd, const json& params) {
    if (cmd == cmd_incidents) return list(b, client, params);
    return show(b, client, params);
}

} // namespace pingan
