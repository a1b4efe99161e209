// pingan province and pingan replay --province: a province's mirrors of its
// cities' streams (jetstream_replay.hpp).
#include "tools/pingan/jetstream_replay.hpp"

#include "common/errc.hpp"
#include "common/nats_session.hpp"
#include "common/nats_text.hpp"
#include "common/stream_subjects.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>

namespace pingan::cli {
namespace {

// A stream name or a JetStream domain as NATS takes it: one subject token.
bool is_name(std::string_view s) {
    return !s.empty() && subject_token(s) == s && s.find_first_of("/\\") == std::string_view::npos;
}

// "YICHANG" or "YICHANG@yichang": a city stream, in the provincial servers'
// own JetStream or in the named domain.
province_city parse_city(const std::string& province, const std::string& spec) {
    province_city c;
    auto at = spec.find('@');
    c.city = spec.substr(0, at);
    if (at != std::string::npos) c.domain = spec.substr(at + 1);
    if (!is_name(c.city) || (at != std::string::npos && !is_name(c.domain)))
        throw error(errc::bad_value, "--city " + spec +
                                         ": expected a city stream's name, or NAME@DOMAIN for a "
                                         "stream in another JetStream domain");
    c.stream = province + "_" + c.city;
    return c;
}

// The subject prefix of a city's broker: its stream takes `<subject>.>` only.
std::string city_subject(jsStreamInfo* si, const province_city& c) {
    std::vector<std::string> taken;
    for (int i = 0; si->Config && i < si->Config->SubjectsLen; ++i)
        taken.emplace_back(si->Config->Subjects[i]);
    if (taken.size() != 1 || !taken[0].ends_with(".>")) {
        std::string list;
        for (const auto& t : taken)
            list += (list.empty() ? "" : ", ") + t;
        throw error(errc::bad_value,
                    "city stream " + c.city + " takes " + (list.empty() ? "no subject" : list) +
                        ": a city broker's stream takes one <subject>.> (docs/replication.md, "
                        "\"Province\")");
    }
    return taken[0].substr(0, taken[0].size() - 2);
}

// Looks the city's stream up (in its domain) and fills in its subject.
void find_city(nats_session& ses, province_city& c, const std::vector<std::string>& servers) {
    jsOptions jo;
    jsOptions_Init(&jo);
    if (!c.domain.empty()) jo.Domain = c.domain.c_str();
    jsCtx* js = nullptr;
    auto s = natsConnection_JetStream(&js, ses.nc, &jo);
    if (s != NATS_OK) throw error(errc::io_error, "JetStream context: " + nats_text(s));
    std::unique_ptr<jsCtx, void (*)(jsCtx*)> own(js, jsCtx_Destroy);
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    s = js_GetStreamInfo(&si, js, c.city.c_str(), nullptr, &jerr);
    auto where = shown_urls(servers) + (c.domain.empty() ? "" : " in JetStream domain " + c.domain);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        throw error(errc::not_found, "city stream " + c.city + " does not exist at " + where +
                                         " (its broker's jetstream.stream)");
    if (s != NATS_OK)
        throw error(errc::io_error, "city stream " + c.city + " at " + where + ": " + nats_text(s));
    std::unique_ptr<jsStreamInfo, void (*)(jsStreamInfo*)> info(si, jsStreamInfo_Destroy);
    c.subject = city_subject(si, c);
}

// Two cities on one subject (or one inside the other) could not be told apart.
void check_distinct(const std::vector<province_city>& cities) {
    for (std::size_t i = 0; i < cities.size(); ++i)
        for (std::size_t k = i + 1; k < cities.size(); ++k) {
            const auto &a = cities[i].subject, &b = cities[k].subject;
            if (cities[i].city == cities[k].city)
                throw error(errc::bad_value, "--city " + a + " is given twice");
            if (a == b || a.starts_with(b + ".") || b.starts_with(a + "."))
                throw error(errc::bad_value,
                            "cities " + cities[i].city + " and " + cities[k].city + " publish on " +
                                a + ".> and " + b +
                                ".>: give each city's broker a subject of its own, "
                                "pingan.<city code>.events (docs/replication.md, \"Province\")");
        }
}

// "YICHANG (pingan.420500.events.>) from JetStream domain yichang": what a mirror copies.
std::string origin_text(const province_city& c) {
    return c.city + " (" + stream_subjects(c.subject) + ")" +
           (c.domain.empty() ? "" : " from JetStream domain " + c.domain);
}

// Is `m` the mirror of city `c` (its stream, subjects and domain)?
bool mirrors(const jsStreamSource* m, const province_city& c) {
    if (!m || !m->Name || c.city != m->Name || !m->FilterSubject ||
        stream_subjects(c.subject) != m->FilterSubject)
        return false;
    std::string api = m->External && m->External->APIPrefix ? m->External->APIPrefix : "";
    return api == (c.domain.empty() ? "" : "$JS." + c.domain + ".API");
}

// Makes the mirror of one city, or says it is there already.
std::string mirror_city(nats_session& ses, const std::string& province, const province_city& c,
                        int replicas) {
    auto filter = stream_subjects(c.subject);
    jsStreamInfo* si = nullptr;
    jsErrCode jerr{};
    auto s = js_GetStreamInfo(&si, ses.js, c.stream.c_str(), nullptr, &jerr);
    if (s == NATS_OK) {
        std::unique_ptr<jsStreamInfo, void (*)(jsStreamInfo*)> info(si, jsStreamInfo_Destroy);
        if (!mirrors(si->Config ? si->Config->Mirror : nullptr, c))
            throw error(errc::bad_config, "stream " + c.stream +
                                              " exists and is not the province's mirror of city "
                                              "stream " +
                                              origin_text(c) +
                                              ": remove it or name the province otherwise");
        return c.stream + " mirrors " + origin_text(c) + ": there already, " +
               std::to_string(si->State.LastSeq) + " records";
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
        throw error(errc::io_error, "stream " + c.stream + ": " + nats_text(s));
    auto api = "$JS." + c.domain + ".API";
    jsExternalStream ext;
    jsExternalStream_Init(&ext);
    ext.APIPrefix = api.c_str();
    ext.DeliverPrefix = ""; // libnats needs both; deliveries come back without a prefix
    jsStreamSource mirror;
    jsStreamSource_Init(&mirror);
    mirror.Name = c.city.c_str();
    mirror.FilterSubject = filter.c_str();
    if (!c.domain.empty()) mirror.External = &ext;
    auto about = "pingan province " + province + ": city stream " + c.city +
                 (c.domain.empty() ? "" : "@" + c.domain);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = c.stream.c_str();
    sc.Description = about.c_str();
    sc.Mirror = &mirror;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    si = nullptr;
    jerr = jsErrCode{};
    s = js_AddStream(&si, ses.js, &sc, nullptr, &jerr);
    if (s != NATS_OK)
        throw error(errc::io_error,
                    "creating stream " + c.stream + " (a mirror of " + c.city +
                        "): " + nats_text(s) +
                        (jerr ? " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")"
                              : std::string()));
    jsStreamInfo_Destroy(si);
    return c.stream + " mirrors " + origin_text(c) + ": created";
}

} // namespace

std::vector<std::string> create_province(const jetstream_source& at, const std::string& province,
                                         const std::vector<std::string>& cities, int replicas) {
    if (!is_name(province))
        throw error(errc::bad_value, "--province " + province +
                                         ": expected a stream name (letters, digits, - and _)");
    if (cities.empty()) throw error(errc::bad_value, "name at least one --city");
    nats_session ses;
    jsOptions jo;
    nats_connect(ses, at, "pingan province", jo);
    std::vector<province_city> found;
    for (const auto& spec : cities) {
        found.push_back(parse_city(province, spec));
        find_city(ses, found.back(), at.servers);
    }
    check_distinct(found);
    std::vector<std::string> lines;
    for (const auto& c : found)
        lines.push_back(mirror_city(ses, province, c, replicas));
    return lines;
}

std::vector<province_city> province_cities(const jetstream_source& at,
                                           const std::string& province) {
    nats_session ses;
    jsOptions jo;
    nats_connect(ses, at, "pingan replay", jo);
    jsStreamNamesList* names = nullptr;
    jsErrCode jerr{};
    auto s = js_StreamNames(&names, ses.js, nullptr, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        if (auto r = ses.refusal(); !r.empty())
            throw error(errc::forbidden,
                        "the NATS servers refused listing the streams of province " + province +
                            ": " + r + " (docs/replication.md, \"Province\")");
        throw error(errc::io_error,
                    "listing streams at " + shown_urls(at.servers) + ": " + nats_text(s));
    }
    std::vector<std::string> ours;
    for (int i = 0; names && i < names->Count; ++i)
        if (std::string_view(names->List[i]).starts_with(province + "_"))
            ours.emplace_back(names->List[i]);
    if (names) jsStreamNamesList_Destroy(names);
    std::sort(ours.begin(), ours.end());
    std::vector<province_city> cities;
    for (const auto& name : ours) {
        jsStreamInfo* si = nullptr;
        if (js_GetStreamInfo(&si, ses.js, name.c_str(), nullptr, nullptr) != NATS_OK) {
            if (auto r = ses.refusal(); !r.empty())
                throw error(errc::forbidden, "the NATS servers refused the information of stream " +
                                                 name + " of province " + province + ": " + r +
                                                 " (docs/replication.md, \"Province\")");
            continue;
        }
        std::unique_ptr<jsStreamInfo, void (*)(jsStreamInfo*)> info(si, jsStreamInfo_Destroy);
        const auto* m = si->Config ? si->Config->Mirror : nullptr;
        if (!m || !m->Name || !m->FilterSubject ||
            !std::string_view(m->FilterSubject).ends_with(".>"))
            continue;
        std::string filter = m->FilterSubject;
        cities.push_back({m->Name, {}, name, filter.substr(0, filter.size() - 2)});
    }
    if (cities.empty())
        throw error(errc::not_found, "province " + province + " has no city stream at " +
                                         shown_urls(at.servers) + " (streams " + province +
                                         "_<city>, made by pingan province create)");
    return cities;
}

} // namespace pingan::cli
