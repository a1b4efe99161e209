// pingan verify: checks the hash chain of a store, record by record.
//
// Reads the LMDB files directly (read-only, alongside a running broker), so an
// auditor needs no broker credentials, only read access to the data directory.
#include "broker/store.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"

#include <iostream>

namespace pingan::cli {

void add_verify_command(CLI::App& app) {
    auto data = std::make_shared<std::string>("var/broker");
    auto* cmd = app.add_subcommand(
        "verify", "Verify the store's hash chain: detects any edited, deleted, inserted or "
                  "reordered record. Exit 1 if it does not verify.");
    cmd->add_option("--data", *data, "the broker's store directory")->capture_default_str();
    auto expect = std::make_shared<std::string>();
    auto at = std::make_shared<std::uint64_t>(0);
    cmd->add_option("--expect", *expect,
                    "a head hash recorded earlier (with --at, its offset): the chain must pass "
                    "through it, so a rewritten history is caught even if re-chained");
    cmd->add_option("--at", *at, "the offset of the --expect hash (default: the head)");
    auto exported = std::make_shared<std::string>();
    cmd->add_option("--export", *exported,
                    "a JSON Lines file of pingan export: its events must be exactly the log's "
                    "in its segment (on its own when complete; with --data against the store)");
    cmd->callback([cmd, data, expect, at, exported] {
        if (!exported->empty()) {
            exit_code() = verify_export(*exported, cmd->count("--data") ? *data : std::string());
            return;
        }
        try {
            store_options o;
            o.path = *data;
            o.read_only = true;
            store s(o);
            auto r = s.verify();
            json j = {{"ok", r.ok},
                      {"checked", r.checked},
                      {"head", s.head()},
                      {"head_hash", hex(r.head_hash)}};
            if (r.ok && !expect->empty()) {
                // The recorded hash must be the chain's hash at that offset.
                auto target = *at ? *at : s.head();
                if (target > s.head()) {
                    r.ok = false;
                    r.problem = "offset " + std::to_string(target) + " is past the head";
                } else {
                    chain_hash h{};
                    for (std::uint64_t off = 1; off <= target; ++off) {
                        auto rec = s.get(off);
                        if (!rec) break;
                        h = chain_next(h, off, *rec);
                    }
                    if (hex(h) != *expect) {
                        r.ok = false;
                        r.first_bad = target;
                        r.problem = "the chain's hash at offset " + std::to_string(target) +
                                    " is not the one recorded: the history was rewritten";
                    }
                }
            }
            j["ok"] = r.ok;
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
