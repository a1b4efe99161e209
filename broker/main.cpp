// pingan-broker: reads arguments, loads the configuration and registry, builds
// the broker, and runs it until SIGINT or SIGTERM. SIGHUP reloads the rule
// file and the access table.
#include "broker/engine/engine_processor.hpp"
#include "broker/engine/rules.hpp"
#include "broker/replication/replicator.hpp"
#include "broker/server/broker.hpp"
#include "broker/server/config.hpp"
#include "broker/server/day_log.hpp"
#include "broker/server/metrics.hpp"
#include "common/allocator.hpp"
#include "common/clock.hpp"
#include "common/curve.hpp"
#include "common/fd_limit.hpp"
#include "common/key_ring.hpp"
#include "common/log_format.hpp"
#include "common/readiness.hpp"
#include "common/registry.hpp"
#include "common/version.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

namespace net = boost::asio;
using namespace pingan;

namespace {

// SIGINT or SIGTERM while a standby follows the stream (the broker's own
// handlers take over once it leads).
std::atomic<bool> standby_stop{false};
void on_standby_signal(int) {
    standby_stop = true;
}

[[noreturn]] void fatal(const std::string& what) {
    std::cerr << "pingan-broker: " << what << "\n";
    std::exit(2);
}

// True if `inner` is `outer` or inside it (or the other way round).
bool nested(const std::string& inner, const std::string& outer) {
    namespace fs = std::filesystem;
    auto a = fs::weakly_canonical(fs::absolute(inner)).lexically_normal().string() + "/";
    auto b = fs::weakly_canonical(fs::absolute(outer)).lexically_normal().string() + "/";
    return a.starts_with(b) || b.starts_with(a);
}

// A secret others may read (mask 0077), or a file others may change (0002),
// is no security at all: the start is refused unless --allow-insecure-permissions
// was given, and then it is said loudly. `must` says what the file must be,
// `fix` the command that fixes it, `exposed` what is at stake.
void refuse_loose(const std::string& path, unsigned mask, bool allow, std::string_view must,
                  std::string_view fix, std::string_view exposed) {
    auto why = loose_permissions(path, mask);
    if (why.empty()) return;
    if (!allow)
        fatal(path + ": " + why + "; " + std::string(must) + " (" + std::string(fix) + " " + path +
              ") (or start with --allow-insecure-permissions)");
    spdlog::critical("INSECURE: {}: {}; {}", path, why, exposed);
}

// The keys sealing minors' data at rest: never inside the store's folder,
// which backups copy whole. Without them the broker runs (development) and
// says that classified values are stored in clear.
std::string read_file(const std::string& path, const char* what);

std::shared_ptr<key_ring> open_keys(const std::string& dir, const std::string& data_dir) {
    if (dir.empty()) {
        spdlog::warn("no --keys: minors' data (student references, indicator codes) is stored "
                     "in clear in {} and its backups; development only",
                     data_dir);
        return nullptr;
    }
    if (nested(dir, data_dir))
        fatal("--keys " + dir + " must be outside the store directory " + data_dir +
              ": a copy of the store would carry its keys");
    try {
        auto ring = std::make_shared<key_ring>(dir);
        spdlog::info("minors' data sealed at rest with the keys in {}", dir);
        return ring;
    } catch (const error& e) {
        fatal("--keys " + dir + ": " + e.detail());
    }
}

std::string read_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fatal(std::string("cannot read ") + what + " " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Says which allocator serves the broker (PINGAN_MIMALLOC, docs/performance.md),
// and whether malloc really is mimalloc's.
void log_allocator() {
#ifdef PINGAN_MIMALLOC
    auto a = current_allocator();
    if (a.linked_unused)
        spdlog::warn("memory allocator: {} is linked, but malloc is another's", a.name);
    else
        spdlog::info("memory allocator: {}", a.name);
#endif
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pingan-broker: durable event ingest, live feed, replay and escalation"};
    app.set_version_flag("--version", pingan::version_line("pingan-broker"));
    std::string config_path;
    broker_config flags;
    std::string data, ingest, feed, query, registry_path, districts_path, clock_spec, rules_path,
        log_level, keys;
    app.add_option("-c,--config", config_path,
                   "YAML configuration file (config/broker.yaml); relative paths in it are "
                   "relative to its folder, those given as flags to the working directory");
    app.add_option("--data", data, "store directory");
    app.add_option("--ingest", ingest, "ingest endpoint, e.g. tcp://127.0.0.1:7401 (port * = any)");
    app.add_option("--feed", feed, "live feed endpoint");
    app.add_option("--query", query, "query endpoint");
    app.add_option("--registry", registry_path, "schools.csv");
    app.add_option("--districts", districts_path, "districts.csv");
    app.add_option("--clock", clock_spec, "system | manual:<time> | scaled:<factor>:<time>");
    app.add_option("--rules", rules_path, "escalation rule file (YAML, docs/rules.md)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
    std::string log_format, slow_commit, log_summary;
    app.add_option("--log-format", log_format,
                   "text, or json: one JSON object a line (time, level, logger, msg, fields)");
    app.add_option("--slow-commit", slow_commit,
                   "log each commit slower than this (default 250ms; 0ms logs every commit)");
    app.add_option("--log-summary", log_summary,
                   "interval of the summary line: events, refusals, subscriptions, lag (default "
                   "60s)");
    app.add_option("--keys", keys,
                   "key directory sealing minors' data at rest (outside --data; pingan keys)");
    std::string checkpoint_key, checkpoint_dir;
    std::uint64_t checkpoint_interval = 0;
    app.add_option("--checkpoint-key", checkpoint_key,
                   "Ed25519 key signing checkpoints of the head (pingan checkpoint keygen; "
                   "outside --data)");
    app.add_option("--checkpoint-dir", checkpoint_dir,
                   "directory (kept by another party) where each checkpoint is written as a file");
    app.add_option("--checkpoint-interval", checkpoint_interval,
                   "seconds between checkpoints (default 300)");
    std::string replication, js_stream, js_subject, js_timeout, js_lease, js_name;
    bool standby = false;
    std::vector<std::string> js_servers;
    int js_replicas = 0;
    app.add_option("--replication", replication,
                   "none, or jetstream: an ack waits for the stream too (docs/replication.md)");
    app.add_option("--jetstream-server", js_servers,
                   "NATS server URL, e.g. nats://127.0.0.1:4222 (repeat for a cluster)");
    app.add_option("--jetstream-stream", js_stream, "the stream's name (default PINGAN)");
    app.add_option("--jetstream-subject", js_subject,
                   "the records' subject: each is published on SUBJECT.<district>.<school> "
                   "(default pingan.events)");
    app.add_option(
        "--jetstream-replicas", js_replicas,
        "copies of the stream kept by the cluster when the broker creates it: 1, 3 or 5");
    app.add_option("--jetstream-timeout", js_timeout,
                   "how long a batch waits for the stream's confirmation before its publishers "
                   "are refused (default 2s)");
    app.add_option("--jetstream-lease", js_lease,
                   "how long the leadership lease lives without renewal (default 3s)");
    app.add_option("--jetstream-name", js_name,
                   "this broker's name in the lease (default host:pid)");
    app.add_flag("--standby", standby,
                 "follow the stream into the store and take over when the leader's lease lapses "
                 "(with --replication jetstream)");
    std::string server_key, clients, metrics;
    bool allow_insecure = false;
    app.add_option("--metrics", metrics,
                   "serve GET /metrics (Prometheus) on HOST:PORT, e.g. 127.0.0.1:9401 (off by "
                   "default)");
    app.add_option("--server-key", server_key,
                   "the broker's CURVE key pair file (pingan keygen; mode 0600)");
    app.add_option("--clients", clients,
                   "access table: clients' keys, scopes and rights (not writable by others)");
    app.add_flag("--allow-insecure-permissions", allow_insecure,
                 "start even if others may read the server key or change the access table");
    bool insecure_dev = false;
    app.add_flag("--insecure-dev", insecure_dev,
                 "development only: plain, unauthenticated sockets (no --server-key); "
                 "also $PINGAN_INSECURE_DEV=1")
        ->envname("PINGAN_INSECURE_DEV");
    CLI11_PARSE(app, argc, argv);

    broker_config cfg;
    try {
        if (!config_path.empty())
            cfg = parse_broker_config(read_file(config_path, "configuration"), {},
                                      std::filesystem::path(config_path).parent_path().string());
    } catch (const error& e) {
        fatal(config_path + ": " + e.detail());
    }
    auto& b = cfg.broker;
    if (!data.empty()) b.data_dir = data;
    if (!ingest.empty()) b.ingest = ingest;
    if (!feed.empty()) b.feed = feed;
    if (!query.empty()) b.query = query;
    if (!registry_path.empty()) cfg.registry = registry_path;
    if (!districts_path.empty()) cfg.districts = districts_path;
    if (!clock_spec.empty()) cfg.clock = clock_spec;
    if (!rules_path.empty()) cfg.rules = rules_path;
    if (!log_level.empty()) cfg.log_level = log_level;
    if (!log_format.empty()) cfg.log_format = log_format;
    auto flag_duration = [](const std::string& flag, const std::string& text, micros& out) {
        if (text.empty()) return;
        auto d = parse_duration(text);
        if (!d) fatal(flag + " " + text + ": expected a duration such as 250ms, 1s, 1m");
        out = *d;
    };
    flag_duration("--slow-commit", slow_commit, cfg.slow_commit);
    flag_duration("--log-summary", log_summary, cfg.log_summary);
    if (cfg.log_summary <= micros{0}) fatal("--log-summary must be longer than 0s");
    if (!server_key.empty()) cfg.server_key = server_key;
    if (!clients.empty()) cfg.clients = clients;
    if (!metrics.empty()) cfg.metrics = metrics;
    if (!keys.empty()) cfg.keys = keys;
    if (!checkpoint_key.empty()) cfg.checkpoint_key = checkpoint_key;
    if (!checkpoint_dir.empty()) cfg.checkpoint_dir = checkpoint_dir;
    if (checkpoint_interval) cfg.checkpoint_interval_s = checkpoint_interval;
    if (cfg.server_key.empty() != cfg.clients.empty())
        fatal("--server-key and --clients go together");
    if (!replication.empty()) cfg.replication = replication;
    if (cfg.replication != "none" && cfg.replication != "jetstream")
        fatal("--replication " + cfg.replication + ": expected none or jetstream");
    if (!js_servers.empty()) cfg.jetstream.servers = js_servers;
    if (!js_stream.empty()) cfg.jetstream.stream = js_stream;
    if (!js_subject.empty()) cfg.jetstream.subject = js_subject;
    if (js_replicas) cfg.jetstream.replicas = js_replicas;
    if (cfg.jetstream.replicas != 1 && cfg.jetstream.replicas != 3 && cfg.jetstream.replicas != 5)
        fatal("--jetstream-replicas " + std::to_string(cfg.jetstream.replicas) +
              ": expected 1, 3 or 5");
    if (!js_timeout.empty()) {
        micros t{};
        flag_duration("--jetstream-timeout", js_timeout, t);
        if (t < micros{1000}) fatal("--jetstream-timeout must be at least 1ms");
        cfg.jetstream.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(t);
    }
    if (!js_lease.empty()) {
        micros t{};
        flag_duration("--jetstream-lease", js_lease, t);
        if (t < micros{300'000}) fatal("--jetstream-lease must be at least 300ms");
        cfg.jetstream.lease = std::chrono::duration_cast<std::chrono::milliseconds>(t);
    }
    if (!js_name.empty()) cfg.jetstream.name = js_name;
    if (standby) cfg.jetstream.standby = true;
    if (cfg.jetstream.standby && cfg.replication != "jetstream")
        fatal("--standby follows a JetStream stream: it needs --replication jetstream");
    if (cfg.replication == "jetstream") {
        const auto& subj = cfg.jetstream.subject;
        if (subj.empty() || subj.front() == '.' || subj.back() == '.' ||
            subj.find("..") != std::string::npos ||
            subj.find_first_of("*> \t\r\n") != std::string::npos)
            fatal("jetstream subject " + subj +
                  ": expected tokens separated by dots, without wildcards or spaces, such as "
                  "pingan.events");
        // The stream holds the stored bytes: without sealing, its readers
        // would read minors' data in clear.
        if (cfg.keys.empty() && !insecure_dev)
            fatal("--replication jetstream needs --keys (keys_dir:): every record is copied to "
                  "the stream, whose readers would otherwise read minors' data (student "
                  "references, indicator codes) in clear; give --keys DIR, or --insecure-dev for "
                  "development (docs/replication.md, \"Who reads the stream\")");
        b.replication = std::make_shared<const jetstream_config>(cfg.jetstream);
    }

    auto logger = spdlog::stderr_color_mt("pingan-broker");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));
    try {
        apply_log_format(*logger, parse_log_format(cfg.log_format));
    } catch (const error& e) {
        fatal(e.detail());
    }
    day_log::set_slow_commit(cfg.slow_commit);

    // Every client connection is a descriptor, and libzmq does not back off
    // when it runs out of them: take all the operator allows (LimitNOFILE).
    auto fds = raise_fd_limit();
    if (fds.soft != fds.before)
        spdlog::info("open files: soft limit raised from {} to {}", fds.before, fds.soft);
    if (fds.soft < 4096)
        spdlog::warn("open files: the limit is {}; a broker serving many clients needs more "
                     "(LimitNOFILE, docs/operations.md)",
                     fds.soft);

    log_allocator();
    try {
        auto clk = make_clock(cfg.clock);
        auto reg = std::make_shared<const registry>(registry::from_csv(
            read_file(cfg.registry, "registry"), read_file(cfg.districts, "districts")));
        spdlog::info("registry: {} schools in {} districts", reg->size(), reg->districts().size());

        // A bad rule file stops the start; on SIGHUP it is refused and the rules
        // in force stay. The access table is reloaded the same way (broker::reload_access).
        auto load_rules = [&]() -> std::shared_ptr<const rules::ruleset> {
            std::ifstream in(cfg.rules, std::ios::binary);
            if (!in) {
                spdlog::error("cannot read rules {}", cfg.rules);
                return nullptr;
            }
            std::ostringstream text;
            text << in.rdbuf();
            auto parsed = rules::parse(text.str());
            for (const auto& d : parsed.errors)
                spdlog::error("{}: {}", cfg.rules, d.text());
            return parsed.errors.empty() ? parsed.rules : nullptr;
        };
        if (!cfg.server_key.empty()) {
            auto sec = std::make_shared<broker_options::security_config>();
            try {
                refuse_loose(cfg.server_key, 0077, allow_insecure,
                             "the server's secret key must be readable by its owner only",
                             "chmod 600", "the server's secret key is exposed");
                refuse_loose(cfg.clients, 0002, allow_insecure,
                             "anyone could grant themselves rights in the access table",
                             "chmod o-w", "anyone may grant themselves rights");
                sec->server = read_secret_key_file(cfg.server_key, true);
            } catch (const error& e) {
                fatal(e.detail());
            }
            try {
                sec->access = access_table::from_yaml(read_file(cfg.clients, "clients"), *reg);
            } catch (const error& e) {
                fatal(cfg.clients + ": " + e.detail());
            }
            sec->access_file = cfg.clients;
            sec->allow_loose_permissions = allow_insecure;
            spdlog::info("CURVE on every socket; {} clients in {}; server key {}",
                         sec->access.size(), cfg.clients, sec->server.public_key);
            b.security = std::move(sec);
        } else {
            // Plain sockets let anyone who reaches them publish for any school:
            // only when asked for by name, and said loudly.
            if (!insecure_dev)
                fatal("no --server-key and --clients (security: section): the sockets would "
                      "take anyone's events; make keys with `pingan keygen` (docs/security.md), "
                      "or give --insecure-dev for development");
            spdlog::critical("INSECURE (--insecure-dev): sockets are neither encrypted nor "
                             "authenticated; anyone who reaches them may publish for any school. "
                             "Development only.");
        }
        std::unique_ptr<engine_processor> proc;
        if (!cfg.rules.empty()) {
            auto rs = load_rules();
            if (!rs) fatal(cfg.rules + ": the rule file has errors (see above)");
            proc = std::make_unique<engine_processor>(rs, reg);
            spdlog::info("rules {}: {} rules", cfg.rules, rs->rules.size());
        } else {
            spdlog::warn("no rule file: events are stored but nothing is escalated");
        }

        // The store's folder is created if missing, with its parents (var/broker in a fresh tree).
        if (std::error_code ec; !b.data_dir.empty())
            std::filesystem::create_directories(b.data_dir, ec);
        b.keys = open_keys(cfg.keys, b.data_dir);
        if (b.replication && !b.keys)
            spdlog::critical("INSECURE (--insecure-dev): no --keys with replication: stream {} "
                             "holds minors' data in clear for anyone who may read it. "
                             "Development only.",
                             b.replication->stream);
        if (!cfg.checkpoint_dir.empty() && cfg.checkpoint_key.empty())
            fatal("--checkpoint-dir needs --checkpoint-key (checkpoint.key): the key that signs");
        if (!cfg.checkpoint_key.empty()) {
            // The signing key stays out of the store's folder, which backups
            // copy whole: whoever holds a copy must not be able to sign.
            if (nested(cfg.checkpoint_key, b.data_dir))
                fatal("--checkpoint-key " + cfg.checkpoint_key +
                      " must be outside the store directory " + b.data_dir +
                      ": a copy of the store would carry the key that vouches for it");
            refuse_loose(cfg.checkpoint_key, 0077, allow_insecure,
                         "the checkpoint signing key must be readable by its owner only",
                         "chmod 600", "the checkpoint signing key is exposed");
            auto cp = std::make_shared<broker_options::checkpoint_config>();
            try {
                cp->key = parse_signing_key(read_file(cfg.checkpoint_key, "checkpoint key"));
            } catch (const error& e) {
                fatal(cfg.checkpoint_key + ": " + e.detail());
            }
            cp->dir = cfg.checkpoint_dir;
            cp->interval = std::chrono::seconds(cfg.checkpoint_interval_s);
            if (!cp->dir.empty()) {
                std::error_code ec;
                std::filesystem::create_directories(cp->dir, ec);
                if (!std::filesystem::is_directory(cp->dir))
                    fatal("--checkpoint-dir " + cp->dir + ": not a directory");
            }
            spdlog::info("checkpoints signed every {} s with key {}{}", cfg.checkpoint_interval_s,
                         to_hex(cp->key.public_key.data(), 32),
                         cp->dir.empty() ? std::string() : ", written to " + cp->dir);
            b.checkpoints = std::move(cp);
        }
        // A standby follows the stream until the leader's lease lapses, then
        // starts as the broker on the store it kept (docs/replication.md).
        std::unique_ptr<broker> brp;
        if (b.replication && b.replication->standby) {
            std::signal(SIGINT, on_standby_signal);
            std::signal(SIGTERM, on_standby_signal);
        }
        while (!brp) {
            if (b.replication && b.replication->standby) {
                bool lead = false;
                {
                    store_options so;
                    so.path = b.data_dir;
                    so.initial_map_size = b.initial_map_size;
                    so.keys = b.keys;
                    so.defer_sync = true;
                    store st(so);
                    if (proc) st.open_processor(*proc);
                    std::cout << "standby stream=" << b.replication->stream << std::endl;
                    notify_ready("standby: following stream " + b.replication->stream);
                    lead = follow_stream(*b.replication, st, proc.get(), standby_stop);
                }
                if (!lead) {
                    spdlog::info("standby stopped");
                    return 0;
                }
            }
            try {
                brp = std::make_unique<broker>(b, *clk, *reg, proc.get(),
                                               dynamic_cast<manual_clock*>(clk.get()));
            } catch (const not_leader& e) {
                if (!b.replication->standby) throw;
                spdlog::warn("standby: {}; following again", e.detail());
            }
        }
        auto& br = *brp;
        const auto& ep = br.bound();
        std::unique_ptr<metrics_server> scrape;
        if (!cfg.metrics.empty()) {
            auto* engine = proc.get();
            scrape = std::make_unique<metrics_server>(cfg.metrics, [engine] {
                return broker_metrics::get().render([engine](prom::writer& w) {
                    if (!engine) return;
                    auto c = engine->counts();
                    std::vector<prom::sample> s;
                    for (const auto& [key, n] : c.open)
                        s.push_back({{{"mode", std::get<0>(key)},
                                      {"severity", std::get<1>(key)},
                                      {"tier", std::get<2>(key)}},
                                     static_cast<double>(n)});
                    w.family("pingan_broker_open_incidents", "gauge",
                             "Open incidents by mode, severity (level) and the highest tier "
                             "paged (none: nobody paged yet).",
                             s);
                    w.gauge("pingan_broker_overdue_incidents",
                            "Open incidents with at least one deadline passed.",
                            static_cast<double>(c.overdue));
                });
            });
            spdlog::info("metrics: GET http://{}/metrics", scrape->bound());
        }
        // The signals are taken before anyone is told the broker listens: a
        // SIGHUP or SIGTERM sent on seeing "listening" (or READY=1) is queued
        // for the handlers below, never the default action that ends the process.
        net::io_context ioc;
        net::signal_set reload(ioc, SIGHUP);
        net::signal_set signals(ioc, SIGINT, SIGTERM);
        std::cout << "listening ingest=" << ep.ingest << " feed=" << ep.feed
                  << " query=" << ep.query << (scrape ? " metrics=" + scrape->bound() : "")
                  << std::endl;
        br.start();
        notify_ready("listening ingest=" + ep.ingest + " feed=" + ep.feed + " query=" + ep.query);

        std::function<void()> wait_reload = [&] {
            reload.async_wait([&](const boost::system::error_code& ec, int) {
                if (ec) return;
                notify_reloading();
                if (proc) {
                    if (auto rs = load_rules()) {
                        proc->set_rules(rs);
                        spdlog::info("rules {} reloaded: {} rules", cfg.rules, rs->rules.size());
                    } else {
                        spdlog::error("rules {} not reloaded; the rules in force stay", cfg.rules);
                    }
                }
                // The access table too: a key removed from it is refused from
                // its next message on (a bad file is refused and logged by
                // reload_access; the table in force stays).
                if (b.security) (void)br.reload_access("SIGHUP");
                notify_ready("reloaded");
                wait_reload();
            });
        };
        wait_reload();
        // An insecure broker says so again every hour, so that a forgotten
        // development flag does not go unnoticed in a long-running log.
        net::steady_timer insecure_nag(ioc);
        std::function<void()> nag = [&] {
            insecure_nag.expires_after(std::chrono::hours(1));
            insecure_nag.async_wait([&](const boost::system::error_code& ec) {
                if (ec) return;
                spdlog::critical("INSECURE (--insecure-dev): sockets are still neither encrypted "
                                 "nor authenticated");
                nag();
            });
        };
        if (!b.security) nag();
        // The day at a glance: events, refusals, subscriptions and lag, each interval.
        net::steady_timer summary_timer(ioc);
        std::function<void()> summarize = [&] {
            summary_timer.expires_after(cfg.log_summary);
            summary_timer.async_wait([&](const boost::system::error_code& ec) {
                if (ec) return;
                day_log::summary(broker_metrics::get().subscriptions_now(),
                                 broker_metrics::get().queued_now());
                summarize();
            });
        };
        summarize();
        // Capture SIGINT and SIGTERM to drain and stop cleanly.
        signals.async_wait([&](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            spdlog::info("signal {}: draining", sig);
            notify_stopping();
            br.stop();
            reload.cancel();
            insecure_nag.cancel();
            summary_timer.cancel();
        });
        ioc.run();
        br.wait();
        if (scrape) scrape->stop();
        spdlog::info("stopped cleanly");
        return 0;
    } catch (const error& e) {
        fatal(e.what());
    } catch (const std::exception& e) {
        fatal(e.what());
    }
}
