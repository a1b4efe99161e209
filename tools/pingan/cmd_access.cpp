// pingan access reload: asks the broker to read its access table again, as
// SIGHUP does. Only a client of city scope may ask.
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"

#include <iostream>

namespace pingan::cli {

void add_access_command(CLI::App& app) {
    auto* access = app.add_subcommand("access", "The broker's access table (clients' keys)");
    access->require_subcommand(1);
    auto json_out = std::make_shared<bool>(false);
    auto* reload = access->add_subcommand(
        "reload", "Make the broker read its access table again: removed keys are refused from "
                  "their next message on (needs a key of city scope)");
    reload->add_flag("--json", *json_out, "one JSON object");
    add_endpoint_options(*reload, false, false, true);
    reload->callback([json_out] {
        zmq::context_t ctx(1);
        query_client q(ctx, endpoints().query, curve());
        announce_waiting(q.link());
        json r;
        try {
            r = q.request("ACCESS", json{{"action", "reload"}}, answer_timeout());
        } catch (const error& e) {
            fail(e);
        }
        if (*json_out) {
            std::cout << r.dump() << "\n";
            return;
        }
        auto list = [](const json& v) {
            std::string s;
            for (const auto& x : v)
                s += (s.empty() ? "" : ", ") + x.get<std::string>();
            return s.empty() ? std::string("none") : s;
        };
        std::cout << "access table reloaded: " << r.value("clients", 0) << " clients\n"
                  << "revoked  " << list(r["revoked"]) << "\n"
                  << "changed  " << list(r["changed"]) << "\n"
                  << "added    " << list(r["added"]) << "\n";
    });
}

PINGAN_COMMAND(85, add_access_command);

} // namespace pingan::cli
