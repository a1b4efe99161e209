// What `pingan` gives inspectors: one incident's story (incidents timeline,
// replay --incident), school terms, and the store read directly for exports.
// docs/audit.md describes the commands built on these.
#pragma once

#include "broker/engine/rules.hpp"
#include "broker/store/store.hpp"
#include "common/codec.hpp"
#include "common/registry.hpp"
#include "common/signing.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::cli {

// The store directory: `given`, else $PINGAN_DATA, else "" (ask the broker).
std::string data_dir_or_env(const std::string& given);

// The records `f` selects in the store directory `dir`, read-only (beside a
// running broker or of a stopped one), in offset order: `f`'s times are
// resolved to offsets first. `visit` gets each one's offset and bytes and
// returns false to stop. Exits 2 with the store's message if it cannot be read.
void scan_store(const std::string& dir, scan_filter f,
                const std::function<bool(std::uint64_t, std::string_view)>& visit);

// One incident (the JSON of INCIDENTS/INCIDENT in docs/protocol.md) and the
// events that concern it, in offset order, in the JSON mapping of events.md.
struct incident_record {
    json incident;
    std::vector<json> events;
    bool truncated = false;
};

// The filters of `pingan incidents list` and `pingan cap export`; empty: any.
struct incident_filter {
    bool open_only = false; // not closed
    std::string state;      // open, acknowledged, rectified, closed, or active (not closed)
    std::string severity, school, district, kind;
    std::string mode; // Actual, Exercise or Test
};

// The incidents that pass `f`, oldest first, in the JSON of INCIDENTS
// (docs/protocol.md): read from the store directory `dir` when it is given
// (read-only), else asked of the broker's INCIDENTS command, within the
// caller's scope. `truncated`: the broker sent only its first ones.
std::vector<json> list_incidents(const incident_filter& f, const std::string& dir, bool& truncated);

// By incident id (INC-...) or by subject (a hazard id) at `school`: asked of
// the broker's INCIDENT command, within the caller's scope and with minors'
// details redacted unless the caller is cleared. Exits 1 if there is none.
// `purpose` "export": the broker logs what it returned as access.viewed,
// what "export", before it answers.
incident_record incident_from_broker(const std::string& ref, const std::string& school,
                                     const std::string& purpose = {});

// The same, read from a store directory (read-only, beside a running broker
// or of a stopped one), with minors' details redacted.
incident_record incident_from_store(const std::string& dir, const std::string& ref,
                                    const std::string& school);

// The story of an incident: its steps in order with the time between them,
// and its deadlines, each met, missed or pending. With `rs` (the rule set the
// broker ran, when its hash matches the events'), the deadlines of every
// step of the incident's rules; without, the due time and the overdue ones.
json build_timeline(const incident_record& r, const rules::ruleset* rs);

// The story for people, in China time.
std::string render_timeline(const json& timeline, const registry* reg);

// A school term, "2026-autumn" or "2026-spring": [from, to) in China time.
// autumn: 1 September to 1 February of the next year; spring: 1 February to
// 1 September. Every day belongs to exactly one term.
struct school_term {
    std::string name;
    timestamp from, to; // to: exclusive
};
// pingan verify --export FILE [--data DIR]: checks a JSON Lines export
// (cmd_export.cpp); prints one JSON line. Returns: the exit code.
// With `cp`, the export (or, with `data_dir`, the store) must also hold the
// checkpoint's chain hash at its offset. With `photos_dir` (export --photos),
// every photo the events name must be there, of its size and hash.
// `cp_json` is what the result says of the checkpoint when it is proved.
int verify_export(const std::string& file, const std::string& data_dir,
                  const checkpoint* cp = nullptr, const std::string& photos_dir = {},
                  const json& cp_json = {});

// A checkpoint file read for `pingan verify --checkpoint`; exits 2 if it is
// unreadable or malformed. `problem` says why it is not to be trusted (a
// signature that does not verify, another key than `pubkey_file`'s), or is empty.
checkpoint read_checkpoint(const std::string& file, const std::string& pubkey_file,
                           std::string& problem);
// The same for a checkpoint already parsed (an export header's); `where`
// names it in messages.
checkpoint checkpoint_of(const json& j, const std::string& where, const std::string& pubkey_file,
                         std::string& problem);

std::optional<school_term> parse_term(std::string_view name);
inline constexpr const char* term_help =
    "a school term: YEAR-autumn (1 Sep to 31 Jan, China time) or YEAR-spring (1 Feb to 31 Aug)";

} // namespace pingan::cli
