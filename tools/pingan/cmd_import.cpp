// pingan import: an export back into a fresh store, the same records byte
// for byte.
//
// Only a complete JSON Lines export from the first record on (pingan export
// --data, nothing filtered or redacted) can be imported: its events are
// re-chained first and must reach the hashes its header carries, then stored
// with their own offsets and received_at times, and the new store's chain
// must end at the export's last hash. The engine's tables (open incidents,
// timers) are not part of an export: the imported store is the log, for
// audits (verify, replay, export, timelines, reports).
#include "broker/store/store.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

namespace pingan::cli {
namespace {

[[noreturn]] void refuse(const std::string& file, const std::string& why) {
    std::cout << json{{"ok", false}, {"export", file}, {"problem", why}}.dump() << "\n";
    std::exit(1);
}

void run_import(const std::string& file, const std::string& dir) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fatal("cannot read " + file);
    json header;
    std::vector<event> events;
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
        if (line.empty()) continue;
        auto j = json::parse(line, nullptr, false);
        if (j.is_discarded()) refuse(file, "line " + std::to_string(n) + " is not JSON");
        if (header.is_null()) {
            if (!j.contains("pingan_export"))
                refuse(file, "not a pingan export (no header line); import takes the JSON "
                             "Lines of pingan export --data");
            header = std::move(j);
            continue;
        }
        event e;
        if (auto p = from_json(j, e)) refuse(file, "line " + std::to_string(n) + ": " + p.text());
        e.offset = j.value("offset", std::uint64_t{0});
        events.push_back(std::move(e));
    }
    if (header.is_null()) refuse(file, "empty file");
    const auto& seg = header["segment"];
    if (!header.value("complete", false) || !seg.contains("prev_hash"))
        refuse(file, "not a complete export (filtered, redacted, or taken from the broker "
                     "without chain hashes): only pingan export --data with no filter can be "
                     "imported");
    if (seg.value("from", std::uint64_t{0}) != 1 || seg["prev_hash"] != std::string(64, '0'))
        refuse(file, "the export starts at offset " +
                         std::to_string(seg.value("from", std::uint64_t{0})) +
                         ", not at the first record: a store begins at offset 1");
    // The chain first: nothing is written unless the export proves itself.
    chain_hash h{};
    std::uint64_t expect = 1;
    for (const auto& e : events) {
        if (e.offset != expect)
            refuse(file, "offset " + std::to_string(expect) + " is missing (next is " +
                             std::to_string(e.offset) + ")");
        h = chain_next(h, e.offset, encode(e));
        if (e.offset == 1 && hex(h) != seg.value("first_hash", ""))
            refuse(file, "the first record does not hash to first_hash: the export was altered");
        ++expect;
    }
    if (expect - 1 != seg.value("to", std::uint64_t{0}) || hex(h) != seg.value("last_hash", ""))
        refuse(file, "the events do not chain to the segment's last_hash: the export was "
                     "altered or cut short");

    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(dir) && !fs::is_empty(dir, ec))
        fatal(dir + " is not empty: import makes a fresh store (give a new directory)", 1);
    try {
        store_options o;
        o.path = dir;
        fs::create_directories(dir, ec);
        store s(o);
        batch_output out;
        // One transaction per run of equal received_at times: the store gives
        // each event the next offset and that time, as the broker did.
        for (std::size_t i = 0; i < events.size();) {
            auto j = i;
            while (j < events.size() && j - i < 10000 &&
                   events[j].received_at == events[i].received_at)
                ++j;
            std::vector<event> run(events.begin() + static_cast<std::ptrdiff_t>(i),
                                   events.begin() + static_cast<std::ptrdiff_t>(j));
            out.results.clear();
            out.stored.clear();
            s.append(std::span(run), events[i].received_at, nullptr, out);
            for (std::size_t k = 0; k < run.size(); ++k)
                if (out.results[k].offset != events[i + k].offset ||
                    run[k].received_at != events[i + k].received_at)
                    fatal("event " + events[i + k].id.str() + " was stored at offset " +
                              std::to_string(out.results[k].offset) + " instead of " +
                              std::to_string(events[i + k].offset) + "; " + dir +
                              " is incomplete: remove it",
                          1);
            i = j;
        }
        auto r = s.verify();
        if (!r.ok || hex(r.head_hash) != seg.value("last_hash", ""))
            fatal(dir + ": the imported store does not verify (" + r.problem + ")", 1);
        std::cout << json{{"ok", true},       {"export", file},
                          {"store", dir},     {"imported", events.size()},
                          {"head", s.head()}, {"head_hash", hex(r.head_hash)}}
                         .dump()
                  << "\n";
    } catch (const error& e) {
        fatal(dir + ": " + e.detail());
    }
}

} // namespace

void add_import_command(CLI::App& app) {
    auto file = std::make_shared<std::string>();
    auto dir = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(
        "import", "Import a complete export (pingan export --data) into a fresh store: the same "
                  "records, offsets and chain hashes, byte for byte");
    cmd->add_option("file", *file, "the JSON Lines export")->required();
    cmd->add_option("--data", *dir, "the new store directory (must not exist or be empty)")
        ->required();
    cmd->callback([file, dir] { run_import(*file, *dir); });
}

PINGAN_COMMAND(36, add_import_command);

} // namespace pingan::cli
