// The query thread: replay streams with credit-based flow control, and stats.
//
// A client opens a stream with REPLAY and a credit; the broker sends at most
// that many EVT messages, then waits for CREDIT. Streams take turns, a chunk
// each, and every chunk is read in its own short LMDB transaction, so that a
// slow auditor neither floods nor pins the store.
#include "broker/broker_impl.hpp"
#include "broker/day_log.hpp"
#include "broker/incident_query.hpp"
#include "broker/metrics.hpp"
#include "common/key_ring.hpp"

#include "common/codec.hpp"
#include "common/packed_events.hpp"
#include "common/privacy.hpp"
#include "common/wire.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <set>

namespace pingan {
namespace {

constexpr std::string_view cmd_access = "ACCESS";
constexpr std::string_view cmd_checkpoint = "CHECKPOINT";

struct stream {
    std::string routing;
    bool delimiter = false;
    std::string tag;
    scan_filter filter; // from advances as events are sent; to is fixed at open
    std::uint64_t credit = 0;
    std::uint64_t sent = 0;
    std::uint64_t limit = 0; // 0: no limit
    bool json = false;
    bool packed = false; // binary events, many to a frame (common/packed_events.hpp)
    // Minors' details: redacted for clients without clearance; for cleared
    // clients every record shown is noted and logged as access.viewed.
    std::shared_ptr<const principal> client;
    bool redact = false;
    std::uint64_t viewed_first = 0, viewed_last = 0;
    std::uint32_t viewed = 0;
    std::set<std::string> viewed_schools;
};

std::string_view sv(const zmq::message_t& m) {
    return {m.data<char>(), m.size()};
}

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

} // namespace

void broker::impl::run_query() {
    std::map<std::pair<std::string, std::string>, stream> streams;
    std::vector<zmq::message_t> frames;

    // Returns: false if the client is gone (ROUTER_MANDATORY) or its queue is
    // full; `full` tells which.
    bool full = false;
    bool stalled = false; // a client's queue was full last turn: do not spin
    auto send = [&](const std::string& routing, bool delimiter, std::string_view cmd,
                    std::string_view tag, std::initializer_list<std::string_view> body) {
        auto r = send_reply(query_sock, routing, delimiter, cmd, tag, body);
        full = r == reply_result::full;
        return r == reply_result::sent;
    };
    std::string client_name; // of the message being handled, for the log
    auto refuse = [&](const std::string& routing, bool delim, std::string_view tag, errc code,
                      const std::string& message) {
        day_log::refused("query", code, client_name, message);
        auto body = wire::error_json(code, message);
        send(routing, delim, wire::cmd_error, tag, {body});
    };

    // Appends an access.viewed record through the writer, like any event.
    auto log_views = [&](stream& s) {
        if (!s.viewed || !s.client) return;
        event e;
        auto now = clk.now();
        e.id = new_event_id(now);
        e.source = "pingan-broker/query";
        e.actor = s.client->identity;
        e.occurred_at = now;
        e.status = status::system;
        e.scope = scope::restricted;
        access_viewed v;
        v.viewer = s.client->identity;
        v.what = "minors_details";
        v.first_offset = s.viewed_first;
        v.last_offset = s.viewed_last;
        v.count = s.viewed;
        v.schools.assign(s.viewed_schools.begin(), s.viewed_schools.end());
        e.body = std::move(v);
        std::vector<prepared_event> one;
        one.push_back(prepare(std::move(e)));
        std::vector<owner_tag> owner{{nullptr, 0}};
        pipe.push(one, owner);
        s.viewed = 0;
    };
    auto finish = [&](stream& s) {
        log_views(s);
        json j = {{"next", s.filter.from}, {"count", s.sent}, {"head", st.head()}};
        auto body = j.dump();
        send(s.routing, s.delimiter, wire::cmd_end, s.tag, {body});
        return false;
    };

    // ACCESS {"action": "reload"}: reads the access table file again, as
    // SIGHUP does; only a client of city scope may ask.
    auto access_command = [&](const std::string& routing, bool delim, const std::string& tag,
                              const principal& client, const json& params) {
        auto it = params.find("action");
        if (it == params.end() || !it->is_string() || *it != "reload")
            return refuse(routing, delim, tag, errc::bad_value, "action: expected \"reload\"");
        if (!client.city)
            return refuse(routing, delim, tag, errc::forbidden,
                          client.identity +
                              " may not reload the access table (it needs the "
                              "city scope; its scope is " +
                              scope_text(client) + ")");
        auto r = reload_access(client.identity);
        if (!r.ok) return refuse(routing, delim, tag, errc::bad_config, r.error);
        json j = {{"clients", r.clients},
                  {"revoked", r.revoked},
                  {"changed", r.changed},
                  {"added", r.added}};
        auto body = j.dump();
        send(routing, delim, cmd_access, tag, {body});
    };

    auto handle = [&](std::vector<zmq::message_t>& f) {
        if (f.size() < 2) return;
        std::string routing(sv(f[0]));
        std::size_t pos = 1;
        bool delim = false;
        if (f[pos].size() == 0 && f.size() > 2) {
            delim = true;
            ++pos;
        }
        std::string cmd(sv(f[pos++]));
        std::string tag = pos < f.size() ? std::string(sv(f[pos++])) : std::string();
        if (tag.size() > wire::max_tag) {
            tag.resize(wire::max_tag);
            return refuse(routing, delim, tag, errc::bad_command, "tag is longer than 64 bytes");
        }
        json params = json::object();
        if (pos < f.size() && f[pos].size()) {
            if (auto p = parse_json(sv(f[pos]), params); p || !params.is_object())
                return refuse(routing, delim, tag, errc::malformed_json,
                              "parameters must be a JSON object");
        }
        std::string problem;
        // Every message's key against the table in force: a key revoked by a
        // reload is refused here, on a connection already open.
        auto client_now = who(f[pos - 1]);
        const principal* client = client_now.get();
        if (opts.security) {
            if (!client)
                return refuse(routing, delim, tag, errc::unauthorized, revoked_text(f[pos - 1]));
            if (cmd == cmd_access) return access_command(routing, delim, tag, *client, params);
            if (!client->may_query)
                return refuse(routing, delim, tag, errc::forbidden,
                              client->identity + " may not query");
        }
        if (cmd == cmd_incidents || cmd == cmd_incident) {
            auto a = answer_incident_query(*this, client, cmd, params);
            if (a.refused) return refuse(routing, delim, tag, a.refused.code, a.refused.detail);
            send(routing, delim, cmd, tag, {a.body});
            return;
        }
        if (cmd == wire::cmd_replay) {
            stream s;
            s.routing = routing;
            s.delimiter = delim;
            s.tag = tag;
            auto& f2 = s.filter;
            f2.from = u64_field(params, "from", problem).value_or(1);
            f2.to = u64_field(params, "to", problem).value_or(0);
            f2.from_time = time_field(params, "from_time", problem);
            f2.to_time = time_field(params, "to_time", problem);
            f2.type_prefix = str_field(params, "type", problem);
            f2.school = str_field(params, "school", problem);
            f2.district = str_field(params, "district", problem);
            s.credit = u64_field(params, "credit", problem).value_or(1000);
            s.limit = u64_field(params, "limit", problem).value_or(0);
            auto format = str_field(params, "format", problem);
            if (!format.empty() && format != "binary" && format != "json" && format != "packed")
                problem = "format: expected \"binary\", \"packed\" or \"json\"";
            s.json = format == "json";
            s.packed = format == "packed";
            if (!problem.empty()) return refuse(routing, delim, tag, errc::bad_value, problem);
            if (client) {
                if (auto p = may_query(*client, f2, reg))
                    return refuse(routing, delim, tag, p.code, p.detail);
                s.client = client_now;
                s.redact = !client->minors_clearance;
            }
            // Fix the end now: a replay ends at the head it started from;
            // the live feed carries on from there.
            auto [from, to] = st.range(f2);
            f2.from = from;
            f2.to = to;
            f2.from_time.reset();
            f2.to_time.reset();
            if (f2.from > f2.to) {
                finish(s); // an empty range ends at once
                return;
            }
            streams[{routing, tag}] = std::move(s);
        } else if (cmd == wire::cmd_credit) {
            auto it = streams.find({routing, tag});
            auto n = u64_field(params, "credit", problem);
            if (!problem.empty() || !n)
                return refuse(routing, delim, tag, errc::bad_value,
                              problem.empty() ? "credit: required" : problem);
            // Credit may cross the END of its stream in flight: ignore it then.
            if (it != streams.end()) it->second.credit += *n;
        } else if (cmd == wire::cmd_cancel) {
            if (auto it = streams.find({routing, tag}); it != streams.end()) {
                log_views(it->second); // what was shown before the cancel
                streams.erase(it);
            }
        } else if (cmd == wire::cmd_clock) {
            // Any broker tells its time; only a manual clock can be moved, and
            // never backwards.
            bool moves = params.contains("set") || params.contains("advance");
            if (!moves) {
                json j = {{"now", format_utc(clk.now())}, {"manual", settable != nullptr}};
                auto body = j.dump();
                send(routing, delim, wire::cmd_clock, tag, {body});
                return;
            }
            if (!settable)
                return refuse(
                    routing, delim, tag, errc::forbidden,
                    "the broker's clock is not manual (start it with --clock manual:<time>)");
            if (client && !client->city)
                return refuse(routing, delim, tag, errc::forbidden,
                              client->identity + " may not move the clock");
            auto now = settable->now();
            if (auto t = time_field(params, "set", problem)) {
                if (*t < now)
                    return refuse(routing, delim, tag, errc::bad_value,
                                  "set: before the clock's time");
                settable->set(*t);
            } else if (auto it = params.find("advance"); it != params.end() && it->is_string()) {
                auto d = parse_duration(it->get<std::string>());
                if (!d || d->count() < 0)
                    return refuse(routing, delim, tag, errc::bad_value,
                                  "advance: expected a duration such as 10m");
                settable->advance(*d);
            } else if (!problem.empty() || params.contains("set") || params.contains("advance")) {
                return refuse(routing, delim, tag, errc::bad_value,
                              problem.empty() ? "advance: expected a duration such as 10m"
                                              : problem);
            }
            // The writer re-reads the clock and fires what is due; the answer
            // waits until all that is committed, so the caller sees its effects.
            pipe.wait_settled(pipe.poke(), std::chrono::seconds(30));
            json j = {{"now", format_utc(settable->now())}, {"manual", true}};
            auto body = j.dump();
            send(routing, delim, wire::cmd_clock, tag, {body});
        } else if (cmd == wire::cmd_stats) {
            auto s = st.stats();
            if (client && !client->city) {
                // A scoped client counts only its own school's or district's
                // events, as its replays would show them.
                scan_filter f2;
                if (auto p = may_query(*client, f2, reg))
                    return refuse(routing, delim, tag, p.code, p.detail);
                f2.to = s.head;
                s.events = 0;
                s.by_type.clear();
                while (f2.from <= f2.to && f2.to) {
                    f2.from =
                        st.scan(f2, opts.replay_chunk, [&](std::uint64_t, std::string_view rec) {
                            event_head h;
                            if (peek(rec, h)) {
                                ++s.by_type[std::string(h.type)];
                                ++s.events;
                            }
                            return true;
                        });
                }
            }
            json j = {{"head", s.head},
                      {"events", s.events},
                      {"file_bytes", s.file_bytes},
                      {"map_bytes", s.map_bytes},
                      {"by_type", json::object()}};
            if (client) j["scope"] = scope_text(*client);
            for (auto& [t, n] : s.by_type)
                j["by_type"][t] = n;
            auto body = j.dump();
            send(routing, delim, wire::cmd_stats, tag, {body});
        } else if (cmd == cmd_checkpoint) {
            // The last checkpoint the broker signed (checkpoint.cpp).
            if (!opts.checkpoints)
                return refuse(routing, delim, tag, errc::not_found,
                              "this broker signs no checkpoints (no checkpoint key configured)");
            std::optional<checkpoint> c;
            {
                std::lock_guard lock(checkpoint_m);
                c = latest_checkpoint;
            }
            if (!c)
                return refuse(routing, delim, tag, errc::not_found,
                              "no checkpoint yet: the log is empty");
            auto body = to_json(*c).dump();
            send(routing, delim, cmd_checkpoint, tag, {body});
        } else if (cmd == cmd_access) {
            refuse(routing, delim, tag, errc::forbidden,
                   "the broker was started without an access table (--clients); there is "
                   "nothing to reload");
        } else {
            refuse(routing, delim, tag, errc::bad_command,
                   "unknown command \"" + cmd.substr(0, 32) +
                       "\"; expected REPLAY, CREDIT, CANCEL, STATS, CLOCK, INCIDENTS, INCIDENT, "
                       "ACCESS or CHECKPOINT");
        }
    };

    // Sends one chunk of a stream. Returns: false when the stream is finished or its client gone.
    // Sends the events gathered for one EVT message: offset and event frames
    // after the header. Returns: false if nothing was sent (see `full`).
    auto send_events = [&](stream& s, std::vector<zmq::message_t>& frames) {
        auto r = send_reply(query_sock, s.routing, s.delimiter, wire::cmd_event, s.tag, frames);
        full = r == reply_result::full;
        return r == reply_result::sent;
    };

    auto pump = [&](stream& s) {
        // A stream opened under a key that a reload has since revoked (or
        // whose rights changed) ends at its next chunk.
        if (s.client && !still_admitted(*s.client)) {
            log_views(s);
            client_name = s.client->identity;
            refuse(s.routing, s.delimiter, s.tag, errc::unauthorized,
                   "the key of " + s.client->identity +
                       " was revoked or its rights changed: the replay stops");
            return false;
        }
        // An empty range (to < from) must not reach scan, where to = 0 means the head.
        if (s.filter.from > s.filter.to) return finish(s);
        std::size_t n = std::min<std::uint64_t>(s.credit, opts.replay_chunk);
        if (s.limit) n = std::min<std::uint64_t>(n, s.limit - s.sent);
        bool alive = true;
        std::uint64_t resume = 0; // first event of a message that did not fit
        std::uint64_t batch_first = 0;
        std::size_t batch_events = 0;
        std::vector<zmq::message_t> frames;
        std::string packed; // with s.packed: the one frame of the message
        auto flush = [&] {
            if (!batch_events) return true;
            if (s.packed) {
                frames.clear();
                frames.emplace_back(packed.data(), packed.size());
            }
            if (!send_events(s, frames)) {
                if (full)
                    resume = batch_first;
                else
                    alive = false;
                return false;
            }
            s.sent += batch_events;
            s.credit -= batch_events;
            frames.clear();
            packed.clear();
            batch_events = 0;
            return true;
        };
        auto next = st.scan(s.filter, n, [&](std::uint64_t off, std::string_view rec) {
            if (!batch_events) batch_first = off;
            if (!s.packed) {
                auto o = wire::u64_le(off);
                frames.emplace_back(o.data(), o.size());
            }
            // The event as this client sees it: the stored bytes, or redacted,
            // unsealed or JSON (then made here).
            auto add = [&](std::string_view bytes) {
                if (s.packed)
                    wire::append_packed(packed, off, bytes);
                else
                    frames.emplace_back(bytes.data(), bytes.size());
            };
            event_head h;
            // Sealed minors' data (common/key_ring.hpp) opens for cleared readers only.
            bool minors_type =
                (s.client || opts.keys) && peek(rec, h) && carries_minors_details(h.type);
            bool minors = s.client && minors_type;
            bool unseal = minors_type && !s.redact && opts.keys;
            if (minors && !s.redact) {
                if (!s.viewed) s.viewed_first = off;
                s.viewed_last = off;
                ++s.viewed;
                s.viewed_schools.emplace(h.school);
            }
            if (s.json || (minors && s.redact) || unseal) {
                event e;
                std::string body;
                if (decode(rec, e)) {
                    body = "{}";
                } else {
                    if (minors && s.redact) redact_minors(e);
                    if (unseal) opts.keys->open(e);
                    body = s.json ? to_json_line(e) : encode(e);
                }
                add(body);
            } else {
                add(rec);
            }
            // Many events per message: ZeroMQ's cost is per frame more than per byte.
            ++batch_events;
            if (s.packed ? batch_events == wire::packed_frame_events ||
                               packed.size() >= wire::packed_frame_bytes
                         : batch_events == wire::max_events_per_message)
                return flush();
            return true;
        });
        flush();
        if (!alive) return false;
        s.filter.from = resume ? resume : next;
        if (resume) stalled = true;
        bool finished = s.filter.from > s.filter.to || (s.limit && s.sent >= s.limit);
        return finished ? finish(s) : true;
    };

    zmq::pollitem_t items[] = {{query_sock.handle(), 0, ZMQ_POLLIN, 0}};
    while (!stopping) {
        bool busy = false;
        for (auto& [k, s] : streams)
            if (s.credit) busy = true;
        zmq::poll(items, 1, std::chrono::milliseconds(busy ? (stalled ? 5 : 0) : 100));
        stalled = false;
        if (items[0].revents & ZMQ_POLLIN) {
            for (int k = 0; k < 256; ++k) {
                frames.clear();
                if (!zmq::recv_multipart(query_sock, std::back_inserter(frames),
                                         zmq::recv_flags::dontwait))
                    break;
                const char* uid =
                    frames.empty() ? nullptr : zmq_msg_gets(frames.back().handle(), "User-Id");
                client_name = uid && *uid ? uid : "anonymous";
                try {
                    handle(frames);
                } catch (const std::exception& x) {
                    spdlog::error("query: {}", x.what());
                }
            }
        }
        for (auto it = streams.begin(); it != streams.end();) {
            bool keep = true;
            if (it->second.credit) {
                try {
                    keep = pump(it->second);
                } catch (const std::exception& x) {
                    spdlog::error("replay: {}", x.what());
                    client_name = it->second.client ? it->second.client->identity : "anonymous";
                    refuse(it->second.routing, it->second.delimiter, it->second.tag,
                           errc::store_failure, x.what());
                    keep = false;
                }
            }
            if (!keep) log_views(it->second); // no-op if finish() logged already
            it = keep ? std::next(it) : streams.erase(it);
        }
        broker_metrics::get().replay_streams(streams.size());
    }
    spdlog::info("query stopped");
}

} // namespace pingan
