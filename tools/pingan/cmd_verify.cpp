// pingan verify: checks the hash chain of a store, record by record.
//
// Reads the LMDB files directly (read-only, alongside a running broker), so an
// auditor needs no broker credentials, only read access to the data directory.
#include "broker/store.hpp"
#include "tools/pingan/commands.hpp"

#include <iostream>

namespace pingan::cli {

void add_verify_command(CLI::App& app) {
    auto data = std::make_shared<std::string>("var/broker");
    auto* cmd = app.add_subcommand(
        "verify", "Verify the store's hash chain: detects any edited, deleted, inserted or "
                  "reordered record. Exit 1 if it does not verify.");
    cmd->add_option("--data", *data, "the broker's store directory")->capture_default_str();
    cmd->callback([data] {
        try {
            store_options o;
            o.path = *data;
            o.read_only = true;
            store s(o);
            auto r = s.verify();
            json j = {{"ok", r.ok}, {"checked", r.checked}, {"head", s.head()}};
            if (!r.ok) {
                j["first_bad"] = r.first_bad;
                j["problem"] = r.problem;
            }
            std::cout << j.dump() << "\n";
            exit_code() = r.ok ? 0 : 1;
        } catch (const std::exception& e) {
            fatal(e.what());
        }
    });
}

PINGAN_COMMAND(50, add_verify_command);

} // namespace pingan::cli
