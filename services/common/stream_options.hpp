// The --jetstream options of a program that can read the broker's replicated
// log from NATS JetStream instead of its live feed (pingan-notify,
// pingan-console; docs/replication.md).
#pragma once

#include "common/stream_reader.hpp"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace pingan::svc {

// Adds --jetstream (NATS server URLs, into `servers`; server_list() splits
// them), --jetstream-stream, --jetstream-subject, --jetstream-creds and
// --jetstream-inbox (into `js`). `what` is what the program reads, `instead`
// what the stream replaces, and `doc` where it is described.
inline void add_jetstream_options(CLI::App& app, std::vector<std::string>& servers,
                                  jetstream_source& js, const std::string& what,
                                  const std::string& instead, const std::string& doc) {
    app.add_option("--jetstream", servers,
                   "read " + what +
                       " from the broker's JetStream stream at this NATS server "
                       "instead of " +
                       instead + " (repeat, or comma-separated, for a cluster; " + doc + ")");
    app.add_option("--jetstream-stream", js.stream, "with --jetstream: the broker's stream")
        ->capture_default_str();
    app.add_option("--jetstream-subject", js.subject, "with --jetstream: the broker's subject")
        ->capture_default_str();
    app.add_option("--jetstream-creds", js.creds, "with --jetstream: a NATS credentials file");
    app.add_option("--jetstream-inbox", js.inbox,
                   "with --jetstream: the inbox prefix its NATS user may subscribe to");
}

} // namespace pingan::svc
