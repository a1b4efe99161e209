// pingan stats: head offset, counts by type and store size.
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"

#include <iostream>

namespace pingan::cli {

void add_stats_command(CLI::App& app) {
    auto json_out = std::make_shared<bool>(false);
    auto* cmd =
        app.add_subcommand("stats", "Show the head offset, event counts by type and store size");
    cmd->add_flag("--json", *json_out, "one JSON object");
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([json_out] {
        zmq::context_t ctx(1);
        query_client q(ctx, endpoints().query, curve());
        announce_waiting(q.link());
        json s;
        try {
            s = q.stats(answer_timeout());
        } catch (const error& e) {
            fail(e);
        }
        if (*json_out) {
            std::cout << s.dump() << "\n";
            return;
        }
        std::cout << "head offset   " << s["head"] << "\n"
                  << "events        " << s["events"] << "\n"
                  << "store file    " << s["file_bytes"].get<std::uint64_t>() / 1024 << " KiB"
                  << " (map " << s["map_bytes"].get<std::uint64_t>() / (1024 * 1024) << " MiB)\n"
                  << "by type:\n";
        for (auto& [t, n] : s["by_type"].items())
            std::cout << "  " << t << std::string(t.size() < 26 ? 26 - t.size() : 1, ' ') << n
                      << "\n";
    });
}

PINGAN_COMMAND(40, add_stats_command);

} // namespace pingan::cli
