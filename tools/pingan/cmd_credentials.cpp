// pingan credentials: the school services' intake credentials (issue, list, revoke).
//
// `issue` makes a random token, prints it once on standard output and keeps
// only its hash in the file (mode 0600, written atomically). The services
// re-read the file when it changes, so a revocation holds from their next
// request on.
#include "common/codec.hpp"
#include "services/common/credentials.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"

#include <sys/stat.h>

#include <iostream>

namespace pingan::cli {
namespace {

using svc::credential;
using svc::credential_store;

struct credentials_args {
    std::string file, name, expires, registry;
    std::vector<std::string> scopes, roles;
    bool json = false;
};

credential_store load(const std::string& file, bool may_be_missing) {
    struct stat st {};
    if (may_be_missing && ::stat(file.c_str(), &st) != 0) return {};
    try {
        return svc::load_credentials(file);
    } catch (const error& e) {
        fatal(e.detail());
    }
}

void save(const std::string& file, const credential_store& s) {
    try {
        svc::save_credentials(file, s);
    } catch (const error& e) {
        fatal(e.detail());
    }
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v)
        out += (out.empty() ? "" : ",") + x;
    return out;
}

void run_issue(const credentials_args& a) {
    auto s = load(a.file, true);
    credential c;
    c.name = a.name;
    if (a.scopes.empty()) fatal("give at least one --scope (school:ID or district:CODE)");
    auto reg = load_school_registry(a.registry);
    for (const auto& sc : a.scopes) {
        if (!svc::add_scope(c, sc))
            fatal("--scope \"" + sc + "\" is not school:ID or district:CODE");
        if (sc.starts_with("school:") && !reg->find(sc.substr(7)))
            fatal("--scope " + sc + ": no such school in the registry");
        if (sc.starts_with("district:") && !reg->find_district(sc.substr(9)))
            fatal("--scope " + sc + ": no such district in the registry");
    }
    std::string known;
    for (auto k : svc::intake_roles)
        known += (known.empty() ? "" : ", ") + std::string(k);
    if (a.roles.empty()) fatal("give at least one --role: " + known);
    for (const auto& r : a.roles)
        if (!svc::known_intake_role(r)) fatal("--role \"" + r + "\" is not one of " + known);
    c.roles = a.roles;
    c.issued_at = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
    if (!a.expires.empty()) {
        if (auto t = parse_utc(a.expires)) {
            c.expires_at = *t;
        } else if (auto d = parse_duration(a.expires); d && d->count() > 0) {
            c.expires_at = c.issued_at + *d;
        } else {
            fatal("--expires \"" + a.expires +
                  "\" is neither an RFC 3339 time nor a duration (90d)");
        }
    }
    if (s.find(c.name)) fatal("credential \"" + c.name + "\" exists already", 1);
    std::string token;
    try {
        token = svc::issue_token(c);
        s.add(c);
    } catch (const error& e) {
        fatal(e.detail());
    }
    save(a.file, s);
    std::cerr << "issued " << c.name << " (" << c.scope_text() << "; " << join(c.roles)
              << (c.expires_at ? "; expires " + format_utc(*c.expires_at) : std::string())
              << "); the token below is shown only now:\n";
    std::cout << token << std::endl;
}

void run_revoke(const credentials_args& a) {
    auto s = load(a.file, false);
    auto* c = s.find(a.name);
    if (!c) fatal("no credential \"" + a.name + "\" in " + a.file, 1);
    if (!c->revoked_at)
        c->revoked_at = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
    save(a.file, s);
    std::cout << "revoked " << c->name << " (" << c->id << ")\n";
}

void run_list(const credentials_args& a) {
    auto s = load(a.file, false);
    auto now = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
    for (const auto& c : s.all()) {
        std::string state = c.revoked_at                           ? "revoked"
                            : c.expires_at && *c.expires_at <= now ? "expired"
                                                                   : "active";
        if (a.json) {
            json j = {{"id", c.id},
                      {"name", c.name},
                      {"scope", c.scope_text()},
                      {"roles", c.roles},
                      {"issued_at", format_utc(c.issued_at)},
                      {"state", state}};
            if (c.expires_at) j["expires_at"] = format_utc(*c.expires_at);
            if (c.revoked_at) j["revoked_at"] = format_utc(*c.revoked_at);
            std::cout << j.dump() << "\n";
            continue;
        }
        std::cout << c.id << "  " << c.name << "  " << c.scope_text() << "  " << join(c.roles)
                  << "  " << state;
        if (c.expires_at && state == "active") std::cout << " until " << format_utc(*c.expires_at);
        std::cout << "\n";
    }
}

void add_credentials(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "credentials", "Manage the school services' intake credentials (issue, list, revoke)");
    cmd->require_subcommand(1);
    static credentials_args a;
    auto file_opt = [](CLI::App* c) {
        c->add_option("--file", a.file, "the credentials file (the services' --credentials)")
            ->required();
    };
    auto* issue = cmd->add_subcommand(
        "issue", "Issue a credential for a person or device; prints its token once");
    issue->add_option("name", a.name, "person or device, e.g. zhang.wei or kiosk-2")->required();
    file_opt(issue);
    issue->add_option("--scope", a.scopes, "school:ID or district:CODE (repeatable)");
    issue->add_option("--role", a.roles, "a role it acts as (repeatable): safety_officer, ...");
    issue->add_option("--expires", a.expires, "an RFC 3339 time, or a duration such as 90d");
    issue->add_option("--registry", a.registry, "schools.csv (default: found beside the program)");
    issue->callback([] { run_issue(a); });

    auto* list = cmd->add_subcommand("list", "List credentials (never their tokens)");
    file_opt(list);
    list->add_flag("--json", a.json, "JSON Lines");
    list->callback([] { run_list(a); });

    auto* revoke = cmd->add_subcommand(
        "revoke", "Revoke a credential by name or id; the services refuse it at once");
    revoke->add_option("name", a.name, "name or id")->required();
    file_opt(revoke);
    revoke->callback([] { run_revoke(a); });
}

} // namespace

PINGAN_COMMAND(95, add_credentials);

} // namespace pingan::cli
