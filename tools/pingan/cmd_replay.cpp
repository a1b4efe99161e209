// pingan replay: the stored log, in order, as JSON Lines (or lines for people).
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/render.hpp"

#include <iostream>

namespace pingan::cli {
namespace {

struct replay_args {
    filter_options f;
    std::uint64_t from = 1, to = 0, limit = 0;
    std::string since, until;
};

void run(const replay_args& a) {
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
    add_filter_options(*cmd, a->f);
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(30, add_replay_command);

} // namespace pingan::cli
