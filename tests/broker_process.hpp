// A real pingan-broker process on 127.0.0.1 with ephemeral ports.
#pragma once

#include "process.hpp"

#include <memory>
#include <regex>
#include <vector>

namespace pingan::test {

// Where a broker binds: any free port unless told.
struct broker_endpoints {
    std::string ingest = "tcp://127.0.0.1:*", feed = "tcp://127.0.0.1:*",
                query = "tcp://127.0.0.1:*";
};

// The argv of a broker on `data_dir` with the repository's registry, then
// `extra`: for a broker started by hand (a start expected to fail, where
// broker_process would throw).
inline std::vector<std::string> broker_argv(const std::string& data_dir,
                                            const std::vector<std::string>& extra = {},
                                            const broker_endpoints& at = {}) {
    std::vector<std::string> argv{std::string(PINGAN_BIN_DIR) + "/pingan-broker",
                                  "--data",
                                  data_dir,
                                  "--ingest",
                                  at.ingest,
                                  "--feed",
                                  at.feed,
                                  "--query",
                                  at.query,
                                  "--registry",
                                  std::string(PINGAN_SOURCE_DIR) + "/data/schools.csv",
                                  "--districts",
                                  std::string(PINGAN_SOURCE_DIR) + "/data/districts.csv"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

struct broker_process {
    std::unique_ptr<process> proc;
    std::string ingest, feed, query;
    std::string metrics; // HOST:PORT of GET /metrics, when started with --metrics

    // Starts a broker on `data_dir`; extra flags are appended. Its log goes to
    // `stderr_file` if one is given, at `log_level`.
    explicit broker_process(const std::string& data_dir, std::vector<std::string> extra = {},
                            const std::string& stderr_file = {},
                            const std::string& log_level = "warn",
                            const broker_endpoints& at = {}) {
        auto argv = broker_argv(data_dir, {"--log-level", log_level}, at);
        argv.insert(argv.end(), extra.begin(), extra.end());
        proc = std::make_unique<process>(argv, std::string(), stderr_file);
        auto l = proc->line(std::chrono::seconds(20));
        if (!l) throw std::runtime_error("pingan-broker did not start");
        // A standby (--standby) says so, and listens only once it leads: wait_listening().
        if (l->starts_with("standby ")) {
            standby = true;
            return;
        }
        take_listening(*l);
    }

    bool standby = false;

    // A standby: waits until it leads and listens.
    // Throws: std::runtime_error when it does not within `timeout`.
    void wait_listening(std::chrono::milliseconds timeout) {
        auto l = proc->line(timeout);
        if (!l) throw std::runtime_error("the standby did not take over");
        take_listening(*l);
        standby = false;
    }

    void take_listening(const std::string& l) {
        std::smatch m;
        static const std::regex re("listening ingest=(\\S+) feed=(\\S+) query=(\\S+)");
        if (!std::regex_search(l, m, re)) throw std::runtime_error("unexpected line: " + l);
        ingest = m[1];
        feed = m[2];
        query = m[3];
        static const std::regex mre(" metrics=(\\S+)");
        if (std::regex_search(l, m, mre)) metrics = m[1];
    }

    // Environment for a `pingan` child talking to this broker.
    void export_env() const {
        ::setenv("PINGAN_INGEST", ingest.c_str(), 1);
        ::setenv("PINGAN_FEED", feed.c_str(), 1);
        ::setenv("PINGAN_QUERY", query.c_str(), 1);
    }
};

} // namespace pingan::test
