// pingan tail: the live feed, optionally starting from an offset.
//
// It subscribes first, then replays from --from up to the head, then prints
// live events, skipping offsets already printed: no gap and no duplicate at
// the seam. A jump in offsets on the live feed (a slow terminal made the
// broker drop messages) is filled by a replay of the missing range.
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/render.hpp"

#include <csignal>
#include <iostream>
#include <sstream>

namespace pingan::cli {
namespace {

struct tail_args {
    filter_options f;
    std::optional<std::uint64_t> from;
    std::uint64_t count = 0;    // stop after this many events (0: never)
    int idle_exit_ms = 0;       // stop after this long without events (0: never)
    bool timeout_given = false; // --timeout: give up if the broker does not answer by then
};

volatile std::sig_atomic_t interrupted = 0;

void run(const tail_args& a) {
    std::signal(SIGINT, [](int) { interrupted = 1; });
    std::signal(SIGTERM, [](int) { interrupted = 1; });
    auto reg = load_registry(a.f);
    check_filters(a.f, reg ? &*reg : nullptr);
    zmq::context_t ctx(1);
    feed_client feed(ctx, endpoints().feed, curve());
    announce_waiting(feed.link());
    // A place is one topic prefix (types are then filtered here); without
    // one, each type prefix is its own subscription.
    if (!a.f.school.empty() || !a.f.district.empty())
        feed.subscribe(wire::subscription("", a.f.district, a.f.school));
    else if (a.f.types.empty())
        feed.subscribe(wire::subscription("", "", ""));
    else
        for (const auto& t : a.f.types)
            feed.subscribe(wire::subscription(t, "", ""));
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    auto started = std::chrono::steady_clock::now();
    // Without --timeout, wait for the broker as long as it takes (saying so).
    auto give_up = [&](link_watch& l) {
        if (!a.timeout_given || l.answered()) return;
        if (std::chrono::steady_clock::now() - started >= answer_timeout()) {
            std::ostringstream s;
            s << "no answer from the broker at " << l.endpoint() << " within "
              << endpoints().timeout_s << " s";
            fatal(s.str(), 2);
        }
    };
    auto replay_timeout = a.timeout_given ? answer_timeout() : std::chrono::milliseconds(30000);
    std::uint64_t printed = 0;
    std::uint64_t last = 0; // highest offset printed or known to be past

    auto show = [&](std::uint64_t off, std::string_view bytes) {
        event e;
        if (auto p = decode(bytes, e)) {
            std::cerr << "pingan: offset " << off << " undecodable: " << p.text() << "\n";
        } else if (a.f.matches(e)) {
            std::cout << (a.f.json ? to_json_line(e) : render_line(e, reg ? &*reg : nullptr))
                      << std::endl;
            ++printed;
        }
        last = std::max(last, off);
        return !(a.count && printed >= a.count) && !interrupted;
    };
    auto backfill = [&](std::uint64_t from, std::uint64_t to) {
        replay_request r;
        r.from = from;
        r.to = to;
        r.type = a.f.broker_type();
        r.school = a.f.school;
        r.district = a.f.district;
        q.replay(
            r, [&](std::uint64_t off, std::string_view bytes) { return show(off, bytes); },
            replay_timeout);
        last = std::max(last, to);
    };

    try {
        if (a.from) {
            while (!q.link().answered() && !interrupted) {
                give_up(q.link());
                q.link().wait(std::chrono::milliseconds(200));
            }
            replay_request r;
            r.from = *a.from;
            r.type = a.f.broker_type();
            r.school = a.f.school;
            r.district = a.f.district;
            auto end = q.replay(
                r, [&](std::uint64_t off, std::string_view b) { return show(off, b); },
                replay_timeout);
            last = std::max(last, end.next ? end.next - 1 : 0);
        }
        auto idle_since = std::chrono::steady_clock::now();
        while (!interrupted && !(a.count && printed >= a.count)) {
            auto m = feed.receive(std::chrono::milliseconds(200));
            give_up(feed.link());
            if (!m) {
                if (a.idle_exit_ms && std::chrono::steady_clock::now() - idle_since >
                                          std::chrono::milliseconds(a.idle_exit_ms))
                    break;
                continue;
            }
            idle_since = std::chrono::steady_clock::now();
            if (m->topic.starts_with("s/") && a.f.school.empty() && a.f.district.empty())
                continue; // the place copy of an event also seen under t/
            if (last && m->offset <= last) continue; // already shown by the replay
            // A jump: the broker dropped messages for us, or (filtered) other
            // events lie between; the replay returns only what we are missing.
            if (last && m->offset > last + 1) backfill(last + 1, m->offset - 1);
            if (!(a.count && printed >= a.count)) show(m->offset, m->bytes);
        }
    } catch (const error& e) {
        fail(e);
    }
}

} // namespace

void add_tail_command(CLI::App& app) {
    auto a = std::make_shared<tail_args>();
    auto* cmd = app.add_subcommand(
        "tail", "Follow the live feed, with filters; --from OFFSET replays from there first, then "
                "continues live. Shows each event's time (CST), school and name, severity and "
                "what it says (the whole text of pages and escalations); --json for machines. "
                "Waits for a broker that is not up yet (saying so on standard error) unless "
                "--timeout is given.");
    cmd->add_option("--from", a->from, "replay from this offset, then continue live");
    cmd->add_option("--count", a->count, "stop after this many events");
    cmd->add_option("--idle-exit-ms", a->idle_exit_ms, "stop after this long without events");
    add_filter_options(*cmd, a->f);
    add_endpoint_options(*cmd, false, true, true);
    cmd->callback([a, cmd] {
        // tail waits for a broker that is not there yet, unless told not to.
        a->timeout_given = cmd->count("--timeout") > 0;
        run(*a);
    });
}

PINGAN_COMMAND(20, add_tail_command);

} // namespace pingan::cli
