// pingan: publish, tail, replay and audit the event log of a Pingan broker.
#include "common/errc.hpp"
#include "common/version.hpp"
#include "tools/pingan/commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <vector>

namespace pingan::cli {
namespace {

std::vector<std::pair<int, command_adder>>& command_table() {
    static std::vector<std::pair<int, command_adder>> table;
    return table;
}

} // namespace

command_registrar::command_registrar(int order, command_adder add) {
    command_table().emplace_back(order, add);
}

broker_endpoints& endpoints() {
    static broker_endpoints e = [] {
        auto env = [](const char* name, const char* fallback) {
            const char* v = std::getenv(name);
            return std::string(v && *v ? v : fallback);
        };
        return broker_endpoints{env("PINGAN_INGEST", "tcp://127.0.0.1:7401"),
                                env("PINGAN_FEED", "tcp://127.0.0.1:7402"),
                                env("PINGAN_QUERY", "tcp://127.0.0.1:7403"), env("PINGAN_KEY", ""),
                                env("PINGAN_SERVER_KEY", "")};
    }();
    return e;
}

void add_endpoint_options(CLI::App& cmd, bool ingest, bool feed, bool query) {
    auto& e = endpoints();
    if (ingest)
        cmd.add_option("--ingest", e.ingest, "broker ingest endpoint ($PINGAN_INGEST)")
            ->capture_default_str();
    if (feed)
        cmd.add_option("--feed", e.feed, "broker live feed endpoint ($PINGAN_FEED)")
            ->capture_default_str();
    if (query)
        cmd.add_option("--query", e.query, "broker query endpoint ($PINGAN_QUERY)")
            ->capture_default_str();
    cmd.add_option("--key", e.key_file, "this client's CURVE key pair file ($PINGAN_KEY)");
    cmd.add_option("--server-key", e.server_key,
                   "the broker's public key file, or z85:KEY ($PINGAN_SERVER_KEY)");
    cmd.add_option("--timeout", e.timeout_s,
                   "seconds to wait for the broker's answer before giving up")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
}

std::chrono::milliseconds answer_timeout() {
    return std::chrono::milliseconds(static_cast<std::int64_t>(endpoints().timeout_s * 1000));
}

void announce_waiting(link_watch& l) {
    l.notice_after(std::chrono::seconds(1),
                   [](const std::string& line) { std::cerr << "pingan: " << line << std::endl; });
}

void fail(const error& e) {
    if (e.code() == errc::unauthorized && e.detail().starts_with("the broker at ") &&
        e.detail().ends_with("requires a CURVE key"))
        fatal(e.detail() + ": use --key and --server-key (or $PINGAN_KEY and $PINGAN_SERVER_KEY)",
              2);
    // The connection itself was refused (link_watch): a usage problem, like a wrong endpoint.
    if (e.code() == errc::unauthorized &&
        (e.detail().starts_with("the broker at ") || e.detail().starts_with("the CURVE handshake")))
        fatal(e.detail(), 2);
    if (e.code() == errc::io_error) fatal(e.detail(), 2);
    fatal(e.what(), 1);
}

const curve_client* curve() {
    static std::optional<curve_client> c;
    static bool done = false;
    if (done) return c ? &*c : nullptr;
    done = true;
    auto& e = endpoints();
    if (e.key_file.empty() && e.server_key.empty()) return nullptr;
    if (e.key_file.empty() || e.server_key.empty())
        fatal("--key and --server-key go together (or $PINGAN_KEY and $PINGAN_SERVER_KEY)");
    try {
        curve_client cc;
        cc.self = read_secret_key_file(e.key_file);
        cc.server_public = read_server_key(e.server_key);
        c = std::move(cc);
    } catch (const error& x) {
        fatal(x.detail());
    }
    return &*c;
}

int& exit_code() {
    static int code = 0;
    return code;
}

void fatal(const std::string& what, int code) {
    std::cerr << "pingan: " << what << "\n";
    std::exit(code);
}

} // namespace pingan::cli

int main(int argc, char** argv) {
    using namespace pingan::cli;
    CLI::App app{"pingan: publish, follow, replay and audit the Pingan event log"};
    app.set_version_flag("--version", pingan::version_line("pingan"));
    app.require_subcommand(1);
    auto table = command_table();
    std::sort(table.begin(), table.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [order, add] : table)
        add(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    } catch (const std::exception& e) {
        fatal(e.what());
    }
    return exit_code();
}
