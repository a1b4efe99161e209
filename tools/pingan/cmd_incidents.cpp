// pingan incidents: list and show the escalation engine's incidents, and
// acknowledge, annotate, resolve or verify them.
//
// list and show ask the broker's query socket (INCIDENTS, INCIDENT), which
// answers within the caller's scope; with --data they read a store's
// `incidents` table directly instead (read-only, beside a running broker or
// of a stopped one). ack, note, resolve and verify first look the incident up over
// the network, so that its school and mode come from the incident itself and
// an action that makes no sense (an unknown incident, resolving a hazard, a
// verification by the fixer) is refused with a message; then they publish the
// action event through the broker's ingest, at the broker's time, under the
// caller's authenticated identity (the broker records it as the actor).
#include "broker/engine/engine.hpp"
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"
#include "tools/pingan/render.hpp"

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

std::string dump(const json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::detail::error_handler_t::replace);
}

// An incident by id, or by subject (a hazard id, a report's id) at `school`,
// from a store directory.
std::optional<json> find_incident(const std::string& dir, const std::string& ref,
                                  const std::string& school) {
    std::optional<json> found;
    bool cut = false;
    for (auto& i : list_incidents(incident_filter{}, dir, cut)) {
        if (i["id"] == ref) return i;
        if (i["subject"] == ref && (school.empty() || i["school"] == school)) {
            bool open = i["state"] != "closed";
            if (found && (*found)["id"] != i["id"] && (*found)["state"] != "closed" && open)
                fatal(ref + " names more than one open incident; use the incident id");
            if (!found || open) found = std::move(i);
        }
    }
    return found;
}

// ---- the network path: INCIDENTS and INCIDENT on the query socket ----

json ask(const std::string& cmd, const json& params) {
    zmq::context_t ctx(1);
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    try {
        return q.request(cmd, params, answer_timeout());
    } catch (const error& e) {
        if (e.code() == errc::not_found) fatal(e.detail(), 1);
        fail(e);
    }
}

// INCIDENT: {"incident": {...}, "timeline": [...]}. Exits 1 if there is none.
json lookup(const std::string& ref, const std::string& school) {
    json p = json::object();
    if (ref.starts_with("INC-")) {
        p["id"] = ref;
    } else {
        p["subject"] = ref;
        if (!school.empty()) p["school"] = school;
    }
    return ask("INCIDENT", p);
}

// ---- list and show ----

struct list_args {
    common_args c;
    incident_filter f;
};

std::string line_of(const json& i, const registry* reg) {
    std::ostringstream o;
    auto school = i.value("school", std::string());
    o << i["id"].get<std::string>() << "  " << i["state"].get<std::string>();
    if (i["mode"] == "Exercise") o << " [EXERCISE]";
    if (i["mode"] == "Test") o << " [TEST]";
    o << "  " << format_local(*parse_utc(i["opened_at"].get<std::string>())) << "  "
      << i["severity"].get<std::string>() << "  " << i["kind"].get<std::string>() << "  "
      << (school.empty() ? "-" : school);
    if (reg && !school.empty())
        if (auto* s = reg->find(school)) o << " " << s->name;
    o << "  " << i["subject"].get<std::string>();
    if (!i["title"].get<std::string>().empty()) o << "  " << i["title"].get<std::string>();
    if (i["due"].is_string() && i["state"] != "closed")
        o << "  due " << format_local(*parse_utc(i["due"].get<std::string>()));
    return o.str();
}

void run_list(const list_args& a) {
    bool truncated = false;
    auto rows = list_incidents(a.f, data_dir_of(a.c), truncated);
    if (truncated)
        std::cerr << "pingan: the broker sent the first " << rows.size()
                  << " incidents only; narrow the filters\n";
    // School names when a registry is at hand; the codes are shown in any case.
    filter_options names;
    names.registry = a.c.registry_file;
    auto reg = a.c.json ? std::nullopt : load_registry(names);
    for (const auto& i : rows)
        std::cout << (a.c.json ? dump(i) : line_of(i, reg ? &*reg : nullptr)) << "\n";
}

struct show_args {
    common_args c;
    std::string ref, school;
};

void run_show(const show_args& a) {
    if (auto dir = data_dir_of(a.c); !dir.empty()) {
        auto i = find_incident(dir, a.ref, a.school);
        if (!i) fatal("no incident " + a.ref, 1);
        std::cout << dump(*i, a.c.json ? -1 : 2) << "\n";
        return;
    }
    auto r = lookup(a.ref, a.school);
    auto j = r["incident"];
    if (a.c.json) {
        j["timeline"] = r["timeline"];
        std::cout << dump(j) << "\n";
        return;
    }
    std::cout << dump(j, 2) << "\ntimeline:\n";
    auto reg = load_registry(filter_options{});
    for (const auto& ej : r["timeline"]) {
        event e;
        if (from_json(ej, e))
            std::cout << dump(ej) << "\n";
        else {
            e.offset = ej.value("offset", std::uint64_t{0});
            std::cout << render_line(e, reg ? &*reg : nullptr) << "\n";
        }
    }
    if (r.value("truncated", false)) std::cout << "(timeline cut: more events follow)\n";
}

// ---- ack, resolve, verify ----

struct act_args {
    std::string ref, school;
    std::string text; // note, resolution or evidence
    std::string verifier, result = "pass";
    bool withdrawn = false;
};

// The broker's own time (CLOCK without arguments): the act happens on the
// broker's time line, which for a manual or scaled clock (tests, simulations)
// is not this machine's, and would otherwise be refused as too far ahead of it.
timestamp broker_time(zmq::context_t& ctx) {
    query_client q(ctx, endpoints().query, curve());
    try {
        return *parse_utc(q.clock(json::object(), answer_timeout())["now"].get<std::string>());
    } catch (const error& e) {
        fail(e);
    }
}

// The school an action is published at: the incident's own, or for a
// cross-school incident (a cluster) one of its member schools: the one named
// with --school, else the first. The broker checks that the caller's key may
// act for that school; the engine takes an action on a cluster only from a
// member school (or, for an acknowledgement, from no school: the city).
std::string acting_school(const json& inc, const act_args& a, bool city_wide_allowed) {
    auto own = inc["school"].get<std::string>();
    if (!own.empty()) return own;
    auto id = inc["id"].get<std::string>();
    std::vector<std::string> members;
    if (auto m = inc.find("schools"); m != inc.end() && m->is_array())
        for (const auto& s : *m)
            members.push_back(s.get<std::string>());
    if (!a.school.empty()) {
        if (std::find(members.begin(), members.end(), a.school) != members.end()) return a.school;
        std::string list;
        for (const auto& s : members)
            list += (list.empty() ? "" : ", ") + s;
        fatal(id + " is a cross-school incident whose schools are " +
                  (list.empty() ? std::string("none") : list) + "; " + a.school + " is not one",
              1);
    }
    if (!members.empty()) return members.front();
    if (city_wide_allowed) return {};
    fatal(id + " is a city-wide incident of no school: it can only be acknowledged", 1);
}

void publish_one(const json& inc, body b, const std::string& school) {
    event e;
    e.school = school;
    e.status = inc["mode"] == "Exercise" ? status::exercise
               : inc["mode"] == "Test"   ? status::test
                                         : status::actual;
    zmq::context_t ctx(1);
    auto now = broker_time(ctx);
    e.id = new_event_id(now);
    e.source = "pingan-cli/incidents";
    e.occurred_at = now;
    e.scope = scope::restricted;
    e.body = std::move(b);
    ingest_client client(ctx, endpoints().ingest, curve());
    publish_reply reply;
    try {
        std::vector<event> batch{e};
        reply = client.publish(batch, answer_timeout(), 1);
    } catch (const error& x) {
        fail(x);
    }
    json j = json::object();
    j["id"] = e.id.str();
    j["type"] = std::string(e.type());
    j["incident"] = inc["id"];
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
    std::cout << dump(j) << "\n";
}

// The incident an action names, checked to be open.
json open_incident(const act_args& a) {
    auto inc = lookup(a.ref, a.school)["incident"];
    auto id = inc["id"].get<std::string>();
    if (inc["state"] == "closed")
        fatal(id + " is closed (" + inc["closed_at"].get<std::string>() + "): nothing to do", 1);
    return inc;
}

bool is_hazard(const json& inc) {
    return inc.contains("rectified_by");
}

void add_act_options(CLI::App* cmd, act_args& a, const char* ref_help) {
    cmd->add_option("incident", a.ref, ref_help)->required();
    cmd->add_option("--school", a.school,
                    "the school, when naming a subject; for a cross-school incident, the member "
                    "school to act for (default: its first)");
    add_endpoint_options(*cmd, true, false, true);
}

} // namespace

void add_incidents_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "incidents", "List, show, acknowledge, annotate, resolve and verify the escalation "
                     "engine's incidents (asked of the broker's query socket; --data reads a store "
                     "directly)");
    cmd->require_subcommand(1);

    auto l = std::make_shared<list_args>();
    auto* list = cmd->add_subcommand("list", "Incidents, oldest first");
    list->add_flag("--open", l->f.open_only, "only incidents not closed");
    list->add_option("--state", l->f.state, "only this state")
        ->check(CLI::IsMember({"open", "acknowledged", "rectified", "closed", "active"}));
    list->add_option("--severity,--level", l->f.severity, "only this severity")
        ->check(CLI::IsMember({"Extreme", "Severe", "Moderate", "Minor", "Unknown"}));
    list->add_option("--school", l->f.school, "only this school");
    list->add_option("--district", l->f.district, "only this district");
    list->add_option("--kind", l->f.kind, "only this kind (hazard, food_illness, psych, ...)");
    list->add_option("--mode", l->f.mode, "only this mode")
        ->check(CLI::IsMember({"Actual", "Exercise", "Test"}));
    list->add_flag("--json", l->c.json, "JSON Lines");
    list->add_option("--data", l->c.data_dir,
                     "read this store directory instead of asking the broker ($PINGAN_DATA)");
    list->add_option("--registry", l->c.registry_file, "schools.csv, for school names");
    add_endpoint_options(*list, false, false, true);
    list->callback([l] { run_list(*l); });

    auto s = std::make_shared<show_args>();
    auto* show = cmd->add_subcommand(
        "show", "One incident: state, milestones, deadlines, pages, and the timeline of the "
                "events that concern it");
    show->add_option("incident", s->ref, "incident id, or a subject such as a hazard id")
        ->required();
    show->add_option("--school", s->school, "the school, when naming a subject");
    show->add_flag("--json", s->c.json, "one JSON line (the incident, with its timeline)");
    show->add_option("--data", s->c.data_dir,
                     "read this store directory instead of asking the broker (no timeline) "
                     "($PINGAN_DATA)");
    add_endpoint_options(*show, false, false, true);
    show->callback([s] { run_show(*s); });

    auto ack = std::make_shared<act_args>();
    auto* a = cmd->add_subcommand("ack", "Acknowledge an incident (stops 'until acknowledged' "
                                         "escalation)");
    add_act_options(a, *ack, "incident id, or a subject with --school");
    a->add_option("--note", ack->text, "a note for the log");
    a->callback([ack] {
        auto inc = open_incident(*ack);
        incident_acknowledged b;
        b.incident_id = inc["id"].get<std::string>();
        b.note = ack->text;
        publish_one(inc, std::move(b), acting_school(inc, *ack, true));
    });

    auto note = std::make_shared<act_args>();
    auto* n = cmd->add_subcommand("note", "Add a note to an incident's timeline (changes nothing "
                                          "of its state)");
    add_act_options(n, *note, "incident id, or a subject with --school");
    n->add_option("text", note->text, "the note")->required();
    n->callback([note] {
        auto inc = open_incident(*note);
        incident_note b;
        b.incident_id = inc["id"].get<std::string>();
        b.text = note->text;
        publish_one(inc, std::move(b), acting_school(inc, *note, false));
    });

    auto res = std::make_shared<act_args>();
    auto* r = cmd->add_subcommand("resolve", "Resolve an incident (hazards close by verify)");
    add_act_options(r, *res, "incident id, or a subject with --school");
    r->add_option("--resolution", res->text, "what was done")->required();
    r->add_flag("--withdrawn", res->withdrawn,
                "the incident was reported in error or taken back: it closes as withdrawn and "
                "pingan cap export gives a CAP Cancel");
    r->callback([res] {
        auto inc = open_incident(*res);
        auto id = inc["id"].get<std::string>();
        if (is_hazard(inc))
            fatal(id + " is a hazard (" + inc["subject"].get<std::string>() +
                      "): it closes when someone other than the fixer verifies the "
                      "rectification: pingan incidents verify " +
                      inc["subject"].get<std::string>() + " --school " +
                      inc["school"].get<std::string>() + " --verifier NAME",
                  1);
        incident_resolved b;
        b.incident_id = id;
        b.resolution = res->text;
        b.withdrawn = res->withdrawn;
        publish_one(inc, std::move(b), acting_school(inc, *res, false));
    });

    auto ver = std::make_shared<act_args>();
    auto* v = cmd->add_subcommand(
        "verify", "Verify a rectified hazard; must be someone other than the fixer");
    add_act_options(v, *ver, "hazard id (with --school), or the incident id");
    v->add_option("--verifier", ver->verifier, "who checked the fix")->required();
    v->add_option("--result", ver->result, "pass or fail")
        ->check(CLI::IsMember({"pass", "fail"}))
        ->capture_default_str();
    v->add_option("--evidence", ver->text, "what was checked");
    v->callback([ver] {
        auto inc = open_incident(*ver);
        auto id = inc["id"].get<std::string>();
        if (!is_hazard(inc)) fatal(id + " is not a hazard: use pingan incidents resolve " + id, 1);
        if (inc["state"] != "rectified")
            fatal(id + " (hazard " + inc["subject"].get<std::string>() +
                      ") is not rectified yet: nothing to verify",
                  1);
        if (inc["rectified_by"] == ver->verifier)
            fatal(ver->verifier + " rectified hazard " + inc["subject"].get<std::string>() +
                      ": the verification must be by someone other than the fixer",
                  1);
        hazard_verified b;
        b.hazard_id = inc["subject"].get<std::string>();
        b.verifier = ver->verifier;
        b.result = ver->result == "pass" ? verify_result::pass : verify_result::fail;
        b.evidence = ver->text;
        publish_one(inc, std::move(b), acting_school(inc, *ver, false));
    });
}

PINGAN_COMMAND(70, add_incidents_command);

} // namespace pingan::cli
