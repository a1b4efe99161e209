// The `pingan` command-line tool: one subcommand per file, registered here.
// User-facing text and exit codes live only in this tool:
//   0 success; 1 the broker refused something or a check failed; 2 usage or
//   connection error.
#pragma once

#include "common/client.hpp"
#include "common/curve.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace pingan::cli {

// Endpoints of the broker, shared by every subcommand that talks to it.
// Defaults come from PINGAN_INGEST, PINGAN_FEED and PINGAN_QUERY when set.
struct broker_endpoints {
    std::string ingest, feed, query;
    std::string key_file;   // this client's CURVE key pair ($PINGAN_KEY)
    std::string server_key; // the broker's public key file, or z85:KEY ($PINGAN_SERVER_KEY)
    double timeout_s = 5;   // --timeout: how long to wait for the broker's answer
};
broker_endpoints& endpoints();
// Adds --ingest/--feed/--query (as asked), --key, --server-key and --timeout.
void add_endpoint_options(CLI::App& cmd, bool ingest, bool feed, bool query);

// --timeout as a duration.
std::chrono::milliseconds answer_timeout();

// Says on standard error "waiting for the broker at ... (no answer yet)" when
// the broker has not answered the connection within a second.
void announce_waiting(link_watch& l);

// Turns a client error into the tool's text and exit code: 2 when the broker
// could not be reached or refused the connection, 1 when it refused the request.
[[noreturn]] void fail(const error& e);

// The CURVE settings from --key and --server-key, or null when neither is
// given (an unauthenticated broker). Exits with a message if they are wrong.
const curve_client* curve();

[[noreturn]] void fatal(const std::string& what, int code = 2);

// The exit code a subcommand chose (0 unless set).
int& exit_code();

void add_publish_command(CLI::App& app);
void add_tail_command(CLI::App& app);
void add_replay_command(CLI::App& app);
void add_stats_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_schema_command(CLI::App& app);
void add_clock_command(CLI::App& app);
void add_keygen_command(CLI::App& app);
void add_rules_command(CLI::App& app);
void add_incidents_command(CLI::App& app);

// Each cmd_*.cpp registers its subcommand with PINGAN_COMMAND(order, function);
// main() adds them in `order`, so a new command needs no edit elsewhere.
using command_adder = void (*)(CLI::App&);
struct command_registrar {
    command_registrar(int order, command_adder add);
};
#define PINGAN_COMMAND(order, fn)                                                                  \
    static const ::pingan::cli::command_registrar pingan_command_##fn {                            \
        order, fn                                                                                  \
    }

} // namespace pingan::cli
