// The service runtime: what every Pingan service and the simulator share.
//
// One boost::asio io_context runs everything on one thread; SIGINT and SIGTERM
// run the registered stop steps (close listeners, stop the publisher) so that
// the process exits cleanly with its outbox intact. Settings come from flags
// (CLI11) and an optional YAML file (`--config`) whose keys are the long flag
// names without dashes; a flag given on the command line wins over the file.
// Logs go to stderr through spdlog.
#pragma once

#include "errc.hpp"
#include "registry.hpp"
#include "time.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pingan {

namespace net = boost::asio;

// Settings every service has. Service-specific ones are added by each main.
struct service_config {
    std::string name;                            // "pingan-hazard"
    std::string data_dir;                        // outbox lives in <data_dir>/outbox
    std::string broker = "tcp://127.0.0.1:7401"; // the broker's ingest endpoint
    std::string http = "127.0.0.1:0";            // HTTP listen address (loopback by default)
    std::string registry;                        // schools.csv; districts.csv beside it
    std::string log_level = "info";
    std::string clock = "system";     // see clock.hpp make_clock
    std::string device = "default";   // source suffix: "<name>/<device>"
    std::size_t max_body = 64 * 1024; // bytes per HTTP request body
    std::chrono::milliseconds resend_timeout{5000};
    std::size_t max_in_flight = 1024;   // events sent and not yet answered
    std::size_t max_connections = 1000; // per listening port; more are closed at once
    std::string key;                    // CURVE key pair file of this service
    std::string server_key;             // the broker's public key file, or "z85:<key>"
    std::string outbox_key;             // seals the outbox at rest (outbox.hpp); made if missing
};

// Registers the common flags (and --config for a YAML file) on `app`.
void add_service_options(CLI::App& app, service_config& c);

// Registers `--log-format text|json` (log_format.hpp); make_logger then uses it.
void add_log_format_option(CLI::App& app);

// CLI11 reads `--config FILE` through this: a YAML map of flag names to
// scalars or lists; nested maps name subcommands.
//
// Paths in the file (the values of path_keys()) are relative to the file's
// folder, so a program finds its files from any working directory; paths given
// as flags stay relative to the working directory. `app` is the program's App,
// asked for the --config file's name when the file is read.
class yaml_config final : public CLI::Config {
  public:
    explicit yaml_config(const CLI::App* app = nullptr) : app_(app) {}
    std::string to_config(const CLI::App*, bool, bool, std::string) const override;
    std::vector<CLI::ConfigItem> from_config(std::istream& in) const override;

    // The long flag names whose values are files or folders.
    static const std::vector<std::string>& path_keys();

  private:
    void resolve_paths(std::vector<CLI::ConfigItem>& items) const;
    const CLI::App* app_;
};

// Returns: the whole file.
// Throws: pingan::error(io_error) naming the file.
std::string read_text_file(const std::string& path);

// Reads a secret kept in a file of its own (a key, in hex), with trailing
// whitespace removed. When the file does not exist and `make`, writes 32
// random bytes in hex there first (mode 0600, its folder made if missing).
// `what` names the secret in errors ("the outbox key").
// Throws: pingan::error(bad_config) naming the file if it is missing (and not
// to be made) or if group or others may read it; (io_error) if unreadable.
std::string read_secret_file(const std::string& path, bool make, std::string_view what);

// Loads schools.csv and, if present, districts.csv from the same folder.
// Throws: pingan::error(io_error or bad_config).
registry load_registry(const std::string& schools_csv);

// Finds data/schools.csv in the working directory, else beside the program
// (common/shipped.hpp). Returns: empty if not found.
std::string default_registry_path();

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level);

// The io_context, the signal handling and the stop steps of one process.
class service_runtime {
  public:
    explicit service_runtime(std::shared_ptr<spdlog::logger> log);

    net::io_context& io() noexcept { return ioc_; }
    spdlog::logger& log() noexcept { return *log_; }
    std::shared_ptr<spdlog::logger> logger() const noexcept { return log_; }

    // Steps run, in order, when a signal arrives or stop() is called.
    void on_stop(std::function<void()> step);

    // Runs until stopped. Returns: the process exit code (0 after a signal).
    int run();
    void stop();

  private:
    net::io_context ioc_{1};
    net::signal_set signals_;
    std::shared_ptr<spdlog::logger> log_;
    std::vector<std::function<void()>> stop_steps_;
    bool stopping_ = false;
};

} // namespace pingan
