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

namespace pingan::cli {
namespace {

struct tail_args {
    filter_options f;
    std::optional<std::uint64_t> from;
    std::uint64_t count = 0; // stop after this many events (0: never)
    int idle_exit_ms = 0;    // stop after this long without events (0: never)
};

volatile std::sig_atomic_t interrupted = 0;

void run(const tail_args& a) {
    std::signal(SIGINT, [](int) { interrupted = 1; });
    std::signal(SIGTERM, [](int) { interrupted = 1; });
    auto reg = a.f.json ? std::nullopt : load_registry(a.f);
    zmq::context_t ctx(1);
    feed_client feed(ctx, endpoints().feed, curve());
    feed.subscribe(wire::subscription(a.f.type, a.f.district, a.f.school));
    query_client q(ctx, endpoints().query, curve());
    std::uint64_t printed = 0;
    std::uint64_t last = 0; // highest offset printed or known to be past

    auto show = [&](std::uint64_t off, std::string_view bytes) {
        event e;
        if (auto p = decode(bytes, e)) {
            std::cerr << "pingan: offset " << off << " undecodable: " << p.text() << "\n";
        } else if ((a.f.type.empty() || e.type().starts_with(a.f.type)) &&
                   (a.f.school.empty() || e.school == a.f.school) &&
                   (a.f.district.empty() || e.district == a.f.district)) {
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
        r.type = a.f.type;
        r.school = a.f.school;
        r.district = a.f.district;
        q.replay(r, [&](std::uint64_t off, std::string_view bytes) { return show(off, bytes); });
        last = std::max(last, to);
    };

    try {
        if (a.from) {
            replay_request r;
            r.from = *a.from;
            r.type = a.f.type;
            r.school = a.f.school;
            r.district = a.f.district;
            auto end =
                q.replay(r, [&](std::uint64_t off, std::string_view b) { return show(off, b); });
            last = std::max(last, end.next ? end.next - 1 : 0);
        }
        auto idle_since = std::chrono::steady_clock::now();
        while (!interrupted && !(a.count && printed >= a.count)) {
            auto m = feed.receive(std::chrono::milliseconds(200));
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
        fatal(e.what(), e.code() == errc::io_error ? 2 : 1);
    }
}

} // namespace

void add_tail_command(CLI::App& app) {
    auto a = std::make_shared<tail_args>();
    auto* cmd = app.add_subcommand("tail", "Follow the live feed, with filters; --from OFFSET "
                                           "replays from there first, then continues live");
    cmd->add_option("--from", a->from, "replay from this offset, then continue live");
    cmd->add_option("--count", a->count, "stop after this many events");
    cmd->add_option("--idle-exit-ms", a->idle_exit_ms, "stop after this long without events");
    add_filter_options(*cmd, a->f);
    add_endpoint_options(*cmd, false, true, true);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(20, add_tail_command);

} // namespace pingan::cli
