// pingan-console: the safety office's web console.
//
// Reads flags and the YAML config, loads the registry and the users file,
// follows the broker's log (catch-up from offset 1, then live), serves the
// page, the login and the actions on one io_context, re-reads the users file
// on SIGHUP (systemctl reload), and stops cleanly on SIGINT or SIGTERM.
#include "server.hpp"

#include "common/curve.hpp"
#include "common/readiness.hpp"
#include "common/runtime.hpp"
#include "common/stream_subjects.hpp"
#include "common/version.hpp"
#include "services/common/stream_options.hpp"

#include <iostream>

using namespace pingan;
using namespace pingan::console;

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::cerr << "pingan-console: " << what << "\n";
    std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
    console_config cfg;
    broker_endpoints ep;
    std::string key, server_key, log_level = "info";
    CLI::App app{"pingan-console: the safety office's web console (alerts, live feed, incidents, "
                 "map) over HTTP and WebSocket"};
    app.set_version_flag("--version", pingan::version_line("pingan-console"));
    app.config_formatter(std::make_shared<yaml_config>(&app));
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.set_config("--config", "", "YAML file of settings (keys are the long flag names)");
    app.add_option("--http", cfg.http,
                   "HTTP listen address host:port (loopback by default; "
                   "port 0 picks one)")
        ->capture_default_str();
    app.add_option("--users", cfg.users_file, "users file (pingan users add ... --file)")
        ->capture_default_str();
    app.add_option("--sessions", cfg.sessions_file,
                   "file keeping login sessions across restarts (0600; empty: memory only)")
        ->capture_default_str();
    app.add_option("--registry", cfg.registry,
                   "schools.csv of the registry (districts.csv beside it)");
    app.add_option("--ingest", ep.ingest, "the broker's ingest endpoint")->capture_default_str();
    app.add_option("--feed", ep.feed, "the broker's live feed endpoint")->capture_default_str();
    app.add_option("--query", ep.query, "the broker's query endpoint")->capture_default_str();
    std::vector<std::string> jetstream;
    jetstream_source js;
    js.client = "pingan-console";
    svc::add_jetstream_options(app, jetstream, js, "the log", "the broker's feed and replays",
                               "docs/console.md");
    app.add_option("--key", key, "this console's CURVE key pair file (pingan keygen)");
    app.add_option("--server-key", server_key, "the broker's CURVE public key, or its key file");
    app.add_option("--device", cfg.device, "device name in each event's source")
        ->capture_default_str();
    app.add_flag("--https", cfg.https,
                 "the console is reached over HTTPS (a TLS proxy in front): cookies are Secure");
    app.add_option("--history", cfg.history, "events kept in memory for pages that resume")
        ->capture_default_str();
    app.add_option("--max-connections", cfg.max_connections,
                   "HTTP and WebSocket connections open at once (more are closed)")
        ->capture_default_str();
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->capture_default_str();
    add_log_format_option(app);
    app.add_option("--login-failures-per-address", cfg.logins.per_address,
                   "failed logins from one address in 15 minutes before it must wait")
        ->capture_default_str();
    app.add_option("--login-failures-per-user", cfg.logins.per_user,
                   "failed logins for one user name in 15 minutes before it must wait")
        ->capture_default_str();
    std::string photo_token_file;
    app.add_option("--photo-source", cfg.photos.urls,
                   "a school service that keeps photos (http://HOST:PORT or https://...; "
                   "repeatable): the console copies the photos events name from it");
    app.add_option("--photo-token-file", photo_token_file,
                   "file with the bureau's credential for --photo-source (pingan credentials "
                   "issue NAME --role bureau --scope district:CODE)");
    app.add_option("--data", cfg.data_dir,
                   "folder of the console's copy of the photos events name (with "
                   "--photo-source): <data>/photos and <data>/photo-queue")
        ->capture_default_str();
    app.add_option("--photo-ca", cfg.photos.ca_file,
                   "PEM CA certificates for https --photo-source (default: the system's)");
    CLI11_PARSE(app, argc, argv);

    try {
        if (!key.empty() || !server_key.empty()) {
            if (key.empty() || server_key.empty())
                throw error(errc::bad_config, "--key and --server-key go together");
            // As every client: key files only their owner may read, and the
            // broker's key as a file or written z85:KEY.
            curve_client c;
            c.self = read_secret_key_file(key);
            c.server_public = read_server_key(server_key);
            ep.curve = std::move(c);
        }
        if (!cfg.photos.urls.empty()) {
            if (photo_token_file.empty())
                throw error(errc::bad_config, "--photo-source needs --photo-token-file");
            cfg.photos.token = read_token_file(photo_token_file);
        }
        auto reg_path = cfg.registry.empty() ? default_registry_path() : cfg.registry;
        if (reg_path.empty())
            throw error(errc::bad_config, "no registry: give --registry PATH/schools.csv");
        auto reg = load_registry(reg_path);

        js.servers = server_list(jetstream);
        if (!js.servers.empty()) ep.stream = js;
        service_runtime rt(make_logger("pingan-console", log_level));
        zmq::context_t ctx(1);
        actor act(rt.io(), ctx, ep);
        console_server srv(rt.io(), cfg, std::move(reg), act, rt.logger());
        follower fol(
            rt.io(), ctx, ep, [&srv](event e) { srv.on_event(std::move(e)); },
            [&srv] { srv.on_caught_up(); });
        auto at = srv.start();
        act.start();
        fol.start();
        // SIGHUP re-reads the users file at once (it is also re-read when it
        // changes): a disabled user's pages close.
        net::signal_set hup(rt.io(), SIGHUP);
        std::function<void()> wait_hup = [&] {
            hup.async_wait([&](const boost::system::error_code& ec, int) {
                if (ec) return;
                notify_reloading();
                srv.reload();
                notify_ready("reloaded");
                wait_hup();
            });
        };
        wait_hup();
        // Capture SIGINT and SIGTERM to stop the broker threads and close every page.
        rt.on_stop([&] {
            hup.cancel();
            srv.stop();
            fol.stop();
            act.stop();
        });
        std::cout << "listening http=" << at.address().to_string() << ":" << at.port() << std::endl;
        notify_ready("listening http=" + at.address().to_string() + ":" +
                     std::to_string(at.port()));
        rt.log().info(
            "pingan-console up: http {}:{}, broker {} / {} / {}, users {}{}",
            at.address().to_string(), at.port(), ep.ingest, ep.feed, ep.query, cfg.users_file,
            ep.stream ? ", log from JetStream stream " + js.stream + " at " + shown_urls(js.servers)
                      : std::string());
        return rt.run();
    } catch (const error& x) {
        fail(x.what());
    } catch (const std::exception& x) {
        fail(x.what());
    }
}
