// The query thread: replay streams with credit-based flow control, stats,
// the clock, incidents, access reloads and checkpoints (query_server below:
// one method a command).
//
// A client opens a stream with REPLAY and a credit; the broker sends at most
// that many EVT messages, then waits for CREDIT. Streams take turns, a chunk
// each, and every chunk is read in its own short LMDB transaction, so that a
// slow auditor neither floods nor pins the store.
#include "broker/admission/query_params.hpp"
#include "broker/server/broker_impl.hpp"
#include "broker/server/day_log.hpp"
#include "broker/server/incident_query.hpp"
#include "broker/server/metrics.hpp"
#include "common/key_ring.hpp"

#include "common/codec.hpp"
#include "common/packed_events.hpp"
#include "common/privacy.hpp"
#include "common/wire.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
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
    // REPLAY {"purpose": "export"}: what was sent is logged as one
    // access.viewed, what "export", when the stream ends.
    bool exporting = false;
    std::uint64_t exported_first = 0, exported_last = 0;
    std::uint32_t exported = 0;
    std::set<std::string> exported_schools;
};

std::string_view sv(const zmq::message_t& m) {
    return {m.data<char>(), m.size()};
}

// Where a request came from and the tag its answers carry.
struct reply_to {
    std::string routing;
    bool delimiter = false;
    std::string tag;
};

// The events gathered for one EVT message of a replay: two frames an
// event (offset, bytes), or with the packed format one frame of many.
struct evt_message {
    bool packed = false;
    std::vector<zmq::message_t> frames;
    std::string bytes; // packed: the one frame
    std::uint64_t first = 0, last = 0;
    std::size_t events = 0;
    std::set<std::string> schools; // an export's, counted once the message is sent

    void add(std::uint64_t off, std::string_view event) {
        if (!events) first = off;
        last = off;
        if (packed) {
            wire::append_packed(bytes, off, event);
        } else {
            auto o = wire::u64_le(off);
            frames.emplace_back(o.data(), o.size());
            frames.emplace_back(event.data(), event.size());
        }
        ++events;
    }
    // Many events per message: ZeroMQ's cost is per frame more than per byte.
    bool full() const {
        return packed
                   ? events == wire::packed_frame_events || bytes.size() >= wire::packed_frame_bytes
                   : events == wire::max_events_per_message;
    }
    std::vector<zmq::message_t>& ready() {
        if (packed) {
            frames.clear();
            frames.emplace_back(bytes.data(), bytes.size());
        }
        return frames;
    }
    void clear() {
        frames.clear();
        bytes.clear();
        schools.clear();
        events = 0;
    }
};

// The query thread's state and jobs: one command a method, and the replay
// streams' turns (pump). Runs on the broker's query thread only.
class query_server {
  public:
    explicit query_server(broker::impl& b) : b_(b) {}

    // Serves the query socket until the broker stops.
    void run();

  private:
    // ---- answers
    // Returns: false if the client is gone (ROUTER_MANDATORY) or its queue is
    // full; full_ tells which.
    bool send(const reply_to& to, std::string_view cmd,
              std::initializer_list<std::string_view> body);
    void refuse(const reply_to& to, errc code, const std::string& message);

    // ---- commands
    void handle(std::vector<zmq::message_t>& f);
    void open_replay(const reply_to& to, const json& params,
                     std::shared_ptr<const principal> client);
    void grant_credit(const reply_to& to, const json& params);
    void cancel(const reply_to& to);
    void clock_command(const reply_to& to, const principal* client, const json& params);
    void stats_command(const reply_to& to, const principal* client);
    void checkpoint_command(const reply_to& to, const json& params);
    void access_command(const reply_to& to, const principal& client, const json& params);

    // ---- replay streams
    // Appends an access.viewed record through the writer, like any event.
    void log_views(stream& s);
    // An export's stream ends (END, cancel or revocation): its access.viewed.
    void log_export(stream& s, bool durable = false);
    // Sends END. Returns: false (the stream is over).
    bool finish(stream& s);
    // Sends one chunk of a stream. Returns: false when the stream is finished
    // or its client gone.
    bool pump(stream& s);
    // The event at `off` as the stream's client sees it: the stored bytes,
    // or redacted, unsealed or JSON (then made in `body`). Notes the minors'
    // details it shows and the schools an export takes.
    std::string_view client_view(stream& s, std::uint64_t off, std::string_view rec,
                                 std::string& body, std::set<std::string>& schools);
    // Sends one EVT message. Returns: false if it was not sent (its client's
    // queue is full: full_, or the client is gone).
    bool send_message(stream& s, evt_message& m);
    // One turn for every stream that has credit; ends those that are over.
    void pump_all();

    broker::impl& b_;
    std::map<std::pair<std::string, std::string>, stream> streams_;
    bool full_ = false;
    bool stalled_ = false;    // a client's queue was full last turn: do not spin
    std::string client_name_; // of the message being handled, for the log
};

bool query_server::send(const reply_to& to, std::string_view cmd,
                        std::initializer_list<std::string_view> body) {
    auto r = send_reply(b_.query_sock, to.routing, to.delimiter, cmd, to.tag, body);
    full_ = r == reply_result::full;
    return r == reply_result::sent;
}

void query_server::refuse(const reply_to& to, errc code, const std::string& message) {
    day_log::refused("query", code, client_name_, message);
    auto body = wire::error_json(code, message);
    send(to, wire::cmd_error, {body});
}

void query_server::handle(std::vector<zmq::message_t>& f) {
    std::vector<std::string_view> frames;
    frames.reserve(f.size());
    for (const auto& m : f)
        frames.push_back(sv(m));
    auto r = parse_query_request(frames);
    if (!r) return;
    reply_to to{std::move(r->routing), r->delimiter, std::move(r->tag)};
    if (r->refused) return refuse(to, r->refused.code, r->refused.detail);
    const std::string& cmd = r->cmd;
    const json& params = r->params;
    // Every message's key against the table in force: a key revoked by a
    // reload is refused here, on a connection already open.
    auto client_now = b_.who(f[r->key_frame]);
    const principal* client = client_now.get();
    if (b_.opts.security) {
        if (!client) return refuse(to, errc::unauthorized, b_.revoked_text(f[r->key_frame]));
        if (cmd == cmd_access) return access_command(to, *client, params);
        if (!client->may_query)
            return refuse(to, errc::forbidden, client->identity + " may not query");
    }
    if (cmd == cmd_incidents || cmd == cmd_incident) {
        auto a = answer_incident_query(b_, client, cmd, params);
        if (a.refused) return refuse(to, a.refused.code, a.refused.detail);
        send(to, cmd, {a.body});
    } else if (cmd == wire::cmd_replay) {
        open_replay(to, params, std::move(client_now));
    } else if (cmd == wire::cmd_credit) {
        grant_credit(to, params);
    } else if (cmd == wire::cmd_cancel) {
        cancel(to);
    } else if (cmd == wire::cmd_clock) {
        clock_command(to, client, params);
    } else if (cmd == wire::cmd_stats) {
        stats_command(to, client);
    } else if (cmd == cmd_checkpoint) {
        checkpoint_command(to, params);
    } else if (cmd == cmd_access) {
        refuse(to, errc::forbidden,
               "the broker was started without an access table (--clients); there is "
               "nothing to reload");
    } else {
        refuse(to, errc::bad_command,
               "unknown command \"" + cmd.substr(0, 32) +
                   "\"; expected REPLAY, CREDIT, CANCEL, STATS, CLOCK, INCIDENTS, INCIDENT, "
                   "ACCESS or CHECKPOINT");
    }
}

void query_server::open_replay(const reply_to& to, const json& params,
                               std::shared_ptr<const principal> client) {
    replay_params rp;
    if (auto p = parse_replay_params(params, rp)) return refuse(to, p.code, p.detail);
    stream s;
    s.routing = to.routing;
    s.delimiter = to.delimiter;
    s.tag = to.tag;
    s.filter = std::move(rp.filter);
    auto& f2 = s.filter;
    s.credit = rp.credit;
    s.limit = rp.limit;
    s.json = rp.json;
    s.packed = rp.packed;
    s.exporting = rp.exporting;
    if (client) {
        if (auto p = may_query(*client, f2, b_.reg)) return refuse(to, p.code, p.detail);
        s.redact = !client->minors_clearance;
        s.client = std::move(client);
    }
    // Fix the end now: a replay ends at the head it started from; the live
    // feed carries on from there.
    auto [from, last] = b_.st.range(f2);
    f2.from = from;
    f2.to = last;
    f2.from_time.reset();
    f2.to_time.reset();
    if (f2.from > f2.to) {
        finish(s); // an empty range ends at once
        return;
    }
    streams_[{to.routing, to.tag}] = std::move(s);
}

void query_server::grant_credit(const reply_to& to, const json& params) {
    std::uint64_t n = 0;
    if (auto p = parse_credit_params(params, n)) return refuse(to, p.code, p.detail);
    // Credit may cross the END of its stream in flight: ignore it then.
    if (auto it = streams_.find({to.routing, to.tag}); it != streams_.end()) it->second.credit += n;
}

void query_server::cancel(const reply_to& to) {
    if (auto it = streams_.find({to.routing, to.tag}); it != streams_.end()) {
        log_views(it->second); // what was shown before the cancel
        log_export(it->second);
        streams_.erase(it);
    }
}

// Any broker tells its time; only a manual clock can be moved, and never
// backwards.
void query_server::clock_command(const reply_to& to, const principal* client, const json& params) {
    clock_params cp;
    auto wrong = parse_clock_params(params, cp);
    if (!cp.moves) {
        json j = {{"now", format_utc(b_.clk.now())}, {"manual", b_.settable != nullptr}};
        auto body = j.dump();
        send(to, wire::cmd_clock, {body});
        return;
    }
    if (!b_.settable)
        return refuse(to, errc::forbidden,
                      "the broker's clock is not manual (start it with --clock manual:<time>)");
    if (client && !client->city)
        return refuse(to, errc::forbidden, client->identity + " may not move the clock");
    if (wrong) return refuse(to, wrong.code, wrong.detail);
    if (cp.set) {
        if (*cp.set < b_.settable->now())
            return refuse(to, errc::bad_value, "set: before the clock's time");
        b_.settable->set(*cp.set);
    } else {
        b_.settable->advance(*cp.advance);
    }
    // The writer re-reads the clock and fires what is due; the answer waits
    // until all that is committed, so the caller sees its effects. If that
    // takes too long, the answer says so rather than look like success.
    auto limit = b_.opts.clock_settle_limit;
    if (!b_.pipe.wait_settled(b_.pipe.poke(), limit))
        return refuse(to, errc::store_failure,
                      "the clock moved to " + format_utc(b_.settable->now()) +
                          ", but what fell due was not all stored within " +
                          format_duration(std::chrono::duration_cast<micros>(limit)) +
                          " (stored up to offset " + std::to_string(b_.st.head()) +
                          "); do not move it again to retry: {\"advance\": \"0s\"} waits again");
    json j = {{"now", format_utc(b_.settable->now())}, {"manual", true}};
    auto body = j.dump();
    send(to, wire::cmd_clock, {body});
}

void query_server::stats_command(const reply_to& to, const principal* client) {
    auto s = b_.st.stats();
    if (client && !client->city) {
        // A scoped client counts only its own school's or district's events,
        // as its replays would show them.
        scan_filter f2;
        if (auto p = may_query(*client, f2, b_.reg)) return refuse(to, p.code, p.detail);
        f2.to = s.head;
        s.events = 0;
        s.by_type.clear();
        while (f2.from <= f2.to && f2.to) {
            f2.from =
                b_.st.scan(f2, b_.opts.replay_chunk, [&](std::uint64_t, std::string_view rec) {
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
    send(to, wire::cmd_stats, {body});
}

// The last checkpoint the broker signed (checkpoint.cpp); with {"now": true}
// the checkpoint thread first signs the head as it is, and the answer waits
// until that checkpoint's event is stored and durable.
void query_server::checkpoint_command(const reply_to& to, const json& params) {
    if (!b_.opts.checkpoints)
        return refuse(to, errc::not_found,
                      "this broker signs no checkpoints (no checkpoint key configured)");
    bool now = false;
    if (auto p = parse_checkpoint_params(params, now)) return refuse(to, p.code, p.detail);
    std::optional<checkpoint> c;
    if (now) {
        if (!b_.request_checkpoint(std::chrono::seconds(30), c))
            return refuse(to, errc::shutting_down,
                          "no checkpoint signed now: the broker is stopping, or its checkpoint "
                          "thread did not answer within 30 s");
        b_.pipe.wait_settled(b_.pipe.poke(), std::chrono::seconds(30));
    } else {
        std::lock_guard lock(b_.checkpoint_m);
        c = b_.latest_checkpoint;
    }
    if (!c) return refuse(to, errc::not_found, "no checkpoint yet: the log is empty");
    auto j = to_json(*c);
    if (now) {
        // Where its audit.checkpoint event is: near the head.
        auto head = b_.st.head();
        for (auto off = head; off >= 1 && off + 64 > head; --off) {
            auto rec = b_.st.get(off);
            event_head h;
            if (!rec || !peek(*rec, h) || h.type != audit_checkpoint::type) continue;
            event e;
            if (decode(*rec, e)) continue;
            if (std::get<audit_checkpoint>(e.body).offset != c->offset) continue;
            j["stored_at"] = off;
            break;
        }
    }
    auto body = j.dump();
    send(to, cmd_checkpoint, {body});
}

// ACCESS {"action": "reload"}: reads the access table file again, as SIGHUP
// does; only a client of city scope may ask.
void query_server::access_command(const reply_to& to, const principal& client, const json& params) {
    if (auto p = parse_access_params(params)) return refuse(to, p.code, p.detail);
    if (!client.city)
        return refuse(to, errc::forbidden,
                      client.identity +
                          " may not reload the access table (it needs the city scope; its "
                          "scope is " +
                          scope_text(client) + ")");
    auto r = b_.reload_access(client.identity);
    if (!r.ok) return refuse(to, errc::bad_config, r.error);
    json j = {
        {"clients", r.clients}, {"revoked", r.revoked}, {"changed", r.changed}, {"added", r.added}};
    auto body = j.dump();
    send(to, cmd_access, {body});
}

void query_server::log_views(stream& s) {
    if (!s.viewed || !s.client) return;
    log_access_viewed(b_, s.client.get(), "minors_details", s.viewed_first, s.viewed_last, s.viewed,
                      {s.viewed_schools.begin(), s.viewed_schools.end()});
    s.viewed = 0;
}

void query_server::log_export(stream& s, bool durable) {
    if (!s.exporting) return;
    s.exporting = false; // once
    log_access_viewed(b_, s.client.get(), "export", s.exported_first, s.exported_last, s.exported,
                      {s.exported_schools.begin(), s.exported_schools.end()}, durable);
}

bool query_server::finish(stream& s) {
    log_views(s);
    // Stored and durable before END: the exporter can find it at once.
    log_export(s, true);
    json j = {{"next", s.filter.from}, {"count", s.sent}, {"head", b_.st.head()}};
    auto body = j.dump();
    send({s.routing, s.delimiter, s.tag}, wire::cmd_end, {body});
    return false;
}

bool query_server::pump(stream& s) {
    // A stream opened under a key that a reload has since revoked (or whose
    // rights changed) ends at its next chunk.
    if (s.client && !b_.still_admitted(*s.client)) {
        log_views(s);
        log_export(s);
        client_name_ = s.client->identity;
        refuse({s.routing, s.delimiter, s.tag}, errc::unauthorized,
               "the key of " + s.client->identity +
                   " was revoked or its rights changed: the replay stops");
        return false;
    }
    // An empty range (to < from) must not reach scan, where to = 0 means the head.
    if (s.filter.from > s.filter.to) return finish(s);
    std::size_t n = std::min<std::uint64_t>(s.credit, b_.opts.replay_chunk);
    if (s.limit) n = std::min<std::uint64_t>(n, s.limit - s.sent);
    evt_message m;
    m.packed = s.packed;
    std::string body;
    bool sent_all = true; // false once a message could not be sent
    auto next = b_.st.scan(s.filter, n, [&](std::uint64_t off, std::string_view rec) {
        m.add(off, client_view(s, off, rec, body, m.schools));
        if (m.full()) sent_all = send_message(s, m);
        return sent_all;
    });
    // The last, partial message; never a message that already failed (sent
    // now, it would also be sent again from where the stream resumes).
    if (sent_all) sent_all = send_message(s, m);
    if (!sent_all && !full_) return false; // the client is gone
    // A message that did not fit is sent again from its first event.
    s.filter.from = sent_all ? next : m.first;
    if (!sent_all) stalled_ = true;
    bool finished = s.filter.from > s.filter.to || (s.limit && s.sent >= s.limit);
    return finished ? finish(s) : true;
}

std::string_view query_server::client_view(stream& s, std::uint64_t off, std::string_view rec,
                                           std::string& body, std::set<std::string>& schools) {
    event_head h;
    // Sealed minors' data (common/key_ring.hpp) opens for cleared readers only.
    bool peeked = (s.client || b_.opts.keys || s.exporting) && peek(rec, h);
    if (s.exporting && peeked && !h.school.empty()) schools.emplace(h.school);
    bool minors_type = (s.client || b_.opts.keys) && peeked && carries_minors_details(h.type);
    bool minors = s.client && minors_type;
    bool unseal = minors_type && !s.redact && b_.opts.keys;
    if (minors && !s.redact) {
        if (!s.viewed) s.viewed_first = off;
        s.viewed_last = off;
        ++s.viewed;
        s.viewed_schools.emplace(h.school);
    }
    if (!s.json && !(minors && s.redact) && !unseal) return rec;
    event e;
    if (decode(rec, e)) {
        body = "{}";
        return body;
    }
    if (minors && s.redact) redact_minors(e);
    if (unseal) b_.opts.keys->open(e);
    body = s.json ? to_json_line(e) : encode(e);
    return body;
}

bool query_server::send_message(stream& s, evt_message& m) {
    if (!m.events) return true;
    auto r = send_reply(b_.query_sock, s.routing, s.delimiter, wire::cmd_event, s.tag, m.ready());
    full_ = r == reply_result::full;
    if (r != reply_result::sent) return false;
    s.sent += m.events;
    s.credit -= m.events;
    if (s.exporting) {
        if (!s.exported) s.exported_first = m.first;
        s.exported_last = m.last;
        s.exported += static_cast<std::uint32_t>(m.events);
        s.exported_schools.merge(m.schools);
    }
    m.clear();
    return true;
}

void query_server::pump_all() {
    for (auto it = streams_.begin(); it != streams_.end();) {
        auto& s = it->second;
        bool keep = true;
        if (s.credit) {
            try {
                keep = pump(s);
            } catch (const std::exception& x) {
                spdlog::error("replay: {}", x.what());
                client_name_ = s.client ? s.client->identity : "anonymous";
                refuse({s.routing, s.delimiter, s.tag}, errc::store_failure, x.what());
                keep = false;
            }
        }
        if (!keep) log_views(s); // no-op if finish() logged already
        it = keep ? std::next(it) : streams_.erase(it);
    }
    broker_metrics::get().replay_streams(streams_.size());
}

void query_server::run() {
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t items[] = {{b_.query_sock.handle(), 0, ZMQ_POLLIN, 0}};
    while (!b_.stopping) {
        bool busy = std::any_of(streams_.begin(), streams_.end(),
                                [](const auto& kv) { return kv.second.credit > 0; });
        zmq::poll(items, 1, std::chrono::milliseconds(busy ? (stalled_ ? 5 : 0) : 100));
        stalled_ = false;
        if (items[0].revents & ZMQ_POLLIN) {
            for (int k = 0; k < 256; ++k) {
                frames.clear();
                if (!zmq::recv_multipart(b_.query_sock, std::back_inserter(frames),
                                         zmq::recv_flags::dontwait))
                    break;
                const char* uid =
                    frames.empty() ? nullptr : zmq_msg_gets(frames.back().handle(), "User-Id");
                client_name_ = uid && *uid ? uid : "anonymous";
                try {
                    handle(frames);
                } catch (const std::exception& x) {
                    spdlog::error("query: {}", x.what());
                }
            }
        }
        pump_all();
    }
    spdlog::info("query stopped");
}

} // namespace

void broker::impl::run_query() {
    query_server(*this).run();
}

} // namespace pingan
