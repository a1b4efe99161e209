// pingan-sim: simulated schools for the demo and for load.
//
// Plays the scenario (scenario.hpp) against the real services: HTTP JSON to
// pingan-hazard, pingan-drill, pingan-canteen and pingan-wellbeing, sensor
// lines over UDP to pingan-canteen, and school-bus trips (which have no
// service) straight to the broker through a durable outbox. With --direct,
// every action is decided in-process by the services' own decision functions
// and published to the broker, for load. With --dry-run it prints the actions
// as JSON Lines and sends nothing: the same seed prints the same lines.
#include "common/publisher.hpp"
#include "common/runtime.hpp"
#include "common/version.hpp"
#include "scenario.hpp"
#include "services/canteen/handle_request.hpp"
#include "services/drill/handle_request.hpp"
#include "services/hazard/handle_request.hpp"
#include "services/wellbeing/handle_request.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <thread>

using namespace pingan;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using udp = net::ip::udp;

namespace {

std::atomic<bool> stop_requested{false};

[[noreturn]] void fail(const std::string& what) {
    std::cerr << "pingan-sim: " << what << "\n";
    std::exit(2);
}

// A keep-alive HTTP client for one service, over TLS when given a context;
// reconnects when the service closed. Sends the intake credential's token.
class http_client {
  public:
    http_client(net::io_context& ioc, std::string at, std::string token, net::ssl::context* tls)
        : ioc_(ioc), at_(std::move(at)), token_(std::move(token)), tls_(tls) {}

    // Returns: the status code, or 0 if the service could not be reached.
    int post(const std::string& path, const json& body) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            try {
                if (!sock_ && !tls_sock_) connect();
                http::request<http::string_body> req{http::verb::post, path, 11};
                req.set(http::field::host, at_);
                req.set(http::field::content_type, "application/json");
                if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
                req.keep_alive(true);
                req.body() = body.dump();
                req.prepare_payload();
                http::response<http::string_body> res;
                if (tls_sock_) {
                    http::write(*tls_sock_, req);
                    http::read(*tls_sock_, buf_, res);
                } else {
                    http::write(*sock_, req);
                    http::read(*sock_, buf_, res);
                }
                if (!res.keep_alive()) reset();
                last_body_ = res.body();
                return res.result_int();
            } catch (const std::exception& x) {
                last_body_ = x.what();
                reset();
            }
        }
        return 0;
    }
    const std::string& last_body() const noexcept { return last_body_; }

  private:
    void reset() {
        sock_.reset();
        tls_sock_.reset();
        buf_.clear();
    }
    void connect() {
        auto colon = at_.rfind(':');
        tcp::resolver r(ioc_);
        auto to = r.resolve(at_.substr(0, colon), at_.substr(colon + 1));
        if (tls_) {
            tls_sock_.emplace(ioc_, *tls_);
            net::connect(tls_sock_->next_layer(), to);
            tls_sock_->handshake(net::ssl::stream_base::client);
        } else {
            sock_.emplace(ioc_);
            net::connect(*sock_, to);
        }
    }
    net::io_context& ioc_;
    std::string at_, token_;
    net::ssl::context* tls_;
    std::optional<tcp::socket> sock_;
    std::optional<boost::beast::ssl_stream<tcp::socket>> tls_sock_;
    boost::beast::flat_buffer buf_;
    std::string last_body_;
};

struct counts {
    std::map<std::string, std::uint64_t> sent, accepted, refused;
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"pingan-sim: simulated schools driving the Pingan services"};
    app.set_version_flag("--version", pingan::version_line("pingan-sim"));
    std::uint64_t seed = 1;
    std::string start = "2026-09-01T00:00:00+08:00", tick = "10m", registry_path, data = "var/sim";
    double days = 1, speed = 600;
    std::size_t schools = 0;
    std::string hazard_at = "127.0.0.1:8081", drill_at = "127.0.0.1:8082",
                canteen_at = "127.0.0.1:8083", canteen_udp = "127.0.0.1:8093",
                wellbeing_at = "127.0.0.1:8084", broker = "tcp://127.0.0.1:7401",
                log_level = "warn";
    int illness_day = 0;
    bool dry_run = false, direct = false;
    app.add_option("--seed", seed, "the same seed plays the same term")->capture_default_str();
    app.add_option("--start", start, "simulated start time")->capture_default_str();
    app.add_option("--days", days, "simulated days to play")->capture_default_str();
    app.add_option("--speed", speed, "simulated seconds per real second (0: as fast as possible)")
        ->capture_default_str();
    app.add_option("--tick", tick, "simulated time between sensor readings")->capture_default_str();
    app.add_option("--schools", schools, "how many schools (0: the whole registry)")
        ->capture_default_str();
    app.add_option("--illness-day", illness_day, "day of the run (from 0) with the illness cluster")
        ->capture_default_str();
    app.add_option("--registry", registry_path, "schools.csv");
    app.add_option("--hazard", hazard_at, "pingan-hazard HTTP address")->capture_default_str();
    app.add_option("--drill", drill_at, "pingan-drill HTTP address")->capture_default_str();
    app.add_option("--canteen", canteen_at, "pingan-canteen HTTP address")->capture_default_str();
    app.add_option("--canteen-udp", canteen_udp, "pingan-canteen UDP address")
        ->capture_default_str();
    app.add_option("--wellbeing", wellbeing_at, "pingan-wellbeing HTTP address")
        ->capture_default_str();
    app.add_option("--broker", broker, "broker ingest, for bus trips and --direct")
        ->capture_default_str();
    app.add_option("--data", data, "folder of the simulator's own outbox")->capture_default_str();
    app.add_option("--log-level", log_level, "log level")->capture_default_str();
    std::string token_file, ca_file, key_file, server_key;
    app.add_option("--token-file", token_file,
                   "file holding the intake token the services require (pingan credentials issue)");
    app.add_option("--ca", ca_file,
                   "PEM certificate to trust: the services speak HTTPS (their --tls-cert)");
    app.add_option("--key", key_file, "the simulator's CURVE key pair file, for a secured broker");
    app.add_option("--server-key", server_key, "the broker's public key file, or z85:KEY");
    app.add_flag("--direct", direct, "decide in-process and publish straight to the broker (load)");
    app.add_flag("--dry-run", dry_run, "print the actions as JSON Lines and send nothing");
    CLI11_PARSE(app, argc, argv);

    auto t0 = parse_utc(start);
    if (!t0) fail("--start \"" + start + "\" is not an RFC 3339 time");
    auto step = parse_duration(tick);
    if (!step || step->count() <= 0) fail("--tick \"" + tick + "\" is not a duration");
    if (registry_path.empty()) registry_path = default_registry_path();
    registry reg;
    try {
        reg = load_registry(registry_path);
    } catch (const error& x) {
        fail(x.what());
    }
    sim::options o;
    o.seed = seed;
    o.start = *t0;
    o.tick = *step;
    o.schools = schools;
    o.illness_day = illness_day;
    sim::scenario sc(reg, o);
    auto total_ticks =
        static_cast<std::uint64_t>(days * 86'400e6 / static_cast<double>(step->count()));

    if (dry_run) {
        for (std::uint64_t i = 0; i < total_ticks; ++i)
            for (const auto& a : sc.next_tick()) {
                json j = {{"at", format_utc(a.at)}, {"to", std::string(sim::target_name(a.to))}};
                if (!a.path.empty()) j["path"] = a.path;
                if (a.to == sim::target::canteen_line)
                    j["line"] = a.line;
                else
                    j["body"] = a.body;
                std::cout << j.dump() << "\n";
            }
        return 0;
    }

    std::signal(SIGINT, [](int) { stop_requested = true; });
    std::signal(SIGTERM, [](int) { stop_requested = true; });

    // The broker side: an outbox and publisher on their own io thread.
    auto log = make_logger("pingan-sim", log_level);
    net::io_context pub_io(1);
    auto work = net::make_work_guard(pub_io);
    outbox box(data + "/outbox");
    publisher_options po{.endpoint = broker};
    if (!key_file.empty() || !server_key.empty()) {
        if (key_file.empty() || server_key.empty()) fail("--key and --server-key go together");
        try {
            curve_client c;
            c.self = read_secret_key_file(key_file);
            c.server_public = read_server_key(server_key);
            po.curve = std::move(c);
        } catch (const error& x) {
            fail(x.what());
        }
    }
    publisher pub(pub_io, box, po, log);
    net::post(pub_io, [&] { pub.start(); });
    std::thread pub_thread([&] { pub_io.run(); });
    auto publish = [&](std::vector<event> events) {
        if (events.empty()) return;
        net::post(pub_io, [&box, &pub, ev = std::move(events)] {
            box.add(ev);
            pub.notify();
        });
    };

    // In-process deciders for --direct.
    manual_clock sim_clock(*t0);
    svc::canteen::sensors sensors;
    auto keys = svc::wellbeing::school_keys::parse(svc::wellbeing::school_keys::generate(reg));
    svc::intake_context ctx{reg, sim_clock, "pingan-sim/direct"};

    net::io_context ioc;
    std::string token;
    if (!token_file.empty()) {
        try {
            token = read_text_file(token_file);
        } catch (const error& x) {
            fail(x.what());
        }
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r'))
            token.pop_back();
    }
    std::optional<net::ssl::context> tls;
    if (!ca_file.empty()) {
        tls.emplace(net::ssl::context::tls_client);
        boost::system::error_code ec;
        tls->load_verify_file(ca_file, ec);
        if (ec) fail("--ca " + ca_file + ": " + ec.message());
        tls->set_verify_mode(net::ssl::verify_peer);
    }
    auto* tlsp = tls ? &*tls : nullptr;
    std::map<sim::target, http_client> clients;
    clients.emplace(sim::target::hazard, http_client(ioc, hazard_at, token, tlsp));
    clients.emplace(sim::target::drill, http_client(ioc, drill_at, token, tlsp));
    clients.emplace(sim::target::canteen_http, http_client(ioc, canteen_at, token, tlsp));
    clients.emplace(sim::target::wellbeing, http_client(ioc, wellbeing_at, token, tlsp));
    udp::socket usock(ioc, udp::v4());
    udp::endpoint uto;
    {
        auto colon = canteen_udp.rfind(':');
        boost::system::error_code ec;
        auto addr = net::ip::make_address(canteen_udp.substr(0, colon), ec);
        if (ec) fail("--canteen-udp \"" + canteen_udp + "\" is not HOST:PORT");
        uto = udp::endpoint(addr,
                            static_cast<unsigned short>(std::stoul(canteen_udp.substr(colon + 1))));
    }
    std::string datagram;
    auto flush_udp = [&] {
        if (datagram.empty()) return;
        boost::system::error_code ec;
        usock.send_to(net::buffer(datagram), uto, 0, ec);
        datagram.clear();
    };

    counts c;
    auto real_start = std::chrono::steady_clock::now();
    std::cerr << "pingan-sim: " << sc.schools().size() << " schools, " << days
              << " simulated days from " << format_utc(*t0) << " at " << speed << "x, seed " << seed
              << (direct ? ", direct to the broker" : "") << std::endl;
    for (std::uint64_t i = 0; i < total_ticks && !stop_requested; ++i) {
        auto actions = sc.next_tick();
        std::vector<event> direct_events;
        for (const auto& a : actions) {
            if (stop_requested) break;
            if (speed > 0) {
                auto due =
                    real_start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     (a.at - *t0) / speed);
                if (due > std::chrono::steady_clock::now()) {
                    flush_udp();
                    std::this_thread::sleep_until(due);
                }
            }
            auto name = std::string(sim::target_name(a.to)) + (a.path.empty() ? "" : a.path);
            ++c.sent[name];
            sim_clock.set(a.at);
            if (a.to == sim::target::broker) {
                event e;
                if (auto p = from_json(a.body, e)) {
                    ++c.refused[name];
                    continue;
                }
                e.id = new_event_id(a.at);
                e.source = "pingan-sim/bus";
                direct_events.push_back(std::move(e));
                ++c.accepted[name];
                continue;
            }
            if (direct) {
                json req = a.body;
                svc::decision d;
                if (a.to == sim::target::canteen_line) {
                    svc::canteen::reading r;
                    if (!svc::canteen::parse_line(a.line, r)) d = sensors.on_reading(r, ctx);
                } else if (a.path == "/hazard/report")
                    d = svc::hazard::report(req, ctx);
                else if (a.path == "/hazard/rectify")
                    d = svc::hazard::rectify(req, ctx);
                else if (a.path == "/hazard/verify")
                    d = svc::hazard::verify(req, ctx);
                else if (a.path == "/drill/record")
                    d = svc::drill::record(req, ctx);
                else if (a.path == "/canteen/sample")
                    d = svc::canteen::sample(req, ctx);
                else if (a.path == "/canteen/accompany")
                    d = svc::canteen::accompany(req, ctx);
                else if (a.path == "/canteen/illness")
                    d = svc::canteen::illness(req, ctx);
                else if (a.path == "/psych/alert")
                    d = svc::wellbeing::psych_alert(req, ctx, keys);
                if (d.ok()) {
                    ++c.accepted[name];
                    for (auto& e : d.events)
                        direct_events.push_back(std::move(e));
                } else {
                    ++c.refused[name];
                }
                continue;
            }
            if (a.to == sim::target::canteen_line) {
                if (datagram.size() + a.line.size() + 1 > 8000) flush_udp();
                datagram += a.line;
                datagram += '\n';
                ++c.accepted[name];
                continue;
            }
            auto status = clients.at(a.to).post(a.path, a.body);
            if (status == 202) {
                ++c.accepted[name];
            } else {
                ++c.refused[name];
                log->warn("{} {}: {} {}", sim::target_name(a.to), a.path, status,
                          clients.at(a.to).last_body());
            }
        }
        flush_udp();
        publish(std::move(direct_events));
    }

    // Give the broker a moment to acknowledge what the simulator published.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(stop_requested ? 2 : 30);
    while (std::chrono::steady_clock::now() < until) {
        std::promise<std::size_t> depth;
        net::post(pub_io, [&] { depth.set_value(box.depth()); });
        if (depth.get_future().get() == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    net::post(pub_io, [&] {
        pub.stop();
        work.reset();
    });
    pub_thread.join();

    json summary = json::object();
    for (const auto& [k, v] : c.sent)
        summary[k] = {{"sent", v}, {"accepted", c.accepted[k]}, {"refused", c.refused[k]}};
    std::cout << summary.dump() << std::endl;
    return 0;
}
