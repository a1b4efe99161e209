// pingan incidents: list and show the escalation engine's incidents, and
// acknowledge, resolve or verify them.
//
// list and show read the broker's `incidents` table from its data directory
// (LMDB lets a reader share the file with the running broker). ack, resolve
// and verify are events, published through the broker's ingest like any other
// report, under the caller's authenticated identity; the engine applies them.
// An acknowledgement takes the incident's own mode (Exercise, Test) so that a
// drill's acknowledgement never silences a real incident.
#include "broker/engine.hpp"
#include "broker/store.hpp"
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"

#include <cstdlib>
#include <iostream>

namespace pingan::cli {
namespace {

struct common_args {
    std::string data_dir;
    std::string registry_file;
    bool json = false;
};

std::string data_dir_of(const common_args& a) {
    if (!a.data_dir.empty()) return a.data_dir;
    if (const char* d = std::getenv("PINGAN_DATA"); d && *d) return d;
    return {};
}

std::vector<incident> read_incidents(const common_args& a) {
    auto dir = data_dir_of(a);
    if (dir.empty()) fatal("give the broker's data directory with --data or $PINGAN_DATA");
    std::vector<incident> v;
    try {
        store_options o;
        o.path = dir;
        o.read_only = true;
        store s(o);
        s.scan_table("incidents", "", [&](std::string_view, std::string_view value) {
            incident i;
            if (decode_incident(value, i)) v.push_back(std::move(i));
            return true;
        });
    } catch (const error& e) {
        fatal(dir + ": " + e.detail());
    }
    std::sort(v.begin(), v.end(),
              [](const incident& x, const incident& y) { return x.opened_us < y.opened_us; });
    return v;
}

// An incident by id, or by subject (a hazard id, a report's id) at `school`.
std::optional<incident> find_incident(const common_args& a, const std::string& ref,
                                      const std::string& school) {
    std::optional<incident> found;
    for (auto& i : read_incidents(a)) {
        if (i.id == ref) return i;
        if (i.subject == ref && (school.empty() || i.school == school)) {
            if (found && found->id != i.id && !found->closed && !i.closed)
                fatal(ref + " names more than one open incident; use the incident id");
            if (!found || !i.closed) found = std::move(i);
        }
    }
    return found;
}

std::string state_of(const incident& i) {
    return incident_to_json(i)["state"].get<std::string>();
}

// ---- list and show ----

struct list_args {
    common_args c;
    bool open_only = false;
    std::string school, district, kind;
};

void run_list(const list_args& a) {
    auto reg = a.c.json ? nullptr : load_school_registry(a.c.registry_file);
    for (const auto& i : read_incidents(a.c)) {
        if (a.open_only && i.closed) continue;
        if (!a.school.empty() && i.school != a.school) continue;
        if (!a.district.empty() && i.district != a.district) continue;
        if (!a.kind.empty() && i.kind != a.kind) continue;
        if (a.c.json) {
            std::cout << incident_to_json(i).dump(-1, ' ', false,
                                                  nlohmann::detail::error_handler_t::replace)
                      << "\n";
            continue;
        }
        std::cout << i.id << "  " << state_of(i);
        if (i.mode == status::exercise) std::cout << " [EXERCISE]";
        if (i.mode == status::test) std::cout << " [TEST]";
        std::cout << "  " << format_local(from_us(i.opened_us)) << "  " << i.kind << "  "
                  << (i.school.empty() ? "-" : i.school);
        if (reg && !i.school.empty())
            if (auto* s = reg->find(i.school)) std::cout << " " << s->name;
        std::cout << "  " << i.subject;
        if (i.due_us && !i.closed) std::cout << "  due " << format_local(from_us(*i.due_us));
        std::cout << "\n";
    }
}

struct show_args {
    common_args c;
    std::string ref, school;
};

void run_show(const show_args& a) {
    auto i = find_incident(a.c, a.ref, a.school);
    if (!i) fatal("no incident " + a.ref, 1);
    auto j = incident_to_json(*i);
    if (a.c.json) {
        std::cout << j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace) << "\n";
        return;
    }
    std::cout << j.dump(2, ' ', false, nlohmann::detail::error_handler_t::replace) << "\n";
}

// ---- ack, resolve, verify ----

struct act_args {
    common_args c;
    std::string ref, school;
    std::string text; // note, resolution or evidence
    std::string verifier, result = "pass";
    bool exercise = false, test = false;
    int timeout_ms = 5000;
};

// The broker's own time (CLOCK without arguments): the act happens on the
// broker's time line, which for a manual or scaled clock (tests, simulations)
// is not this machine's, and would otherwise be refused as too far ahead of it.
// Nothing if the query socket does not answer.
std::optional<timestamp> broker_time(zmq::context_t& ctx) {
    try {
        query_client q(ctx, endpoints().query, curve());
        return parse_utc(
            q.clock(json::object(), std::chrono::seconds(1))["now"].get<std::string>());
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

void publish_one(const act_args& a, body b) {
    event e;
    e.school = a.school;
    e.status = a.exercise ? status::exercise : a.test ? status::test : status::actual;
    // With the data directory at hand, the incident supplies its school and mode.
    if (!data_dir_of(a.c).empty()) {
        if (auto i = find_incident(a.c, a.ref, a.school)) {
            if (e.school.empty()) e.school = i->school;
            e.status = i->mode;
        }
    }
    zmq::context_t ctx(1);
    auto now = broker_time(ctx).value_or(
        std::chrono::time_point_cast<micros>(std::chrono::system_clock::now()));
    e.id = new_event_id(now);
    e.source = "pingan-cli/incidents";
    e.occurred_at = now;
    e.scope = scope::restricted;
    e.body = std::move(b);
    ingest_client client(ctx, endpoints().ingest, curve());
    publish_reply reply;
    try {
        std::vector<event> batch{e};
        reply = client.publish(batch, std::chrono::milliseconds(a.timeout_ms));
    } catch (const error& x) {
        fatal(x.what(), 2);
    }
    json j = json::object();
    j["id"] = e.id.str();
    j["type"] = std::string(e.type());
    if (reply.refused || reply.results.empty()) {
        j["error"] = {{"code", std::string(errc_name(reply.code))}, {"message", reply.message}};
        exit_code() = 1;
    } else if (reply.results[0].what == wire::outcome::rejected) {
        j["error"] = {{"code", std::string(errc_name(reply.results[0].code))},
                      {"message", reply.results[0].message}};
        exit_code() = 1;
    } else {
        j["offset"] = reply.results[0].offset;
        j["duplicate"] = reply.results[0].what == wire::outcome::duplicate;
    }
    std::cout << j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace) << "\n";
}

void add_act_options(CLI::App* cmd, act_args& a, const char* ref_help) {
    cmd->add_option("incident", a.ref, ref_help)->required();
    cmd->add_option("--school", a.school, "the school (needed when naming a subject)");
    cmd->add_flag("--exercise", a.exercise, "an exercise incident (found from --data if given)");
    cmd->add_flag("--test", a.test, "a test incident (found from --data if given)");
    cmd->add_option("--data", a.c.data_dir, "broker data directory, to look the incident up");
    cmd->add_option("--timeout-ms", a.timeout_ms, "wait this long for the broker's ack")
        ->capture_default_str();
    add_endpoint_options(*cmd, true, false, true);
}

} // namespace

void add_incidents_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("incidents", "List, show, acknowledge, resolve and verify "
                                                "the escalation engine's incidents");
    cmd->require_subcommand(1);

    auto l = std::make_shared<list_args>();
    auto* list = cmd->add_subcommand("list", "Incidents, oldest first");
    list->add_flag("--open", l->open_only, "only incidents not closed");
    list->add_option("--school", l->school, "only this school");
    list->add_option("--district", l->district, "only this district");
    list->add_option("--kind", l->kind, "only this kind (hazard, food_illness, psych, ...)");
    list->add_flag("--json", l->c.json, "JSON Lines");
    list->add_option("--data", l->c.data_dir, "broker data directory ($PINGAN_DATA)");
    list->add_option("--registry", l->c.registry_file, "schools.csv, for school names");
    list->callback([l] { run_list(*l); });

    auto s = std::make_shared<show_args>();
    auto* show = cmd->add_subcommand("show", "One incident: state, milestones, deadlines, pages");
    show->add_option("incident", s->ref, "incident id, or a subject such as a hazard id")
        ->required();
    show->add_option("--school", s->school, "the school, when naming a subject");
    show->add_flag("--json", s->c.json, "one JSON line");
    show->add_option("--data", s->c.data_dir, "broker data directory ($PINGAN_DATA)");
    show->callback([s] { run_show(*s); });

    auto ack = std::make_shared<act_args>();
    auto* a = cmd->add_subcommand("ack", "Acknowledge an incident (stops 'until acknowledged' "
                                         "escalation)");
    add_act_options(a, *ack, "incident id, or a subject with --school");
    a->add_option("--note", ack->text, "a note for the log");
    a->callback([ack] {
        incident_acknowledged b;
        b.incident_id = ack->ref;
        b.note = ack->text;
        publish_one(*ack, std::move(b));
    });

    auto res = std::make_shared<act_args>();
    auto* r = cmd->add_subcommand("resolve", "Resolve an incident (hazards close by verify)");
    add_act_options(r, *res, "incident id, or a subject with --school");
    r->add_option("--resolution", res->text, "what was done")->required();
    r->callback([res] {
        incident_resolved b;
        b.incident_id = res->ref;
        b.resolution = res->text;
        publish_one(*res, std::move(b));
    });

    auto ver = std::make_shared<act_args>();
    auto* v = cmd->add_subcommand(
        "verify", "Verify a rectified hazard; must be someone other than the fixer");
    add_act_options(v, *ver, "hazard id");
    v->add_option("--verifier", ver->verifier, "who checked the fix")->required();
    v->add_option("--result", ver->result, "pass or fail")
        ->check(CLI::IsMember({"pass", "fail"}))
        ->capture_default_str();
    v->add_option("--evidence", ver->text, "what was checked");
    v->callback([ver] {
        hazard_verified b;
        b.hazard_id = ver->ref;
        b.verifier = ver->verifier;
        b.result = ver->result == "pass" ? verify_result::pass : verify_result::fail;
        b.evidence = ver->text;
        publish_one(*ver, std::move(b));
    });
}

PINGAN_COMMAND(70, add_incidents_command);

} // namespace pingan::cli
