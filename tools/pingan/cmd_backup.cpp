// pingan backup: a consistent copy of a store, taken while the broker runs,
// then verified.
//
// LMDB copies from one read transaction (mdb_env_copy2), so the copy is the
// store as of one commit even while the broker keeps writing; the copy is then
// opened as a store and its hash chain checked from the first record to its
// head before the command reports success.
#include "broker/store/store.hpp"
#include "common/lmdb.hpp"
#include "tools/pingan/commands.hpp"

#include <filesystem>
#include <iostream>

namespace pingan::cli {

namespace {

namespace fs = std::filesystem;

void backup(const std::string& data, const std::string& dest) {
    std::error_code ec;
    if (fs::exists(dest, ec) && !fs::is_empty(dest, ec))
        fatal(dest + ": not empty; a backup goes into a new or empty folder");
    if (!fs::exists(fs::path(data) / "data.mdb", ec)) fatal(data + ": no store here (no data.mdb)");
    fs::create_directories(dest, ec);
    if (ec) fatal(dest + ": " + ec.message());
    fs::permissions(dest, fs::perms::owner_all, fs::perm_options::replace, ec);
    {
        // Read-only, beside the running broker (its writer lock is not taken).
        lmdb::env src(data, 16, 0, MDB_RDONLY | MDB_NOTLS);
        lmdb::check("mdb_env_copy2", mdb_env_copy2(src.handle(), dest.c_str(), MDB_CP_COMPACT));
    }
    store_options o;
    o.path = dest;
    o.read_only = true;
    store copy(o);
    auto r = copy.verify();
    json j = {{"ok", r.ok},
              {"dest", dest},
              {"head", copy.head()},
              {"checked", r.checked},
              {"head_hash", hex(r.head_hash)},
              {"bytes", fs::file_size(fs::path(dest) / "data.mdb", ec)}};
    if (!r.ok) {
        j["first_bad"] = r.first_bad;
        j["problem"] = r.problem;
    }
    std::cout << j.dump() << "\n";
    exit_code() = r.ok ? 0 : 1;
}

} // namespace

void add_backup_command(CLI::App& app) {
    auto data = std::make_shared<std::string>("var/broker");
    auto dest = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(
        "backup", "Copy the store into a new folder while the broker runs (one consistent "
                  "commit, compacted), then verify the copy's hash chain. Exit 1 if it does not "
                  "verify.");
    cmd->add_option("--data", *data, "the broker's store directory")->capture_default_str();
    cmd->add_option("dest", *dest, "the backup folder (new or empty)")->required();
    cmd->callback([data, dest] {
        try {
            backup(*data, *dest);
        } catch (const std::exception& e) {
            fatal(e.what());
        }
    });
}

PINGAN_COMMAND(52, add_backup_command);

} // namespace pingan::cli
