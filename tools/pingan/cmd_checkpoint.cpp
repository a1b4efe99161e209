// pingan checkpoint: the broker's signed head, and the key that signs.
//
//   pingan checkpoint [--out FILE]       the broker signs its head now; prints it as JSON
//   pingan checkpoint --last             the last checkpoint it signed, as it was
//   pingan checkpoint --data DIR         the store's last checkpoint, read directly
//   pingan checkpoint keygen --out FILE  writes a new Ed25519 signing key
//
// Over the query socket the broker answers CHECKPOINT, with {"now": true}
// unless --last (docs/protocol.md); with --data the last audit.checkpoint
// event of the store is read directly.
// A checkpoint is proved with `pingan verify --checkpoint FILE`.
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "common/private_file.hpp"
#include "common/signing.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

namespace pingan::cli {
namespace {

json from_store(const std::string& dir) {
    try {
        store_options o;
        o.path = dir;
        o.read_only = true;
        store s(o);
        // The last one: checkpoints come every few minutes, so it is near the head.
        for (auto off = s.head(); off >= 1; --off) {
            auto rec = s.get(off);
            if (!rec) continue;
            event_head h;
            if (!peek(*rec, h) || h.type != audit_checkpoint::type) continue;
            event e;
            if (auto p = decode(*rec, e))
                fatal("record " + std::to_string(off) + " does not decode: " + p.text(), 1);
            const auto& b = std::get<audit_checkpoint>(e.body);
            auto j = to_json(checkpoint{b.offset, b.hash, b.signed_at, b.public_key, b.signature});
            j["stored_at"] = off;
            return j;
        }
        fatal(dir + " holds no checkpoint (the broker signs them when started with a "
                    "checkpoint key)",
              1);
    } catch (const error& e) {
        fatal(dir + ": " + e.detail());
    }
}

void keygen(const std::string& out) {
    if (std::filesystem::exists(out)) fatal(out + " exists; refusing to overwrite a key");
    auto k = generate_signing_key();
    try {
        write_private_file(out, format_signing_key(k));
        std::ofstream pub(out + ".pub", std::ios::trunc);
        pub << to_hex(k.public_key.data(), k.public_key.size()) << "\n";
        pub.flush();
        if (!pub) fatal("cannot write " + out + ".pub");
    } catch (const error& e) {
        fatal(e.detail());
    }
    std::cout << to_hex(k.public_key.data(), k.public_key.size()) << "\n";
}

// Writes the checkpoint to `path` beside, then renames it: a party that
// watches the file never reads half of it.
void write_out(const std::string& path, const json& c) {
    auto tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << c.dump() << "\n";
        out.flush();
        if (!out) fatal("cannot write " + tmp);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) fatal("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

} // namespace

void add_checkpoint_command(CLI::App& app) {
    auto data = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto last = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "checkpoint", "Have the broker sign its head now and print that checkpoint (offset, "
                      "chain hash, time, public key, signature) as JSON; check a log with "
                      "pingan verify --checkpoint");
    cmd->add_option("--data", *data,
                    "read the store's last checkpoint from this directory instead of asking the "
                    "broker ($PINGAN_DATA)");
    cmd->add_flag("--last", *last,
                  "print the last checkpoint the broker signed (at its interval, start or stop) "
                  "instead of having it sign its head now");
    cmd->add_option("--out", *file,
                    "write the checkpoint to this file (written beside, then renamed) instead "
                    "of standard output");
    add_endpoint_options(*cmd, false, false, true);
    auto* gen = cmd->add_subcommand(
        "keygen", "Write a new Ed25519 signing key for the broker's checkpoints (mode 0600; its "
                  "public key also to FILE.pub) and print its public key");
    gen->add_option("--out", *out, "the key file to create (outside the store directory)")
        ->required();
    gen->callback([out] { keygen(*out); });
    cmd->callback([cmd, gen, data, file, last] {
        if (gen->parsed()) return;
        auto emit = [&](const json& c) {
            if (file->empty())
                std::cout << c.dump() << "\n";
            else
                write_out(*file, c);
        };
        auto dir = data_dir_or_env(*data);
        if (!dir.empty()) {
            // Read directly, nothing is signed: the store's last checkpoint.
            emit(from_store(dir));
            return;
        }
        zmq::context_t ctx(1);
        query_client q(ctx, endpoints().query, curve());
        announce_waiting(q.link());
        try {
            auto params = *last ? json::object() : json{{"now", true}};
            emit(q.request("CHECKPOINT", params, answer_timeout()));
        } catch (const error& e) {
            fail(e);
        }
    });
}

PINGAN_COMMAND(52, add_checkpoint_command);

} // namespace pingan::cli
