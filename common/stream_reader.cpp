// Reading the replicated log from a JetStream stream (stream_reader.hpp).
#include "common/stream_reader.hpp"

#include "common/errc.hpp"
#include "common/nats_session.hpp"
#include "common/nats_text.hpp"
#include "common/stream_subjects.hpp"

#include <algorithm>
#include <cstdio>
#include <random>

namespace pingan {

std::vector<std::string> server_list(const std::vector<std::string>& options) {
    std::vector<std::string> out;
    for (const auto& j : options)
        for (std::size_t at = 0; at <= j.size();) {
            auto comma = std::min(j.find(',', at), j.size());
            if (comma > at) out.push_back(j.substr(at, comma - at));
            at = comma + 1;
        }
    return out;
}

void nats_connect(nats_session& ses, const jetstream_source& src, const char* name, jsOptions& jo) {
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

void read_jetstream(const jetstream_source& src,
                    const std::function<bool(std::uint64_t, std::string_view)>& each,
                    const std::function<bool()>& idle) {
    nats_session ses;
    jsOptions jo;
    nats_connect(ses, src, src.client.c_str(), jo);
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

} // namespace pingan
