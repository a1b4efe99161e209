// pingan replay: the stored log, in order, as JSON Lines (or lines for people).
#include "common/client.hpp"
#include "common/privacy.hpp"
#include "tools/pingan/archive.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/jetstream_replay.hpp"
#include "tools/pingan/render.hpp"

#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

namespace pingan::cli {
namespace {

struct replay_args {
    filter_options f;
    std::uint64_t from = 1, to = 0, limit = 0;
    std::string since, until;
    std::string incident; // only the events that concern this incident
    std::string archive;  // read this archive folder instead of asking the broker
    // Read the stream the broker replicates to instead (docs/replication.md).
    std::vector<std::string> jetstream;
    std::string js_stream = "PINGAN", js_subject = "pingan.events", js_creds, js_inbox;
    std::string province; // read the province's mirrors of its cities (pingan province create)
    bool follow = false;
};

// The servers, stream and scope of a --jetstream reader (`reg`, if any, for a
// school's district).
jetstream_source stream_source(const replay_args& a, const registry* reg) {
    jetstream_source src;
    src.client = "pingan replay";
    src.servers = server_list(a.jetstream);
    if (src.servers.empty()) fatal("--jetstream: give a NATS server URL, e.g. nats://host:4222");
    src.stream = a.js_stream;
    src.subject = a.js_subject;
    src.creds = a.js_creds;
    src.district = a.f.district;
    src.school = a.f.school;
    // A scoped reader's replies come on an inbox of its scope, which its NATS
    // permissions allow (docs/replication.md): a district's with --district,
    // a school's with --school alone.
    src.inbox = a.js_inbox;
    if (src.inbox.empty() && !src.district.empty()) src.inbox = "_INBOX_" + src.district;
    if (src.inbox.empty() && !src.school.empty()) src.inbox = "_INBOX_" + src.school;
    // A school's consumer names its district, as a school reader's NATS
    // permissions do (pingan access nats).
    if (src.district.empty() && !src.school.empty() && reg)
        if (const auto* s = reg->find(src.school)) src.district = s->district_code;
    src.from = a.from;
    src.follow = a.follow;
    src.timeout = answer_timeout();
    return src;
}

// Prints the records a stream reader hands over, as an uncleared reader of
// the broker sees them (minors' details redacted), each line after `city`
// when it is not empty. Returns: false once --limit lines are out.
class record_printer {
  public:
    record_printer(const replay_args& a, const registry* reg) : a_(a), reg_(reg) {}

    bool print(const std::string& city, std::string_view bytes) {
        event e;
        std::string line;
        if (auto p = decode(bytes, e)) {
            line = "(undecodable: " + p.text() + ")";
        } else {
            if (carries_minors_details(e.type())) redact_minors(e);
            if (!a_.f.matches(e)) return true;
            line = a_.f.json ? to_json_line(e) : render_line(e, reg_);
        }
        std::lock_guard lock(mu_);
        if (a_.limit && shown_ >= a_.limit) return false;
        if (city.empty())
            std::cout << line << "\n";
        else if (a_.f.json && line.starts_with("{"))
            std::cout << "{\"city\":" << nlohmann::json(city).dump() << "," << line.substr(1)
                      << "\n";
        else
            std::cout << city << " " << line << "\n";
        ++shown_;
        return (!a_.limit || shown_ < a_.limit) && static_cast<bool>(std::cout);
    }
    bool flush() {
        std::lock_guard lock(mu_);
        std::cout.flush();
        return (!a_.limit || shown_ < a_.limit) && static_cast<bool>(std::cout);
    }

  private:
    const replay_args& a_;
    const registry* reg_;
    std::mutex mu_;
    std::uint64_t shown_ = 0;
};

// Every city of the province at once, one ordered consumer each: a city's
// records in its offset order, the cities' interleaved as they arrive. The
// first city that fails ends them all.
void read_province(const replay_args& a, const jetstream_source& src, record_printer& out) {
    auto cities = province_cities(src, a.province);
    std::mutex mu;
    std::optional<error> failed;
    bool stop = false;
    auto go_on = [&] {
        std::lock_guard lock(mu);
        return !stop;
    };
    std::vector<std::thread> readers;
    for (const auto& c : cities) {
        auto one = src;
        one.stream = c.stream;
        one.subject = c.subject;
        one.city = c.city;
        readers.emplace_back([&, one] {
            try {
                read_jetstream(
                    one,
                    [&](std::uint64_t, std::string_view bytes) {
                        if (go_on() && out.print(one.city, bytes)) return true;
                        std::lock_guard lock(mu);
                        stop = true;
                        return false;
                    },
                    [&] { return out.flush() && go_on(); });
            } catch (const error& e) {
                std::lock_guard lock(mu);
                if (!failed) failed = e;
                stop = true;
            } catch (const std::exception& e) {
                std::lock_guard lock(mu);
                if (!failed) failed = error(errc::internal, e.what());
                stop = true;
            }
        });
    }
    for (auto& t : readers)
        t.join();
    if (failed) throw *failed;
}

// From the JetStream stream (or a province's mirrors of its cities' streams):
// the records of the scope asked for, through a consumer the NATS servers
// narrow to it, as an uncleared reader of the broker sees them (minors'
// details redacted).
void run_jetstream(const replay_args& a) {
    if (a.to || !a.since.empty() || !a.until.empty() || !a.incident.empty() || !a.archive.empty())
        fatal("--jetstream reads the stream from --from on: --to, --since, --until, --incident "
              "and --archive ask the broker or an archive");
    auto reg = load_registry(a.f);
    check_filters(a.f, reg ? &*reg : nullptr);
    if (!a.province.empty() && (a.js_stream != "PINGAN" || a.js_subject != "pingan.events"))
        fatal("--province reads the province's mirrors <province>_<city>, each on its city's "
              "subject: --jetstream-stream and --jetstream-subject name one city's stream");
    auto src = stream_source(a, reg ? &*reg : nullptr);
    record_printer out(a, reg ? &*reg : nullptr);
    try {
        if (!a.province.empty())
            read_province(a, src, out);
        else
            read_jetstream(
                src, [&](std::uint64_t, std::string_view bytes) { return out.print({}, bytes); },
                [&] { return out.flush(); });
    } catch (const error& e) {
        out.flush();
        fail(e);
    }
    out.flush();
}

// From an archive folder: the segments that hold the range, each checked
// against its own header's chain hashes as it is read (pingan verify --archive
// proves the whole archive as one chain).
void run_archive(const replay_args& a) {
    if (!a.incident.empty()) fatal("--incident asks the broker; it does not go with --archive");
    std::optional<timestamp> since, until;
    if (!a.since.empty() && !(since = parse_utc(a.since)))
        fatal("not an RFC 3339 time: " + a.since);
    if (!a.until.empty() && !(until = parse_utc(a.until)))
        fatal("not an RFC 3339 time: " + a.until);
    auto reg = load_registry(a.f);
    check_filters(a.f, reg ? &*reg : nullptr);
    std::vector<archive::segment> segs;
    try {
        segs = archive::list(a.archive);
    } catch (const std::exception& e) {
        fatal(e.what());
    }
    // A segment holds one China-time day, so whole days outside the times are skipped.
    auto day_before = [](timestamp t) {
        return archive::china_day(to_us(t - std::chrono::hours(24)));
    };
    auto day_after = [](timestamp t) {
        return archive::china_day(to_us(t + std::chrono::hours(24)));
    };
    std::uint64_t shown = 0;
    for (const auto& seg : segs) {
        if (seg.last < a.from || (a.to && seg.first > a.to)) continue;
        if (since && seg.day < day_before(*since)) continue;
        if (until && seg.day > day_after(*until)) continue;
        bool more = true;
        auto r = archive::read(seg, seg.prev_hash, [&](std::uint64_t off, std::string_view rec) {
            if (off < a.from) return true;
            if (a.to && off > a.to) return more = false;
            auto us = archive::received_us(rec);
            if (since && us < to_us(*since)) return true;
            if (until && us > to_us(*until)) return true;
            event e;
            if (auto p = decode(rec, e)) {
                std::cout << "(undecodable: " << p.text() << ")\n";
                return true;
            }
            if (!a.f.matches(e)) return true;
            if (a.f.json)
                std::cout << to_json_line(e) << "\n";
            else
                std::cout << render_line(e, reg ? &*reg : nullptr) << "\n";
            if (a.limit && ++shown >= a.limit) more = false;
            return more && static_cast<bool>(std::cout);
        });
        if (!r.ok) {
            std::cout.flush();
            fatal(r.problem, 1);
        }
        if (!more || !std::cout) break;
    }
    std::cout.flush();
}

// The events of one incident (the broker's INCIDENT timeline), in offset order.
void run_incident(const replay_args& a) {
    auto reg = load_registry(a.f);
    auto r = incident_from_broker(a.incident, a.f.school);
    for (const auto& j : r.events) {
        if (a.f.json) {
            std::cout << j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace) << "\n";
            continue;
        }
        event e;
        if (from_json(j, e)) {
            std::cout << j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace) << "\n";
        } else {
            e.offset = j.value("offset", std::uint64_t{0});
            std::cout << render_line(e, reg ? &*reg : nullptr) << "\n";
        }
    }
    if (r.truncated) std::cerr << "pingan: the broker cut the incident's events: more follow\n";
}

void run(const replay_args& a) {
    if (!a.jetstream.empty()) {
        run_jetstream(a);
        return;
    }
    if (!a.province.empty()) fatal("--province reads a province's streams: it needs --jetstream");
    if (a.follow)
        fatal("--follow reads the stream on as records arrive: it needs --jetstream (the "
              "broker's live feed is `pingan tail`)");
    if (!a.archive.empty()) {
        run_archive(a);
        return;
    }
    if (!a.incident.empty()) {
        if (a.from != 1 || a.to || a.limit || !a.since.empty() || !a.until.empty() ||
            !a.f.types.empty() || !a.f.exclude.empty() || !a.f.district.empty())
            fatal("--incident shows the incident's own events: it takes no other filter "
                  "(--school only to name the school of a subject)");
        run_incident(a);
        return;
    }
    for (const auto* t : {&a.since, &a.until})
        if (!t->empty() && !parse_utc(*t)) fatal("not an RFC 3339 time: " + *t);
    auto reg = load_registry(a.f);
    check_filters(a.f, reg ? &*reg : nullptr);
    zmq::context_t ctx(1);
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    replay_request r;
    r.from = a.from;
    r.to = a.to;
    r.from_time = a.since;
    r.to_time = a.until;
    r.type = a.f.broker_type();
    r.school = a.f.school;
    r.district = a.f.district;
    r.limit = a.limit;
    r.credit = 2000;
    r.json = a.f.json;
    try {
        // Several types or exclusions are filtered here; the broker takes one prefix.
        bool local = a.f.types.size() > 1 || !a.f.exclude.empty();
        r.json = a.f.json && !local;
        q.replay(
            r,
            [&](std::uint64_t, std::string_view payload) {
                if (r.json) {
                    std::cout << payload << "\n";
                    return static_cast<bool>(std::cout);
                }
                event e;
                if (auto p = decode(payload, e)) {
                    std::cout << "(undecodable: " << p.text() << ")\n";
                } else if (a.f.matches(e)) {
                    if (a.f.json)
                        std::cout << to_json_line(e) << "\n";
                    else
                        std::cout << render_line(e, reg ? &*reg : nullptr) << "\n";
                }
                return static_cast<bool>(std::cout);
            },
            answer_timeout());
    } catch (const error& e) {
        fail(e);
    }
    std::cout.flush();
}

} // namespace

void add_replay_command(CLI::App& app) {
    auto a = std::make_shared<replay_args>();
    auto* cmd = app.add_subcommand(
        "replay", "Replay stored events in offset order, by offset or time range, with filters");
    cmd->add_option("--from", a->from, "first offset")->capture_default_str();
    cmd->add_option("--to", a->to, "last offset (default: the head when the replay starts)");
    cmd->add_option("--since", a->since, "received at or after this time (RFC 3339)");
    cmd->add_option("--until", a->until, "received at or before this time (RFC 3339)");
    cmd->add_option("--limit", a->limit, "at most this many events");
    cmd->add_option("--incident", a->incident,
                    "only the events of this incident (id, or a subject such as a hazard id "
                    "with --school), as the broker's INCIDENT command finds them");
    cmd->add_option("--archive", a->archive,
                    "read the events from this archive folder (pingan archive) instead of the "
                    "broker");
    if (const char* v = std::getenv("PINGAN_JETSTREAM"); v && *v) a->jetstream.push_back(v);
    cmd->add_option("--jetstream", a->jetstream,
                    "read the stream the broker replicates to instead of asking the broker: NATS "
                    "server URLs, nats://[user:password@]host:port, comma-separated or repeated "
                    "($PINGAN_JETSTREAM)");
    cmd->add_option("--jetstream-stream", a->js_stream, "with --jetstream: the stream's name")
        ->capture_default_str();
    cmd->add_option("--jetstream-subject", a->js_subject,
                    "with --jetstream: the broker's jetstream subject")
        ->capture_default_str();
    cmd->add_option("--jetstream-creds", a->js_creds,
                    "with --jetstream: a NATS credentials file (user JWT and seed)");
    cmd->add_option("--jetstream-inbox", a->js_inbox,
                    "with --jetstream: the inbox prefix the NATS user may subscribe to (default "
                    "_INBOX_<district> with --district, _INBOX_<school> with --school)");
    cmd->add_option("--province", a->province,
                    "with --jetstream: read every city of this province (the mirrors "
                    "<province>_<city> made by pingan province create); each line begins with "
                    "its city");
    cmd->add_flag("--follow", a->follow,
                  "with --jetstream: after the stream's end, go on with each record as it is "
                  "stored");
    add_filter_options(*cmd, a->f);
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(30, add_replay_command);

} // namespace pingan::cli
