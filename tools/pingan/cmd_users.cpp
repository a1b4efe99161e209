// pingan users: the users file of pingan-console (add, passwd, disable, list).
//
// Passwords are read from the terminal without echo, or from standard input
// with --password-stdin (one line), and stored only as crypto_pwhash_str
// hashes; the file is written with mode 0600. A running console re-reads the
// file when it changes.
#include "common/codec.hpp"
#include "services/console/users.hpp"
#include "tools/pingan/commands.hpp"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <iostream>

namespace pingan::cli {
namespace {

using console::user;
using console::user_store;

struct users_args {
    std::string file, name, scope = "city";
    std::vector<std::string> roles;
    std::vector<std::string> clearance;
    bool password_stdin = false;
    bool json = false;
};

std::string read_password(bool from_stdin) {
    std::string pw;
    if (from_stdin || !::isatty(0)) {
        if (!std::getline(std::cin, pw)) fatal("no password on standard input");
        if (!pw.empty() && pw.back() == '\r') pw.pop_back();
        return pw;
    }
    termios old{};
    ::tcgetattr(0, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    auto ask = [&](const char* prompt) {
        std::cerr << prompt << std::flush;
        ::tcsetattr(0, TCSANOW, &quiet);
        std::string s;
        std::getline(std::cin, s);
        ::tcsetattr(0, TCSANOW, &old);
        std::cerr << "\n";
        return s;
    };
    pw = ask("password: ");
    if (ask("again: ") != pw) fatal("the two passwords differ");
    return pw;
}

user_store load(const std::string& file, bool may_be_missing) {
    struct stat st {};
    if (may_be_missing && ::stat(file.c_str(), &st) != 0) return {};
    try {
        return console::load_users(file);
    } catch (const error& e) {
        fatal(e.detail());
    }
}

void save(const std::string& file, const user_store& s) {
    try {
        console::save_users(file, s);
    } catch (const error& e) {
        fatal(e.detail());
    }
}

void run_add(const users_args& a) {
    auto s = load(a.file, true);
    user u;
    u.name = a.name;
    auto sc = console::parse_scope(a.scope);
    if (!sc) fatal("--scope \"" + a.scope + "\" is not city, district:CODE or school:ID");
    u.scope = *sc;
    if (a.roles.empty()) fatal("give at least one --role (viewer, responder, supervisor)");
    for (const auto& r : a.roles)
        if (!console::known_role(r))
            fatal("--role \"" + r + "\" is not viewer, responder or supervisor");
    u.roles = a.roles;
    for (const auto& c : a.clearance)
        if (c != "minors") fatal("--clearance \"" + c + "\": only minors is known");
    u.minors_clearance = !a.clearance.empty();
    if (s.find(u.name)) fatal("user \"" + u.name + "\" exists already (use passwd)", 1);
    try {
        u.password_hash = console::hash_password(read_password(a.password_stdin));
        s.add(std::move(u));
    } catch (const error& e) {
        fatal(e.detail());
    }
    save(a.file, s);
    std::cout << "added " << a.name << " (" << a.scope << ")\n";
}

void run_passwd(const users_args& a) {
    auto s = load(a.file, false);
    auto* u = s.find(a.name);
    if (!u) fatal("no user \"" + a.name + "\" in " + a.file, 1);
    try {
        u->password_hash = console::hash_password(read_password(a.password_stdin));
    } catch (const error& e) {
        fatal(e.detail());
    }
    u->disabled = false;
    save(a.file, s);
    std::cout << "password of " << a.name << " changed\n";
}

void run_disable(const users_args& a) {
    auto s = load(a.file, false);
    auto* u = s.find(a.name);
    if (!u) fatal("no user \"" + a.name + "\" in " + a.file, 1);
    u->disabled = true;
    save(a.file, s);
    std::cout << "disabled " << a.name << "\n";
}

void run_list(const users_args& a) {
    auto s = load(a.file, false);
    for (const auto& u : s.users()) {
        if (a.json) {
            json j = {{"name", u.name},
                      {"scope", console::scope_text(u.scope)},
                      {"roles", u.roles},
                      {"clearance", u.minors_clearance ? json::array({"minors"}) : json::array()},
                      {"disabled", u.disabled}};
            std::cout << j.dump() << "\n";
            continue;
        }
        std::cout << u.name << "  " << console::scope_text(u.scope) << "  ";
        for (std::size_t i = 0; i < u.roles.size(); ++i)
            std::cout << (i ? "," : "") << u.roles[i];
        if (u.minors_clearance) std::cout << "  clearance:minors";
        if (u.disabled) std::cout << "  DISABLED";
        std::cout << "\n";
    }
}

} // namespace

void add_users_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("users", "Manage pingan-console's users file (add, passwd, "
                                            "disable, list)");
    cmd->require_subcommand(1);
    auto file_opt = [](CLI::App* c, users_args& a) {
        c->add_option("--file", a.file, "the users file (created 0600 by add)")->required();
    };

    auto add = std::make_shared<users_args>();
    auto* ad = cmd->add_subcommand("add", "Add a user; the password is asked for");
    ad->add_option("name", add->name, "user name")->required();
    file_opt(ad, *add);
    ad->add_option("--scope", add->scope, "city, district:CODE or school:ID")
        ->capture_default_str();
    ad->add_option("--role", add->roles, "viewer, responder or supervisor (repeatable)");
    ad->add_option("--clearance", add->clearance,
                   "minors: may see minors' details (each view is logged)");
    ad->add_flag("--password-stdin", add->password_stdin, "read the password from standard input");
    ad->callback([add] { run_add(*add); });

    auto pw = std::make_shared<users_args>();
    auto* p = cmd->add_subcommand("passwd", "Set a user's password (and enable the user)");
    p->add_option("name", pw->name, "user name")->required();
    file_opt(p, *pw);
    p->add_flag("--password-stdin", pw->password_stdin, "read the password from standard input");
    p->callback([pw] { run_passwd(*pw); });

    auto dis = std::make_shared<users_args>();
    auto* d =
        cmd->add_subcommand("disable", "Disable a user; the console ends the user's sessions");
    d->add_option("name", dis->name, "user name")->required();
    file_opt(d, *dis);
    d->callback([dis] { run_disable(*dis); });

    auto ls = std::make_shared<users_args>();
    auto* l = cmd->add_subcommand("list", "The users, without their password hashes");
    file_opt(l, *ls);
    l->add_flag("--json", ls->json, "JSON Lines");
    l->callback([ls] { run_list(*ls); });
}

PINGAN_COMMAND(90, add_users_command);

} // namespace pingan::cli
