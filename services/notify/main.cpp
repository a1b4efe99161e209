// pingan-notify: delivers the broker's pages to people.
//
// Reads flags and the YAML config, loads the receivers directory, opens its
// LMDB state and receipt outbox, takes up pages a previous run left open, and
// follows the log's notification.requested events (catch-up then live). Its
// HTTP endpoint (loopback by default) serves acknowledgement links, /health
// and, with --metrics, /metrics. SIGHUP reloads the directory (a bad file is
// refused and the old one stays); SIGINT and SIGTERM stop it cleanly.
#include "channels.hpp"
#include "consumer.hpp"
#include "directory.hpp"
#include "notifier.hpp"
#include "state.hpp"

#include "common/curve.hpp"
#include "common/readiness.hpp"
#include "common/runtime.hpp"
#include "common/shipped.hpp"
#include "common/stream_subjects.hpp"
#include "common/version.hpp"
#include "services/common/listener.hpp"
#include "services/common/stream_options.hpp"

#include <sodium.h>

#include <csignal>
#include <filesystem>
#include <iostream>

using namespace pingan;
using namespace pingan::notify;

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::cerr << "pingan-notify: " << what << "\n";
    std::exit(2);
}

std::chrono::milliseconds ms(const std::string& flag, const std::string& text) {
    auto d = parse_duration(text);
    if (!d || d->count() <= 0)
        throw error(errc::bad_config,
                    flag + " \"" + text + "\" is not a duration; expected e.g. 500ms, 10s, 5m");
    return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

// Loads and checks the directory. Throws: pingan::error(bad_config) listing
// every problem as FILE:LINE:COLUMN: message.
std::shared_ptr<const directory> load_directory(const std::string& path, const registry& reg,
                                                const std::vector<std::string>& roles) {
    auto text = read_text_file(path);
    auto d = std::make_shared<directory>();
    auto problems = parse_directory(text, &reg, roles, *d);
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems)
            all += "\n" + path + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) +
                   ": " + p.message;
        throw error(errc::bad_config,
                    path + ": " + std::to_string(problems.size()) + " problem(s):" + all);
    }
    return d;
}

} // namespace

// The link key: a file only its owner may read, made (32 random bytes, in
// hex) when it is the default one and missing.
static std::string read_link_key(const std::string& path, bool make) {
    auto key = read_secret_file(path, make, "the link key");
    if (key.size() < 32)
        throw error(errc::bad_config, path + ": the link key needs at least 32 characters");
    return key;
}

int main(int argc, char** argv) {
    service_config cfg;
    cfg.name = "pingan-notify";
    cfg.data_dir = "var/notify";
    cfg.http = "127.0.0.1:8091";
    std::string feed = "tcp://127.0.0.1:7402", query = "tcp://127.0.0.1:7403";
    std::string directory_path, rules_path, ack_base;
    std::string give_up = "10m", retry_initial = "2s", retry_max = "2m", webhook_timeout = "10s",
                command_timeout = "30s", ack_ttl = "72h";
    bool metrics = false;
    CLI::App app{"pingan-notify: delivers pages (notification.requested) by webhook, command "
                 "or file, with receipts and acknowledgement links"};
    app.set_version_flag("--version", pingan::version_line("pingan-notify"));
    add_service_options(app, cfg);
    app.add_option("--feed", feed, "the broker's live feed endpoint")->capture_default_str();
    app.add_option("--query", query, "the broker's query endpoint")->capture_default_str();
    app.add_option("--directory", directory_path, "receivers directory (YAML, docs/notify.md)")
        ->required();
    app.add_option("--rules", rules_path,
                   "rule file whose roles the directory may name (default: the Yichang pack)");
    app.add_option("--give-up-after", give_up, "stop retrying a page this long after it came")
        ->capture_default_str();
    app.add_option("--retry-initial", retry_initial, "first retry delay (doubles each time)")
        ->capture_default_str();
    app.add_option("--retry-max", retry_max, "longest retry delay")->capture_default_str();
    app.add_option("--webhook-timeout", webhook_timeout, "one webhook request, all included")
        ->capture_default_str();
    app.add_option("--command-timeout", command_timeout, "one gateway command run")
        ->capture_default_str();
    app.add_option("--ack-ttl", ack_ttl, "how long an acknowledgement link works")
        ->capture_default_str();
    app.add_option("--ack-base", ack_base,
                   "base URL of acknowledgement links (default: http://<--http address>)");
    app.add_flag("--metrics", metrics, "serve Prometheus metrics at GET /metrics");
    std::vector<std::string> jetstream;
    jetstream_source js;
    js.client = "pingan-notify";
    svc::add_jetstream_options(app, jetstream, js, "pages", "the broker's live feed",
                               "docs/notify.md");
    std::string link_key_file;
    app.add_option("--link-key", link_key_file,
                   "file of the secret acknowledgement links derive from (mode 0600; default "
                   "<data>/link.key, made at first start)");
    CLI11_PARSE(app, argc, argv);
    if (sodium_init() < 0) fail("libsodium failed to start");
    // A gateway command that exits before reading its stdin must not kill notify.
    ::signal(SIGPIPE, SIG_IGN);
    try {
        notifier_options no;
        no.give_up_after = ms("--give-up-after", give_up);
        no.retry_initial = ms("--retry-initial", retry_initial);
        no.retry_max = ms("--retry-max", retry_max);
        no.ack_ttl = ms("--ack-ttl", ack_ttl);
        no.metrics = metrics;
        no.link_key =
            read_link_key(link_key_file.empty() ? cfg.data_dir + "/link.key" : link_key_file,
                          link_key_file.empty());
        no.source = cfg.name + "/" + cfg.device;
        auto wt = ms("--webhook-timeout", webhook_timeout);
        auto ct = ms("--command-timeout", command_timeout);

        auto reg_path = cfg.registry.empty() ? default_registry_path() : cfg.registry;
        if (reg_path.empty())
            throw error(errc::bad_config, "no registry: give --registry PATH/schools.csv");
        auto reg = load_registry(reg_path);
        if (rules_path.empty()) rules_path = find_shipped("config/rules/yichang-default.yaml");
        std::vector<std::string> roles;
        if (!rules_path.empty()) roles = declared_roles(read_text_file(rules_path));
        auto dir = load_directory(directory_path, reg, roles);

        service_runtime rt(make_logger(cfg.name, cfg.log_level));
        auto clk = make_clock(cfg.clock);
        state st(cfg.data_dir + "/state");
        outbox box(cfg.data_dir + "/outbox");
        publisher_options po;
        po.endpoint = cfg.broker;
        po.resend_timeout = cfg.resend_timeout;
        po.max_in_flight = cfg.max_in_flight;
        consumer_options co{feed, query, std::nullopt, std::nullopt};
        js.servers = server_list(jetstream);
        if (!js.servers.empty()) co.jetstream = js;
        if (!cfg.key.empty() || !cfg.server_key.empty()) {
            if (cfg.key.empty() || cfg.server_key.empty())
                throw error(errc::bad_config, "--key and --server-key go together");
            curve_client c;
            c.self = parse_keypair(read_text_file(cfg.key));
            c.server_public = valid_z85_key(cfg.server_key)
                                  ? cfg.server_key
                                  : parse_keypair(read_text_file(cfg.server_key)).public_key;
            po.curve = c;
            co.curve = c;
        }
        publisher pub(rt.io(), box, po, rt.logger());
        channels ch(rt.io(), wt, ct);
        notifier n(rt.io(), st, box, pub, ch, *clk, no, rt.logger());
        n.set_directory(dir);

        auto at = svc::parse_endpoint(cfg.http);
        if (!at) throw error(errc::bad_config, "--http \"" + cfg.http + "\" is not HOST:PORT");
        auto h = std::make_shared<const svc::handler>(
            [&n](const svc::request& r, svc::connection_state&) { return n.handle(r); });
        auto lst = std::make_shared<svc::listener>(rt.io(), *at, h, cfg.max_body);
        auto ep = lst->local();
        auto bound = ep.address().to_string() + ":" + std::to_string(ep.port());
        n.set_ack_base(ack_base.empty() ? "http://" + bound : ack_base);

        consumer cons(
            rt.io(), co, rt.logger(),
            [&n](std::uint64_t off, std::string bytes) { n.on_page(off, std::move(bytes)); },
            [&n](std::uint64_t pos, std::uint64_t head) { n.on_progress(pos, head); });

        // Reload the directory on SIGHUP; a file with mistakes is refused.
        net::signal_set hup(rt.io(), SIGHUP);
        std::function<void()> wait_hup = [&] {
            hup.async_wait([&](const boost::system::error_code& ec, int) {
                if (ec) return;
                notify_reloading();
                try {
                    n.set_directory(load_directory(directory_path, reg, roles));
                    n.note_reload(true);
                    rt.log().info("directory {} reloaded: {} receivers", directory_path,
                                  n.current_directory()->receivers.size());
                    notify_ready("reloaded");
                } catch (const error& x) {
                    n.note_reload(false);
                    rt.log().error("directory not reloaded, the old one stays: {}", x.what());
                    notify_ready("reload refused: the directory has mistakes, the old one stays");
                }
                wait_hup();
            });
        };
        wait_hup();

        lst->run();
        pub.start();
        n.resume();
        cons.start(st.position());
        rt.on_stop([&] {
            hup.cancel();
            lst->stop();
            cons.stop();
            n.stop();
            ch.stop();
            pub.stop();
            rt.log().info("stopped at offset {}; {} receipts wait in the outbox", st.position(),
                          box.depth());
        });
        std::cout << "listening http=" << bound << " position=" << st.position() << std::endl;
        notify_ready("listening http=" + bound);
        rt.log().info("pingan-notify up: http {}, pages from {}, query {}, ingest {}, directory {} "
                      "({} receivers)",
                      bound,
                      co.jetstream
                          ? "JetStream stream " + js.stream + " at " + shown_urls(js.servers)
                          : "feed " + feed,
                      query, cfg.broker, directory_path, dir->receivers.size());
        return rt.run();
    } catch (const error& x) {
        fail(x.what());
    } catch (const std::exception& x) {
        fail(x.what());
    }
}
