// pingan replay --jetstream: the replicated log read through an ordered
// JetStream consumer (jetstream_replay.hpp).
#include "tools/pingan/jetstream_replay.hpp"

#include "common/errc.hpp"
#include "common/nats_text.hpp"
#include "common/stream_subjects.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>

namespace pingan::cli {
namespace {

struct session {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    natsSubscription* sub = nullptr;

    session() = default;
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    // The connection is closed without deleting the consumer first (a scoped
    // NATS user may not delete consumers): the servers remove an ephemeral
    // consumer whose reader has gone.
    ~session() {
        if (nc) natsConnection_Close(nc);
        if (sub) natsSubscription_Destroy(sub);
        if (js) jsCtx_Destroy(js);
        if (nc) natsConnection_Destroy(nc);
    }

    // What the server refused this connection (a permissions violation), or empty.
    std::string refusal() const {
        const char* text = nullptr;
        if (nc && natsConnection_GetLastError(nc, &text) == NATS_NOT_PERMITTED && text) return text;
        return {};
    }
};

// Connects `ses` to the servers of `src` and makes its JetStream context.
void connect(session& ses, const jetstream_source& src, const char* name, jsOptions& jo) {
    std::vector<const char*> urls;
    for (const auto& u : src.servers)
        urls.push_back(u.c_str());
    natsOptions* o = nullptr;
    auto s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size()));
    if (s == NATS_OK) s = natsOptions_SetName(o, name);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, src.timeout.count());
    // Following, it waits for the servers as long as it takes; a replay gives
    // up after about a quarter of a minute without them.
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, src.follow ? -1 : 60);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK && !src.creds.empty())
        s = natsOptions_SetUserCredentialsFromFiles(o, src.creds.c_str(), nullptr);
    if (s == NATS_OK && !src.inbox.empty())
        s = natsOptions_SetCustomInboxPrefix(o, src.inbox.c_str());
    if (s != NATS_OK) {
        auto text = nats_text(s);
        if (o) natsOptions_Destroy(o);
        throw error(errc::bad_value, "JetStream options: " + text);
    }
    s = natsConnection_Connect(&ses.nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        throw error(s == NATS_NOT_PERMITTED || s == NATS_CONNECTION_AUTH_FAILED ? errc::unauthorized
                                                                                : errc::io_error,
                    "cannot reach JetStream at " + shown_urls(src.servers) + ": " + nats_text(s));
    jsOptions_Init(&jo);
    jo.Wait = src.timeout.count();
    s = natsConnection_JetStream(&ses.js, ses.nc, &jo);
    if (s != NATS_OK) throw error(errc::io_error, "JetStream context: " + nats_text(s));
}

} // namespace

void read_jetstream(const jetstream_source& src,
                    const std::function<bool(std::uint64_t, std::string_view)>& each,
                    const std::function<bool()>& idle) {
    session ses;
    jsOptions jo;
    connect(ses, src, "pingan replay", jo);
    natsStatus s = NATS_OK;

    // One district's or school's subjects, or every record's.
    auto filter = scope_filter(src.subject, src.district, src.school);
    bool whole = src.district.empty() && src.school.empty();
    auto refused = [&](const std::string& why) {
        return error(errc::forbidden, "the NATS servers refused reading " + filter + " of stream " +
                                          src.stream + ": " + why +
                                          " (a NATS user reads only the subjects its "
                                          "permissions allow: docs/replication.md)");
    };
    auto first = std::max<std::uint64_t>(src.from, 1);
    // A named consumer is created on $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>,
    // the subject a NATS permission can narrow to one district's filter.
    char name[32];
    std::random_device rd;
    std::snprintf(name, sizeof name, "pingan-replay-%08x%08x", rd(), rd());
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = src.stream.c_str();
    so.Config.Name = name;
    so.Ordered = true; // flow control and heartbeats; recreated after a lost message
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = first;
    jsErrCode jerr{};
    s = js_SubscribeSync(&ses.sub, ses.js, filter.c_str(), &jo, &so, &jerr);
    if (s != NATS_OK) {
        ses.sub = nullptr;
        if (auto r = ses.refusal(); !r.empty()) throw refused(r);
        if (jerr == JSStreamNotFoundErr)
            throw error(errc::not_found,
                        "stream " + src.stream + " does not exist at " + shown_urls(src.servers));
        throw error(errc::io_error,
                    "cannot read stream " + src.stream + " (" + filter + ") at " +
                        shown_urls(src.servers) + ": " + nats_text(s) +
                        (jerr ? " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")"
                              : std::string()));
    }

    std::uint64_t expect = first, last = 0;
    while (true) {
        natsMsg* m = nullptr;
        s = natsSubscription_NextMsg(&m, ses.sub, 250);
        if (s == NATS_TIMEOUT) {
            if (!idle()) return;
            if (auto r = ses.refusal(); !r.empty()) throw refused(r);
            if (src.follow) continue;
            // Nothing waiting here and nothing pending at the server: the end
            // of what the scope held (a consumer that delivered the last
            // record said so on it already).
            jsConsumerInfo* ci = nullptr;
            jerr = jsErrCode{};
            if (natsSubscription_GetConsumerInfo(&ci, ses.sub, &jo, &jerr) == NATS_OK) {
                bool done = ci->NumPending == 0;
                jsConsumerInfo_Destroy(ci);
                int waiting = 0;
                if (done && natsSubscription_GetPending(ses.sub, &waiting, nullptr) == NATS_OK &&
                    waiting == 0)
                    return;
            } else if (auto r = ses.refusal(); !r.empty()) {
                throw refused(r);
            }
            continue;
        }
        // Messages dropped for a slow reader: the ordered consumer starts
        // again after the last one delivered.
        if (s == NATS_SLOW_CONSUMER) continue;
        if (s != NATS_OK) {
            if (auto r = ses.refusal(); !r.empty()) throw refused(r);
            throw error(errc::io_error, "reading stream " + src.stream + " at " +
                                            shown_urls(src.servers) + ": " + nats_text(s));
        }
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
            natsMsg_Destroy(m);
            continue;
        }
        auto seq = meta->Sequence.Stream;
        auto pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        // Redelivered after a reset: already shown.
        if (seq <= last || seq < first) {
            natsMsg_Destroy(m);
            continue;
        }
        // The whole stream is the log: its sequence is the offset, gap-free.
        if (whole && seq != expect) {
            natsMsg_Destroy(m);
            throw error(errc::not_found,
                        "stream " + src.stream +
                            (src.city.empty() ? std::string() : " (city " + src.city + ")") +
                            " holds no record at offset " + std::to_string(expect) +
                            (seq - 1 > expect ? " to " + std::to_string(seq - 1) : std::string()) +
                            " (the next it holds is " + std::to_string(seq) +
                            "): removed from the stream (a limit, a purge)" +
                            (src.city.empty() ? "; the broker's replay has them"
                                              : ", or from the city's stream before the province "
                                                "mirrored it; the city's broker has them"));
        }
        last = seq;
        expect = seq + 1;
        bool more = each(seq, std::string_view(natsMsg_GetData(m),
                                               static_cast<std::size_t>(natsMsg_GetDataLength(m))));
        natsMsg_Destroy(m);
        if (!more) return;
        if (!src.follow && pending == 0) {
            idle();
            return;
        }
    }
}

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
void find_city(session& ses, province_city& c, const std::vector<std::string>& servers) {
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
std::string mirror_city(session& ses, const std::string& province, const province_city& c,
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
    session ses;
    jsOptions jo;
    connect(ses, at, "pingan province", jo);
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
    session ses;
    jsOptions jo;
    connect(ses, at, "pingan replay", jo);
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
