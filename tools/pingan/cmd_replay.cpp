// pingan replay: the stored log, in order, as JSON Lines (or lines for people).
#include "common/client.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/render.hpp"

#include <iostream>

namespace pingan::cli {
namespace {

struct replay_args {
    filter_options f;
    std::uint64_t from = 1, to = 0, limit = 0;
    std::string since, until;
    std::string incident; // only the events that concern this incident
};

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
    add_filter_options(*cmd, a->f);
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(30, add_replay_command);

} // namespace pingan::cli
