// pingan verify: checks the hash chain of a store, record by record, and
// optionally against a head recorded earlier (--expect) or a signed
// checkpoint another party kept (--checkpoint).
//
// Reads the LMDB files directly (read-only, alongside a running broker), so an
// auditor needs no broker credentials, only read access to the data directory.
#include "broker/store/store.hpp"
#include "tools/pingan/archive.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

namespace pingan::cli {

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fatal("cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

checkpoint checkpoint_of(const json& j, const std::string& where, const std::string& pubkey_file,
                         std::string& problem) {
    checkpoint c;
    try {
        c = checkpoint_from_json(j);
    } catch (const error& e) {
        fatal(where + ": " + e.detail());
    }
    if (!pubkey_file.empty()) {
        std::array<std::uint8_t, 32> pinned{};
        try {
            pinned = parse_public_key(slurp(pubkey_file));
        } catch (const error& e) {
            fatal(pubkey_file + ": " + e.detail());
        }
        auto want = to_hex(pinned.data(), pinned.size());
        if (c.public_key != want) {
            problem = "the checkpoint is signed by key " + c.public_key + ", not by " + want +
                      " (" + pubkey_file + ")";
            return c;
        }
    }
    if (!signature_valid(c))
        problem = "the checkpoint's signature does not verify with its key " + c.public_key +
                  ": the checkpoint was altered";
    return c;
}

checkpoint read_checkpoint(const std::string& file, const std::string& pubkey_file,
                           std::string& problem) {
    auto j = json::parse(slurp(file), nullptr, false);
    if (j.is_discarded()) fatal(file + ": not JSON (a checkpoint file is one JSON object)");
    return checkpoint_of(j, file, pubkey_file, problem);
}

namespace {

// The checkpoint an export's header carries (pingan export), if any.
std::optional<json> header_checkpoint(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    auto h = json::parse(line, nullptr, false);
    if (!h.is_object() || !h.contains("pingan_export")) return std::nullopt;
    auto it = h.find("checkpoint");
    if (it == h.end() || !it->is_object()) return std::nullopt;
    return *it;
}

// The first offset the store holds: 1, or after `pingan archive --drop` the
// first record kept (head + 1 when none is).
std::uint64_t first_held(const store& s) {
    if (s.head() == 0 || s.get(1)) return 1;
    scan_filter f;
    f.from = 1;
    f.to = s.head();
    std::uint64_t first = 0;
    s.scan(f, 1, [&](std::uint64_t off, std::string_view) {
        first = off;
        return false;
    });
    return first ? first : s.head() + 1;
}

// The chain's hash at `offset` in a store whose first records were archived
// and dropped: the hash stored with the record, which `s.verify()` (run
// first, and passed) proved the kept records chain to. Sets `r` and returns
// nothing when the offset is no longer in the store.
std::optional<std::string> archived_store_hash(const store& s, std::uint64_t offset,
                                               std::uint64_t first, verify_report& r) {
    if (offset == 0) return hex(chain_hash{});
    if (offset >= first) {
        if (auto h = s.hash_at(offset)) return hex(*h);
    }
    // The store's chain begins after the last archived record, at the hash it recorded.
    if (offset == first - 1 && first > s.head()) return hex(s.verify().head_hash);
    r.ok = false;
    r.first_bad = 0;
    r.problem = "offset " + std::to_string(offset) + " is no longer in this store: records 1-" +
                std::to_string(first - 1) +
                " were archived and dropped (pingan archive --drop); check it against the "
                "archive (pingan verify --archive DIR --data DIR proves the store continues it)";
    return std::nullopt;
}

// The store against a checkpoint: the chain recomputed from the first record
// must reach the checkpoint's hash at its offset.
void check_store(const store& s, const checkpoint& c, verify_report& r) {
    if (auto first = first_held(s); first > 1 && c.offset <= s.head()) {
        r = s.verify();
        if (!r.ok) return;
        auto h = archived_store_hash(s, c.offset, first, r);
        if (h && *h != c.hash) {
            r.ok = false;
            r.first_bad = c.offset;
            r.problem = "at offset " + std::to_string(c.offset) + " the checkpoint's hash is " +
                        c.hash + " but the store's chain hash is " + *h +
                        ": the history up to the checkpoint was rewritten";
        }
        return;
    }
    if (c.offset > s.head()) {
        r.ok = false;
        r.first_bad = s.head() + 1;
        r.problem = "the store ends at offset " + std::to_string(s.head()) +
                    ", before the checkpoint's offset " + std::to_string(c.offset) +
                    ": records the checkpoint covers were removed";
        return;
    }
    chain_hash h{};
    for (std::uint64_t off = 1; off <= c.offset; ++off) {
        auto rec = s.get(off);
        if (!rec) {
            r.ok = false;
            r.first_bad = off;
            r.problem = "record " + std::to_string(off) +
                        " is missing; the checkpoint covers offsets 1-" + std::to_string(c.offset);
            return;
        }
        h = chain_next(h, off, *rec);
    }
    if (hex(h) != c.hash) {
        r.ok = false;
        r.first_bad = c.offset;
        r.problem = "at offset " + std::to_string(c.offset) + " the checkpoint's hash is " +
                    c.hash + " but the store's records chain to " + hex(h) +
                    ": the history up to the checkpoint was rewritten";
    }
}

// The archive's segments and the live store as one chain: the segments chain
// from offset 1, and where the store still holds the archive's last offset,
// its chain hash there is the one the archive's records make, so the archived
// records are the store's byte for byte; then the store's own chain.
void verify_archive(const std::string& dir, const std::string& data) {
    std::vector<archive::segment> segs;
    try {
        segs = archive::list(dir);
    } catch (const std::exception& e) {
        fatal(e.what());
    }
    auto a = archive::read_all(segs, nullptr);
    std::uint64_t last = segs.empty() ? 0 : segs.back().last, bytes = 0;
    for (const auto& s : segs)
        bytes += s.file_bytes;
    json arch = {{"folder", dir},
                 {"segments", segs.size()},
                 {"last", last},
                 {"checked", a.checked},
                 {"bytes", bytes}};
    auto report = [](json j, bool ok, std::uint64_t first_bad, const std::string& problem) {
        j["ok"] = ok;
        if (!ok) {
            j["first_bad"] = first_bad;
            j["problem"] = problem;
        }
        std::cout << j.dump() << "\n";
        exit_code() = ok ? 0 : 1;
    };
    if (!a.ok) {
        report({{"archive", arch}}, false, a.first_bad, a.problem);
        return;
    }
    arch["last_hash"] = hex(a.head_hash);
    store_options o;
    o.path = data;
    o.read_only = true;
    store s(o);
    json j = {{"archive", arch}, {"head", s.head()}};
    if (last > 0) {
        if (s.head() < last) {
            report(j, false, s.head() + 1,
                   "the archive ends at offset " + std::to_string(last) + " but the store at " +
                       data + " ends at " + std::to_string(s.head()));
            return;
        }
        auto live = s.hash_at(last);
        auto next = s.get(last + 1);
        auto next_hash = s.hash_at(last + 1);
        if (live ? *live != a.head_hash
                 : s.head() > last && (!next || !next_hash ||
                                       chain_next(a.head_hash, last + 1, *next) != *next_hash)) {
            report(j, false, live ? last : last + 1,
                   "at offset " + std::to_string(live ? last : last + 1) +
                       " the store's chain hash is not the one the archive's records make: the "
                       "archive is not this store's history");
            return;
        }
    }
    auto r = s.verify();
    // All the store's records were archived and dropped: its chain begins
    // (and ends) at the hash it recorded, which must be the archive's.
    if (r.ok && last > 0 && s.head() == last && r.head_hash != a.head_hash) {
        r.ok = false;
        r.first_bad = last;
        r.problem = "the store's chain begins after offset " + std::to_string(last) +
                    " with another hash than the archive's: the archive is not this store's "
                    "history";
    }
    j["checked"] = r.checked;
    j["head_hash"] = hex(r.head_hash);
    report(j, r.ok, r.first_bad, r.problem.empty() ? "" : "the store: " + r.problem);
}

} // namespace

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
    auto photos = std::make_shared<std::string>();
    cmd->add_option("--photos", *photos,
                    "with --export: the folder of its photos (pingan export --photos); every "
                    "photo its events name must be there, of the size and hash they record");
    auto cp_file = std::make_shared<std::string>();
    auto pubkey = std::make_shared<std::string>();
    cmd->add_option("--checkpoint", *cp_file,
                    "a signed checkpoint file (pingan checkpoint, or the broker's checkpoint "
                    "directory): its signature must verify and the log must have its chain "
                    "hash at its offset");
    cmd->add_option("--pubkey", *pubkey,
                    "with --checkpoint: the public key file the checkpoint must be signed with "
                    "(the .pub of pingan checkpoint keygen)");
    auto archive_dir = std::make_shared<std::string>();
    cmd->add_option("--archive", *archive_dir,
                    "an archive folder (pingan archive): its segments and the store (--data) "
                    "must make one chain from offset 1 to the store's head");
    cmd->callback([cmd, data, expect, at, exported, photos, cp_file, pubkey, archive_dir] {
        if (!pubkey->empty() && cp_file->empty() && exported->empty())
            fatal("--pubkey goes with --checkpoint or --export");
        if (!photos->empty() && exported->empty()) fatal("--photos goes with --export");
        if (!archive_dir->empty()) {
            if (!expect->empty() || !exported->empty() || !cp_file->empty())
                fatal("--archive goes only with --data");
            try {
                verify_archive(*archive_dir, *data);
            } catch (const std::exception& e) {
                fatal(e.what());
            }
            return;
        }
        std::optional<checkpoint> cp;
        std::string cp_problem;
        // The checkpoint: the file given, else the one an export's header carries.
        std::string cp_from = *cp_file;
        if (!cp_file->empty()) {
            cp = read_checkpoint(*cp_file, *pubkey, cp_problem);
        } else if (!exported->empty()) {
            if (auto j = header_checkpoint(*exported)) {
                cp_from = "header";
                cp =
                    checkpoint_of(*j, *exported + ": the header's checkpoint", *pubkey, cp_problem);
            }
        }
        auto cp_json = [&] {
            return json{{"offset", cp->offset},           {"hash", cp->hash},
                        {"time", format_utc(cp->time)},   {"public_key", cp->public_key},
                        {"key_pinned", !pubkey->empty()}, {"from", cp_from}};
        };
        if (cp && !cp_problem.empty()) {
            json j = {{"ok", false}, {"checkpoint", cp_json()}, {"problem", cp_problem}};
            std::cout << j.dump() << "\n";
            exit_code() = 1;
            return;
        }
        if (!exported->empty()) {
            exit_code() = verify_export(*exported, cmd->count("--data") ? *data : std::string(),
                                        cp ? &*cp : nullptr, *photos, cp ? cp_json() : json());
            return;
        }
        try {
            store_options o;
            o.path = *data;
            o.read_only = true;
            store s(o);
            verify_report r;
            // A checkpoint first: its message names the offset and both hashes.
            if (cp) check_store(s, *cp, r);
            if (r.ok) r = s.verify();
            json j = {{"ok", r.ok},
                      {"checked", r.checked},
                      {"head", s.head()},
                      {"head_hash", hex(r.head_hash)}};
            if (cp) j["checkpoint"] = cp_json();
            if (r.ok && !expect->empty()) {
                // The recorded hash must be the chain's hash at that offset.
                auto target = *at ? *at : s.head();
                if (target > s.head()) {
                    r.ok = false;
                    r.problem = "offset " + std::to_string(target) + " is past the head";
                } else if (auto first = first_held(s); first > 1) {
                    auto h = archived_store_hash(s, target, first, r);
                    if (h && *h != *expect) {
                        r.ok = false;
                        r.first_bad = target;
                        r.problem = "the chain's hash at offset " + std::to_string(target) +
                                    " is not the one recorded: the history was rewritten";
                    }
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
                if (r.first_bad) j["first_bad"] = r.first_bad;
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
