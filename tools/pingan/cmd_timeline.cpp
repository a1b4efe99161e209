// pingan incidents timeline: one incident's story from report to closure, with
// the time between steps and its deadlines met or missed (docs/audit.md).
//
// Added to the `incidents` command after cmd_incidents.cpp made it.
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"
#include "tools/pingan/render.hpp"

#include <iostream>

namespace pingan::cli {
namespace {

struct timeline_args {
    std::string ref, school, data_dir, rules_file, registry_file;
    bool json = false;
};

// The rule set of --rules, if its hash is the one the incident's events name.
std::shared_ptr<const rules::ruleset> rules_for(const timeline_args& a, const incident_record& r) {
    if (a.rules_file.empty()) return nullptr;
    auto parsed = rules::parse(read_text_file(a.rules_file));
    if (!parsed.rules) {
        std::string why;
        for (const auto& d : parsed.errors)
            why += "\n  line " + std::to_string(d.line) + ": " + d.message;
        fatal(a.rules_file + " is not a valid rule set:" + why);
    }
    for (const auto& e : r.events) {
        auto b = e.find("body");
        if (b == e.end() || !b->contains("ruleset_hash")) continue;
        auto h = (*b)["ruleset_hash"].get<std::string>();
        if (h != parsed.rules->hash)
            fatal(a.rules_file + " is rule set " + parsed.rules->hash +
                      ", but the incident's events were made by rule set " + h +
                      ": give the rule set the broker ran",
                  1);
    }
    return parsed.rules;
}

void run(const timeline_args& a) {
    auto dir = data_dir_or_env(a.data_dir);
    auto r = dir.empty() ? incident_from_broker(a.ref, a.school)
                         : incident_from_store(dir, a.ref, a.school);
    auto rs = rules_for(a, r);
    auto t = build_timeline(r, rs.get());
    if (a.json) {
        std::cout << t.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace) << "\n";
        return;
    }
    filter_options names;
    names.registry = a.registry_file;
    auto reg = load_registry(names);
    std::cout << render_timeline(t, reg ? &*reg : nullptr);
}

void add_timeline(CLI::App& app) {
    auto* incidents = app.get_subcommand("incidents");
    auto a = std::make_shared<timeline_args>();
    auto* cmd = incidents->add_subcommand(
        "timeline", "One incident's story in order: the report, each rule that fired, who was "
                    "paged when, deliveries, acknowledgements, notes, rectification and "
                    "verification, with the time between steps and the deadlines met or missed");
    cmd->add_option("incident", a->ref, "incident id, or a subject such as a hazard id")
        ->required();
    cmd->add_option("--school", a->school, "the school, when naming a subject");
    cmd->add_flag("--json", a->json, "one JSON object: incident, steps, deadlines");
    cmd->add_option("--data", a->data_dir,
                    "read this store directory instead of asking the broker ($PINGAN_DATA)");
    cmd->add_option("--rules", a->rules_file,
                    "the rule set the broker ran: every step deadline is judged, not only the "
                    "due time and the overdue ones");
    cmd->add_option("--registry", a->registry_file, "schools.csv, for school names");
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([a] { run(*a); });
}

} // namespace

// After `incidents` (70).
PINGAN_COMMAND(71, add_timeline);

} // namespace pingan::cli
