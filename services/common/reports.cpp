// The ledger of accepted reports and open hazards, in a small local LMDB.
#include "reports.hpp"

#include "common/time.hpp"

#include <algorithm>

namespace pingan::svc {
namespace {

using nlohmann::json;

std::string hazard_key(const std::string& school, const std::string& hazard_id) {
    return school + '\x1f' + hazard_id;
}

json parse(std::string_view text) {
    return json::parse(text, nullptr, false);
}

json refs_json(const std::vector<photo_ref>& refs) {
    json a = json::array();
    for (const auto& r : refs)
        a.push_back({{"hash", r.hash}, {"size", r.size}, {"type", r.type}});
    return a;
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

report_ledger::report_ledger(const std::string& dir)
    : env_(lmdb::open_local(dir, "reports", 16u << 20,
                            {{"reports", &reports_}, {"hazards", &hazards_}})) {}

void report_ledger::record(std::span<const event> events, const std::string& route,
                           const std::string& reporter, const json& answer, timestamp at) {
    if (events.empty()) return;
    const auto& first = events.front();
    json r = {{"id", first.id.str()},
              {"type", std::string(first.type())},
              {"school", first.school},
              {"route", route},
              {"reporter", reporter},
              {"status", std::string(enum_name(first.status))},
              {"accepted_at", format_utc(at)},
              {"answer", answer},
              {"offset", nullptr}};
    lmdb::write_growing(env_, "reports", [&](const lmdb::txn& t) {
        lmdb::put(t, reports_, first.id.str(), dump(r));
        for (const auto& e : events) {
            if (const auto* h = std::get_if<hazard_reported>(&e.body)) {
                json j = {{"hazard_id", h->hazard_id},
                          {"school", e.school},
                          {"area", std::string(enum_name(h->area))},
                          {"grade", std::string(enum_name(h->grade))},
                          {"description", h->description},
                          {"location", h->location},
                          {"found_by", h->found_by},
                          {"reported_at", format_utc(e.occurred_at)},
                          {"deadline", h->deadline ? json(format_utc(*h->deadline)) : json()},
                          {"state", "reported"},
                          {"photo_refs", refs_json(h->photo_refs)},
                          {"event_id", e.id.str()}};
                lmdb::put(t, hazards_, hazard_key(e.school, h->hazard_id), dump(j));
            } else if (const auto* rc = std::get_if<hazard_rectified>(&e.body)) {
                auto key = hazard_key(e.school, rc->hazard_id);
                if (auto v = lmdb::get(t, hazards_, key)) {
                    auto j = parse(*v);
                    j["state"] = "rectified";
                    j["rectified_by"] = rc->rectified_by;
                    j["rectify_photo_refs"] = refs_json(rc->photo_refs);
                    lmdb::put(t, hazards_, key, dump(j));
                }
            } else if (const auto* vf = std::get_if<hazard_verified>(&e.body)) {
                auto key = hazard_key(e.school, vf->hazard_id);
                // A passed verification closes the hazard; a failed one sends
                // it back to be rectified again.
                if (vf->result == verify_result::pass) {
                    lmdb::del(t, hazards_, key);
                } else if (auto v = lmdb::get(t, hazards_, key)) {
                    auto j = parse(*v);
                    j["state"] = "verification_failed";
                    lmdb::put(t, hazards_, key, dump(j));
                }
            }
        }
    });
}

void report_ledger::stored(const event_id& id, std::uint64_t offset, bool duplicate) {
    auto key = id.str();
    lmdb::write_growing(env_, "reports", [&](const lmdb::txn& t) {
        auto v = lmdb::get(t, reports_, key);
        if (!v) return; // a derived event, or one accepted before the ledger existed
        auto j = parse(*v);
        if (!j["offset"].is_null()) return;
        j["offset"] = offset;
        j["duplicate"] = duplicate;
        lmdb::put(t, reports_, key, dump(j));
    });
}

void report_ledger::incident(const std::string& id, const json& summary) {
    lmdb::write_growing(env_, "reports", [&](const lmdb::txn& t) {
        auto v = lmdb::get(t, reports_, id);
        if (!v) return;
        auto j = parse(*v);
        if (!j.is_object()) return;
        auto type = j.value("type", "");
        auto kind = summary.value("kind", "");
        json keep = summary;
        // Minors' details stay off the phone (DOMAIN §5): the state only.
        if (type.rfind("psych.", 0) == 0 || type.rfind("bullying.", 0) == 0 || kind == "psych" ||
            kind == "bullying")
            keep = {{"state", summary.value("state", "")},
                    {"acknowledged", summary.value("acknowledged", json::array())}};
        if (j.contains("incident") && j["incident"] == keep) return;
        j["incident"] = std::move(keep);
        lmdb::put(t, reports_, id, dump(j));
    });
}

std::map<std::string, std::map<std::string, std::string>>
report_ledger::unacknowledged(const std::string& since,
                              const std::string& no_incident_since) const {
    std::map<std::string, std::map<std::string, std::string>> out;
    lmdb::txn t(env_, MDB_RDONLY);
    lmdb::cursor c(t, reports_);
    std::string_view k, v;
    // Newest first, up to the first one accepted before `since`.
    for (bool ok = c.get(k, v, MDB_LAST); ok; ok = c.get(k, v, MDB_PREV)) {
        auto j = parse(v);
        if (!j.is_object()) continue;
        if (j.value("accepted_at", "") < since) break;
        if (j["offset"].is_null()) continue;
        if (!j.contains("incident") && j.value("accepted_at", "") < no_incident_since) continue;
        if (const auto& inc = j.value("incident", json::object());
            !inc.value("acknowledged", json::array()).empty() || inc.value("state", "") == "closed")
            continue;
        auto id = j.value("id", "");
        auto& ids = out[j.value("school", "")];
        ids[id] = id;
        for (const auto& e : j.value("answer", json::object()).value("events", json::array()))
            if (e.is_object() && e.contains("id") && e["id"].is_string())
                ids[e["id"].get<std::string>()] = id;
    }
    return out;
}

std::optional<json> report_ledger::find(const std::string& id) const {
    lmdb::txn t(env_, MDB_RDONLY);
    auto v = lmdb::get(t, reports_, id);
    if (!v) return std::nullopt;
    return parse(*v);
}

json report_ledger::scan_reports(const std::string& reporter,
                                 const std::function<bool(const std::string&)>& covers,
                                 std::size_t max) const {
    json out = json::array();
    lmdb::txn t(env_, MDB_RDONLY);
    lmdb::cursor c(t, reports_);
    std::string_view k, v;
    // Ids are UUIDv7, so key order is the order of reporting: read from the newest.
    bool ok = c.get(k, v, MDB_LAST);
    for (std::size_t seen = 0; ok && out.size() < max && seen < 100000; ++seen) {
        auto j = parse(v);
        if (j.is_object() && j.value("reporter", "") == reporter && covers(j.value("school", "")))
            out.push_back(std::move(j));
        ok = c.get(k, v, MDB_PREV);
    }
    return out;
}

json report_ledger::open_hazards(const std::string& school) const {
    json out = json::array();
    lmdb::txn t(env_, MDB_RDONLY);
    lmdb::cursor c(t, hazards_);
    std::string prefix = school + '\x1f';
    std::string_view k, v;
    bool ok = c.seek(prefix, k, v);
    while (ok && k.substr(0, prefix.size()) == prefix) {
        auto j = parse(v);
        if (j.is_object()) out.push_back(std::move(j));
        ok = c.get(k, v, MDB_NEXT);
    }
    std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) {
        return a.value("reported_at", "") < b.value("reported_at", "");
    });
    return out;
}

} // namespace pingan::svc
