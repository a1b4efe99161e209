// The broker's configuration file (YAML) as a struct. Text in, struct out:
// the caller reads the file. See config/broker.yaml for every key.
#pragma once

#include "broker/server/broker.hpp"

#include <string>
#include <string_view>

namespace pingan {

struct broker_config {
    broker_options broker;
    std::string registry = "data/schools.csv";
    std::string districts = "data/districts.csv";
    std::string clock = "system";
    std::string rules; // rule file; empty: no escalation
    std::string log_level = "info";
    std::string log_format = "text";         // or json (common/log_format.hpp)
    micros slow_commit = micros{250'000};    // commits slower than this are logged
    micros log_summary = micros{60'000'000}; // the summary line's interval
    std::string server_key; // key pair file of the broker; with `clients`, turns CURVE on
    std::string clients;    // access table (broker/admission/access.hpp)
    std::string metrics;    // HOST:PORT for GET /metrics (Prometheus); empty: off
    std::string keys;       // key directory for minors' data at rest; empty: stored in clear
    // Signed checkpoints (checkpoint: {interval_s, dir, key}); no key: none.
    std::string checkpoint_key, checkpoint_dir;
    std::uint64_t checkpoint_interval_s = 300;
    // Replication (docs/replication.md): "none", or "jetstream" with its settings.
    std::string replication = "none";
    jetstream_config jetstream;
};

// Parses YAML text over the defaults in `base`. Relative paths written in the
// text (data_dir, registry, districts, rules, security.server_key and
// security.clients) are resolved against `file_dir`, the folder of the file
// the text came from, so that a configuration works from any working
// directory; with `file_dir` empty they are left as written.
// Throws: pingan::error(bad_config) naming the key and line that is wrong.
broker_config parse_broker_config(std::string_view yaml, broker_config base = {},
                                  std::string_view file_dir = {});

} // namespace pingan
