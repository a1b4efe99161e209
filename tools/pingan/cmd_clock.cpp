// pingan clock: reads or moves a broker's manual clock (tests, simulations).
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"

#include <algorithm>
#include <iostream>

namespace pingan::cli {

void add_clock_command(CLI::App& app) {
    auto advance = std::make_shared<std::string>();
    auto set = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(
        "clock", "Show or move the clock of a broker started with --clock manual:<time>; "
                 "deadlines that fall due fire at once");
    cmd->add_option("--advance", *advance, "move forward by a duration, e.g. 10m, 2h, 7d");
    cmd->add_option("--set", *set, "move forward to a time (RFC 3339)");
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([advance, set] {
        json p = json::object();
        if (!advance->empty()) p["advance"] = *advance;
        if (!set->empty()) p["set"] = *set;
        zmq::context_t ctx(1);
        query_client q(ctx, endpoints().query, curve());
        announce_waiting(q.link());
        // A move is answered once its effects are stored, or refused after
        // the broker's 30 s: wait for either.
        auto wait = p.empty() ? answer_timeout()
                              : std::max(answer_timeout(), std::chrono::milliseconds(35000));
        try {
            std::cout << q.clock(p, wait)["now"].get<std::string>() << "\n";
        } catch (const error& e) {
            fail(e);
        }
    });
}

PINGAN_COMMAND(55, add_clock_command);

} // namespace pingan::cli
