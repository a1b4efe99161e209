// pingan rules: check a rule file, and replay the stored log through a rule
// set in a sandbox (what would it have raised? what changes against the log?).
//
// The sandbox runs the engine in this process on events read from the broker's
// query socket (or a stopped broker's data directory); it stores nothing and
// reaches no receiver. Exit codes: 0 ok, 1 the rule file has errors, 2 usage,
// file or connection errors.
#include "broker/engine/rules_replay.hpp"
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"

#include <algorithm>
#include <iostream>

namespace pingan::cli {
namespace {

struct check_args {
    std::vector<std::string> files;
    bool quiet = false;
};

void run_check(const check_args& a) {
    for (const auto& f : a.files) {
        auto text = read_text_file(f);
        auto r = rules::parse(text);
        if (r.errors.empty()) {
            if (!a.quiet)
                std::cout << f << ": ok: " << r.rules->name << " " << r.rules->version << ", "
                          << r.rules->rules.size() << " rules, hash " << r.rules->hash << "\n";
            continue;
        }
        for (const auto& d : r.errors)
            std::cout << f << ":" << d.line << ":" << d.column << ": " << d.message << "\n";
        std::cout << f << ": " << r.errors.size() << " error" << (r.errors.size() == 1 ? "" : "s")
                  << "\n";
        exit_code() = 1;
    }
}

struct replay_args {
    std::string rules_file;
    std::string data_dir;
    std::string registry_file;
    std::uint64_t from = 1, to = 0;
    std::string since, until;
    std::string school, district;
    bool diff = false;
    bool json = false;
    bool logged_timers = false;
};

// Feeds every stored event of the range to `visit`, in offset order.
void read_log(const replay_args& a, const std::function<void(const event&)>& visit) {
    auto since = a.since.empty() ? std::nullopt : parse_utc(a.since);
    auto until = a.until.empty() ? std::nullopt : parse_utc(a.until);
    if (!a.since.empty() && !since) fatal("--since: not an RFC 3339 time: " + a.since);
    if (!a.until.empty() && !until) fatal("--until: not an RFC 3339 time: " + a.until);
    auto decoded = [&](std::string_view bytes) {
        event e;
        if (auto p = decode(bytes, e)) fatal("a stored event does not decode: " + p.text(), 1);
        visit(e);
    };
    if (!a.data_dir.empty()) {
        store_options o;
        o.path = a.data_dir;
        o.read_only = true;
        store s(o);
        scan_filter f;
        f.from = a.from;
        f.to = a.to;
        f.from_time = since;
        f.to_time = until;
        f.school = a.school;
        f.district = a.district;
        auto head = a.to ? std::min(a.to, s.head()) : s.head();
        while (f.from <= head) {
            auto next = s.scan(f, 10'000, [&](std::uint64_t, std::string_view bytes) {
                decoded(bytes);
                return true;
            });
            if (next <= f.from) break;
            f.from = next;
        }
        return;
    }
    zmq::context_t ctx(1);
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    replay_request r;
    r.from = a.from;
    r.to = a.to;
    r.from_time = a.since;
    r.to_time = a.until;
    r.school = a.school;
    r.district = a.district;
    r.credit = 5000;
    try {
        q.replay(r, [&](std::uint64_t, std::string_view payload) {
            decoded(payload);
            return true;
        });
    } catch (const error& e) {
        fatal(e.what(), e.code() == errc::io_error ? 2 : 1);
    }
}

std::string roles_text(const std::vector<std::string>& roles) {
    std::string s;
    for (const auto& r : roles)
        s += (s.empty() ? "" : ",") + r;
    return s;
}

void print_derived(const event& e, bool as_json) {
    if (as_json) {
        std::cout << to_json_line(e) << "\n";
        return;
    }
    std::cout << format_local(e.received_at) << "  ";
    if (e.status == status::exercise) std::cout << "[EXERCISE] ";
    if (e.status == status::test) std::cout << "[TEST] ";
    std::cout << e.type() << "  " << (e.school.empty() ? "-" : e.school);
    std::visit(
        [](const auto& b) {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, notification_requested>)
                std::cout << "  " << b.rule_id << "  " << enum_name(b.tier) << " ["
                          << roles_text(b.roles) << "]  " << b.text;
            else if constexpr (std::is_same_v<T, incident_opened>)
                std::cout << "  " << b.rule_id << "  " << b.incident_id << "  " << b.title;
            else if constexpr (std::is_same_v<T, incident_overdue>)
                std::cout << "  " << b.rule_id << "  " << b.incident_id << "  waited for "
                          << b.waited_for;
            else if constexpr (std::is_same_v<T, escalation_raised>)
                std::cout << "  " << b.rule_id << "  " << enum_name(b.tier) << " ["
                          << roles_text(b.roles) << "]";
            else if constexpr (requires { b.incident_id; })
                std::cout << "  " << b.incident_id;
        },
        e.body);
    std::cout << "\n";
}

void print_diff(const page_diff& d, const registry* reg) {
    auto line = [&](const event& e) {
        const auto& n = std::get<notification_requested>(e.body);
        std::cout << "  " << format_local(e.received_at) << "  "
                  << (e.school.empty() ? "-" : e.school) << "  " << n.rule_id << "  "
                  << enum_name(n.tier) << " [" << roles_text(n.roles) << "]"
                  << (n.repeat ? "  reminder " + std::to_string(n.repeat) : "")
                  << (n.late ? "  late" : "") << "\n";
    };
    std::cout << "pages added by these rules: " << d.added.size() << "\n";
    for (const auto& e : d.added)
        line(e);
    std::cout << "pages in the log these rules would not make: " << d.removed.size() << "\n";
    for (const auto& e : d.removed)
        line(e);
    std::cout << "pages at another time or lateness (log -> these rules): " << d.changed.size()
              << "\n";
    for (const auto& [logged, replayed] : d.changed) {
        const auto& a = std::get<notification_requested>(logged.body);
        const auto& b = std::get<notification_requested>(replayed.body);
        std::cout << "  " << format_local(logged.received_at) << (a.late ? " late" : "") << " -> "
                  << format_local(replayed.received_at) << (b.late ? " late" : "") << "  "
                  << (logged.school.empty() ? "-" : logged.school) << "  " << a.rule_id << "  "
                  << enum_name(a.tier) << " [" << roles_text(a.roles) << "]"
                  << (a.repeat ? "  reminder " + std::to_string(a.repeat) : "") << "\n";
    }
    std::cout << "first page per school (log -> these rules):\n";
    for (const auto& [school, f] : d.first_by_school) {
        if (f.logged == f.replayed) continue;
        std::cout << "  " << (school.empty() ? "-" : school);
        if (reg && !school.empty())
            if (auto* s = reg->find(school)) std::cout << " " << s->name;
        std::cout << "  " << (f.logged ? format_local(*f.logged) : "none") << " -> "
                  << (f.replayed ? format_local(*f.replayed) : "none");
        if (f.logged && f.replayed)
            std::cout << "  ("
                      << (*f.replayed < *f.logged ? "-" + format_duration(*f.logged - *f.replayed)
                                                  : "+" + format_duration(*f.replayed - *f.logged))
                      << ")";
        std::cout << "\n";
    }
}

void run_replay(const replay_args& a) {
    auto text = read_text_file(a.rules_file);
    auto parsed = rules::parse(text);
    if (!parsed.errors.empty()) {
        for (const auto& d : parsed.errors)
            std::cerr << a.rules_file << ":" << d.line << ":" << d.column << ": " << d.message
                      << "\n";
        fatal(a.rules_file + " has errors; run pingan rules check", 1);
    }
    auto reg = load_school_registry(a.registry_file);
    sandbox box(parsed.rules, reg, a.logged_timers);
    timestamp last{};
    read_log(a, [&](const event& e) {
        box.feed(e);
        last = std::max(last, e.received_at);
    });
    auto end = a.until.empty() ? last : *parse_utc(a.until);
    box.finish(end);
    if (!a.diff)
        for (const auto& e : box.derived())
            print_derived(e, a.json);
    std::size_t pages = 0, exercise = 0;
    for (const auto& e : box.derived())
        if (const auto* n = std::get_if<notification_requested>(&e.body)) {
            ++pages;
            exercise += n->exercise;
        }
    std::cerr << "replayed " << box.inputs() << " events with " << parsed.rules->name << " ("
              << parsed.rules->hash << "): " << box.state().incidents.size() << " incidents, "
              << pages << " pages (" << exercise << " exercise); nothing was sent\n";
    if (a.diff) print_diff(diff_pages(box.logged(), box.derived()), reg.get());
}

} // namespace

void add_rules_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("rules", "Check rule files; replay the log through rules");
    cmd->require_subcommand(1);

    auto c = std::make_shared<check_args>();
    auto* check = cmd->add_subcommand(
        "check", "Check rule files: each error with its line and what was expected there");
    check->add_option("files", c->files, "rule files (YAML)")->required();
    check->add_flag("-q,--quiet", c->quiet, "print nothing for a good file");
    check->callback([c] { run_check(*c); });

    auto r = std::make_shared<replay_args>();
    auto* replay = cmd->add_subcommand(
        "replay", "Run the stored log through a rule set in a sandbox and print what it would "
                  "have raised; nothing is stored or sent");
    replay->add_option("--rules", r->rules_file, "rule file (YAML)")->required();
    replay->add_option("--from", r->from, "first offset")->capture_default_str();
    replay->add_option("--to", r->to, "last offset (default: the head)");
    replay->add_option("--since", r->since, "received at or after this time (RFC 3339)");
    replay->add_option("--until", r->until,
                       "received at or before this time (RFC 3339); timers fire up to it");
    replay->add_option("--school", r->school, "only this school's events");
    replay->add_option("--district", r->district, "only this district's events");
    replay->add_flag("--diff", r->diff,
                     "compare every page with the pages the log records: added, not made, at "
                     "another time or lateness, and the first page per school");
    replay->add_flag("--json", r->json, "derived events as JSON Lines");
    replay->add_flag("--logged-timers", r->logged_timers,
                     "use the log's timer events instead of firing timers at their due time "
                     "(with the log's own rules this reproduces it byte for byte)");
    replay->add_option("--data", r->data_dir,
                       "read a stopped broker's data directory instead of its query socket");
    replay->add_option("--registry", r->registry_file, "schools.csv (default: the bundled one)");
    add_endpoint_options(*replay, false, false, true);
    replay->callback([r] { run_replay(*r); });
}

PINGAN_COMMAND(60, add_rules_command);

} // namespace pingan::cli
