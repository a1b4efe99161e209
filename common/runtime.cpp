// Flags, YAML configuration, logging and signal handling for services.
#include "runtime.hpp"

#include "curve.hpp"
#include "fd_limit.hpp"
#include "hex.hpp"
#include "log_format.hpp"
#include "private_file.hpp"
#include "readiness.hpp"
#include "shipped.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pingan {
namespace {

void flatten(const YAML::Node& node, std::vector<std::string> parents,
             std::vector<CLI::ConfigItem>& out) {
    for (const auto& kv : node) {
        auto name = kv.first.as<std::string>();
        const auto& v = kv.second;
        if (v.IsMap()) {
            auto p = parents;
            p.push_back(name);
            flatten(v, std::move(p), out);
            continue;
        }
        CLI::ConfigItem item;
        item.parents = parents;
        item.name = name;
        if (v.IsSequence()) {
            for (const auto& x : v)
                item.inputs.push_back(x.as<std::string>());
        } else if (v.IsScalar()) {
            item.inputs.push_back(v.as<std::string>());
        }
        out.push_back(std::move(item));
    }
}

} // namespace

std::string yaml_config::to_config(const CLI::App*, bool, bool, std::string) const {
    return {};
}

const std::vector<std::string>& yaml_config::path_keys() {
    // Every option of any program that names a file or folder.
    static const std::vector<std::string> keys{
        "data",      "registry",    "key",      "server-key",       "users", "sessions",   "rules",
        "directory", "credentials", "tls-cert", "tls-key",          "pages", "outbox-key", "keys",
        "make-keys", "link-key",    "photo-ca", "photo-token-file", "file"};
    return keys;
}

void yaml_config::resolve_paths(std::vector<CLI::ConfigItem>& items) const {
    if (app_ == nullptr) return;
    const auto* opt = app_->get_config_ptr();
    if (opt == nullptr || opt->results().empty()) return;
    auto dir = std::filesystem::path(opt->results().front()).parent_path();
    if (dir.empty()) return;
    const auto& keys = path_keys();
    for (auto& item : items) {
        if (!item.parents.empty() || std::find(keys.begin(), keys.end(), item.name) == keys.end())
            continue;
        for (auto& v : item.inputs) {
            // A key given inline (z85:...) and absolute paths are kept as written.
            if (v.empty() || v.starts_with("z85:") || std::filesystem::path(v).is_absolute())
                continue;
            v = (dir / v).lexically_normal().string();
        }
    }
}

std::vector<CLI::ConfigItem> yaml_config::from_config(std::istream& in) const {
    std::stringstream s;
    s << in.rdbuf();
    std::vector<CLI::ConfigItem> items;
    try {
        auto root = YAML::Load(s.str());
        if (root.IsNull()) return items;
        if (!root.IsMap()) throw CLI::ConversionError("configuration must be a YAML map");
        flatten(root, {}, items);
        resolve_paths(items);
    } catch (const YAML::Exception& x) {
        throw CLI::ConversionError(std::string("configuration: ") + x.what());
    }
    return items;
}

void add_service_options(CLI::App& app, service_config& c) {
    app.config_formatter(std::make_shared<yaml_config>(&app));
    // A misspelt key in the file must not be silently ignored.
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.set_config("--config", "", "YAML file of settings (keys are the long flag names)");
    app.add_option("--data", c.data_dir, "folder for the durable outbox")->capture_default_str();
    app.add_option("--broker", c.broker, "the broker's ingest endpoint")->capture_default_str();
    app.add_option("--http", c.http, "HTTP listen address host:port (port 0 picks one)")
        ->capture_default_str();
    app.add_option("--registry", c.registry, "schools.csv of the registry");
    app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
        ->capture_default_str();
    add_log_format_option(app);
    app.add_option("--clock", c.clock, "system, manual:TIME or scaled:FACTOR:TIME")
        ->capture_default_str();
    app.add_option("--device", c.device, "device name in each event's source")
        ->capture_default_str();
    app.add_option("--max-body", c.max_body, "largest HTTP request body in bytes")
        ->capture_default_str();
    app.add_option_function<std::string>(
        "--resend-timeout",
        [&c](const std::string& s) {
            auto d = parse_duration(s);
            if (!d || d->count() <= 0)
                throw CLI::ValidationError("--resend-timeout", "not a duration");
            c.resend_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
        },
        "resend what the broker has not answered after this long (e.g. 5s)");
    app.add_option("--max-in-flight", c.max_in_flight, "events sent and not yet acknowledged")
        ->capture_default_str();
    app.add_option("--max-connections", c.max_connections,
                   "open connections per listening port at most; more are closed at once")
        ->capture_default_str();
    app.add_option("--key", c.key, "this service's CURVE key pair file (pingan keygen; mode 0600)");
    app.add_option("--server-key", c.server_key,
                   "the broker's public key file, or z85:KEY for the key itself");
    app.add_option("--outbox-key", c.outbox_key,
                   "key file sealing the outbox at rest (made, mode 0600, if missing; keep it "
                   "outside --data)");
}

void add_log_format_option(CLI::App& app) {
    app.add_option_function<std::string>(
           "--log-format",
           [](const std::string& s) {
               try {
                   set_default_log_format(parse_log_format(s));
               } catch (const error& e) {
                   throw CLI::ValidationError("--log-format", e.detail());
               }
           },
           "text, or json: one JSON object a line (time, level, logger, msg, fields)")
        ->default_str("text");
}

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(errc::io_error, path + ": cannot open");
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) throw error(errc::io_error, path + ": read failed");
    return s.str();
}

std::string read_secret_file(const std::string& path, bool make, std::string_view what) {
    namespace fs = std::filesystem;
    if (make && !fs::exists(path)) {
        auto dir = fs::path(path).parent_path();
        if (std::error_code ec; !dir.empty() && !fs::exists(dir)) {
            fs::create_directories(dir, ec);
            fs::permissions(dir, fs::perms::owner_all, ec);
        }
        write_private_file(path, random_hex(32) + "\n");
    }
    if (!fs::exists(path))
        throw error(errc::bad_config, path + ": no such file (" + std::string(what) + ")");
    if (auto why = loose_permissions(path, 0077u); !why.empty())
        throw error(errc::bad_config, path + ": " + why + "; " + std::string(what) +
                                          " must be readable by its owner only (chmod 600 " + path +
                                          ")");
    auto text = read_text_file(path);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    return text;
}

registry load_registry(const std::string& schools_csv) {
    auto schools = read_text_file(schools_csv);
    auto districts_path = std::filesystem::path(schools_csv).parent_path() / "districts.csv";
    std::string districts;
    if (std::filesystem::exists(districts_path)) districts = read_text_file(districts_path);
    return registry::from_csv(schools, districts);
}

std::string default_registry_path() {
    std::error_code ec;
    if (std::filesystem::exists("data/schools.csv", ec)) return "data/schools.csv";
    return find_shipped("data/schools.csv");
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level) {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto log = std::make_shared<spdlog::logger>(name, sink);
    log->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %n: %v", spdlog::pattern_time_type::utc);
    auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off")
        throw error(errc::bad_config, "log level \"" + level + "\" is not known");
    log->set_level(lvl);
    log->flush_on(spdlog::level::info);
    apply_log_format(*log, default_log_format());
    return log;
}

service_runtime::service_runtime(std::shared_ptr<spdlog::logger> log)
    : signals_(ioc_, SIGINT, SIGTERM), log_(std::move(log)) {
    // Every connection is a descriptor: take all the operator allows.
    auto fds = raise_fd_limit();
    if (fds.soft != fds.before)
        log_->info("open files: soft limit raised from {} to {}", fds.before, fds.soft);
    // Capture SIGINT and SIGTERM to perform a clean shutdown.
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        log_->info("signal {}: stopping", sig);
        notify_stopping();
        stop();
    });
}

void service_runtime::on_stop(std::function<void()> step) {
    stop_steps_.push_back(std::move(step));
}

int service_runtime::run() {
    ioc_.run();
    return 0;
}

void service_runtime::stop() {
    if (stopping_) return;
    stopping_ = true;
    signals_.cancel();
    for (auto& step : stop_steps_) {
        try {
            step();
        } catch (const std::exception& x) {
            log_->error("while stopping: {}", x.what());
        }
    }
    // Whatever is still queued (a half-written HTTP response) is not worth
    // waiting for: every accepted event is already in the outbox.
    ioc_.stop();
}

} // namespace pingan
