// pingan access reload: asks the broker to read its access table again, as
// SIGHUP does. Only a client of city scope may ask.
// pingan access nats: the NATS users and permissions that let each client of
// the access table read its scope of the replicated stream, and nothing else
// (docs/replication.md, "Who reads the stream").
#include "broker/admission/access.hpp"
#include "common/client.hpp"
#include "common/stream_subjects.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

namespace pingan::cli {
namespace {

struct nats_args {
    std::string access, registry, stream = "PINGAN", subject = "pingan.events", account = "CITY";
    std::string broker_user = "broker";
};

// A NATS user name or configuration variable made of an identity: letters,
// digits, `-` and `_` kept, anything else (`:`, a dot, a space) made `-`.
std::string nats_name(std::string_view identity) {
    std::string s;
    for (unsigned char c : identity)
        s += std::isalnum(c) || c == '-' || c == '_' ? static_cast<char>(c) : '-';
    return s;
}

// The environment variable nats-server reads a user's password from.
std::string password_variable(std::string_view user) {
    std::string v = "PINGAN_NATS_";
    for (unsigned char c : user)
        v += std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
    return v;
}

// One reader's user: consumers of its scope's filter only, its scope's inbox.
void reader_user(std::ostream& out, const nats_args& a, const principal& p) {
    auto user = nats_name(p.identity);
    std::string filter, inbox, what;
    if (p.city) {
        filter = stream_subjects(a.subject);
        inbox = "_INBOX"; // libnats' own prefix: a city reader may read anything anyway
        what = "the whole stream";
    } else if (!p.school.empty()) {
        filter = scope_filter(a.subject, p.home_district, p.school);
        inbox = "_INBOX_" + p.school;
        what = "school " + p.school;
    } else {
        filter = a.subject + "." + p.district + ".>";
        inbox = "_INBOX_" + p.district;
        what = "district " + p.district;
    }
    std::string shown; // the identity in a comment line: no control character ends it
    for (unsigned char c : p.identity)
        shown += c < ' ' || c == 0x7f ? '?' : static_cast<char>(c);
    out << "      # " << shown << ": " << what << "\n"
        << "      {user: \"" << user << "\", password: $" << password_variable(user)
        << ", permissions: {\n"
        << "        publish: {allow: [\"$JS.API.CONSUMER.CREATE." << a.stream << ".*." << filter
        << "\",\n"
        << "                          \"$JS.API.CONSUMER.INFO." << a.stream << ".*\", \"$JS.FC."
        << a.stream << ".>\"]}\n"
        << "        subscribe: {allow: [\"" << inbox << ".>\"]}\n"
        << "      }}\n";
}

std::string nats_config(const nats_args& a, const access_table& t) {
    std::ostringstream out;
    std::size_t readers = 0, left = 0;
    t.each([&](const principal& p) { ++(p.may_query ? readers : left); });
    out << "# NATS users of JetStream stream " << a.stream << " (subjects "
        << stream_subjects(a.subject) << "), made by `pingan access nats` from " << a.access
        << ":\n"
        << "# the brokers, and a reader for each of the " << readers
        << " clients allowed to query, narrowed to its scope;\n"
        << "# clients that may not query (" << left
        << ") have none. nats-server reads each password from the\n"
        << "# environment variable named after `password: $`.\n"
        << "accounts {\n"
        << "  " << a.account << " {\n"
        << "    jetstream: enabled\n"
        << "    users: [\n"
        << "      # The brokers (leader and standbys): the stream, the lease bucket, everything.\n"
        << "      {user: \"" << a.broker_user << "\", password: $"
        << password_variable(a.broker_user) << "}\n";
    // By password variable: two users may not share one (nor, then, a name).
    std::map<std::string, std::string> users{
        {password_variable(a.broker_user), "the brokers' (--broker-user)"}};
    t.each([&](const principal& p) {
        if (!p.may_query) return;
        auto var = password_variable(nats_name(p.identity));
        auto [at, fresh] = users.emplace(var, p.identity);
        if (!fresh)
            throw error(errc::bad_config, "clients " + at->second + " and " + p.identity +
                                              " would both be NATS user " + nats_name(p.identity) +
                                              " (password $" + var + ")");
        reader_user(out, a, p);
    });
    out << "    ]\n  }\n}\n";
    return out.str();
}

// Is `s` usable as one NATS subject token (or a dotted subject, when `dots`)?
bool nats_tokens(std::string_view s, bool dots) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (unsigned char c : s)
        if (c <= ' ' || c == '*' || c == '>' || c == 0x7f || (c == '.' && !dots)) return false;
    return s.find("..") == std::string_view::npos;
}

void add_nats(CLI::App& access) {
    auto a = std::make_shared<nats_args>();
    auto* nats = access.add_subcommand(
        "nats", "Print the nats-server users and permissions that let each client of the access "
                "table read its scope of the replicated stream (docs/replication.md)");
    nats->add_option("--access", a->access, "the broker's access table (clients:)")->required();
    nats->add_option("--registry", a->registry, "schools.csv (default: found beside the program)");
    nats->add_option("--jetstream-stream", a->stream, "the broker's stream")->capture_default_str();
    nats->add_option("--jetstream-subject", a->subject, "the broker's subject")
        ->capture_default_str();
    nats->add_option("--account", a->account, "the NATS account")->capture_default_str();
    nats->add_option("--broker-user", a->broker_user, "the brokers' NATS user")
        ->capture_default_str();
    nats->callback([a] {
        if (!nats_tokens(a->stream, false))
            fatal("--jetstream-stream " + a->stream + ": not a NATS stream name");
        if (!nats_tokens(a->subject, true))
            fatal("--jetstream-subject " + a->subject + ": not a NATS subject without wildcards");
        for (const auto& [flag, name] :
             {std::pair{"--account", &a->account}, std::pair{"--broker-user", &a->broker_user}})
            if (name->empty() || nats_name(*name) != *name)
                fatal(std::string(flag) + " " + *name + ": use letters, digits, '-' and '_' only");
        std::ifstream in(a->access, std::ios::binary);
        if (!in) fatal("--access " + a->access + ": cannot be read");
        std::ostringstream text;
        text << in.rdbuf();
        auto reg = load_school_registry(a->registry);
        try {
            std::cout << nats_config(*a, access_table::from_yaml(text.str(), *reg));
        } catch (const error& e) {
            fatal("--access " + a->access + ": " + e.what());
        }
    });
}

} // namespace

void add_access_command(CLI::App& app) {
    auto* access = app.add_subcommand("access", "The broker's access table (clients' keys)");
    access->require_subcommand(1);
    auto json_out = std::make_shared<bool>(false);
    auto* reload = access->add_subcommand(
        "reload", "Make the broker read its access table again: removed keys are refused from "
                  "their next message on (needs a key of city scope)");
    reload->add_flag("--json", *json_out, "one JSON object");
    add_endpoint_options(*reload, false, false, true);
    reload->callback([json_out] {
        zmq::context_t ctx(1);
        query_client q(ctx, endpoints().query, curve());
        announce_waiting(q.link());
        json r;
        try {
            r = q.request("ACCESS", json{{"action", "reload"}}, answer_timeout());
        } catch (const error& e) {
            fail(e);
        }
        if (*json_out) {
            std::cout << r.dump() << "\n";
            return;
        }
        auto list = [](const json& v) {
            std::string s;
            for (const auto& x : v)
                s += (s.empty() ? "" : ", ") + x.get<std::string>();
            return s.empty() ? std::string("none") : s;
        };
        std::cout << "access table reloaded: " << r.value("clients", 0) << " clients\n"
                  << "revoked  " << list(r["revoked"]) << "\n"
                  << "changed  " << list(r["changed"]) << "\n"
                  << "added    " << list(r["added"]) << "\n";
    });
    add_nats(*access);
}

PINGAN_COMMAND(85, add_access_command);

} // namespace pingan::cli
