// pingan-canteen: a school canteen's food-safety intake.
//
// Sensor readings arrive over the line protocol (UDP, TCP or files, see
// line_protocol.hpp) and become food.temp_reading events, with a cold-chain
// alert when a sensor stays out of range; sample retention, meal
// accompaniment and illness reports come over HTTP JSON.
#include "handle_request.hpp"
#include "sensor_intake.hpp"
#include "services/common/program.hpp"

using namespace pingan;

int main(int argc, char** argv) {
    svc::service_program p{
        "pingan-canteen", "var/canteen", "127.0.0.1:8083",
        "pingan-canteen: canteen sensors, sample retention, 陪餐 and illness reports"};
    std::string udp_at = "127.0.0.1:8093", tcp_at = "127.0.0.1:8094";
    std::vector<std::string> files;
    std::string alert_after = "30m", escalate_after = "2h";
    double margin = 1.0;
    auto& app = p.app();
    app.add_option("--udp", udp_at, "UDP address for sensor lines (empty: off)")
        ->capture_default_str();
    app.add_option("--tcp", tcp_at, "TCP address for sensor lines (empty: off)")
        ->capture_default_str();
    app.add_option("--file", files, "read sensor lines from these files at start");
    app.add_option("--alert-after", alert_after, "out of range this long raises a cold-chain alert")
        ->capture_default_str();
    app.add_option("--escalate-after", escalate_after, "out of range this long escalates it")
        ->capture_default_str();
    app.add_option("--margin", margin, "°C back inside the range that ends an excursion")
        ->capture_default_str();
    if (auto done = p.parse(argc, argv)) return *done;

    auto duration_flag = [&p](const std::string& name, const std::string& text) {
        auto d = parse_duration(text);
        if (!d) p.fail(name + " \"" + text + "\" is not a duration such as 30m");
        return *d;
    };
    svc::canteen::cold_chain_options opts;
    opts.margin = margin;
    opts.alert_after = duration_flag("--alert-after", alert_after);
    opts.escalate_after = duration_flag("--escalate-after", escalate_after);
    return p.run([&](service_runtime& rt, svc::service_host& host) {
        svc::canteen::sensors sensors(opts);
        svc::canteen::sensor_intake intake(host, sensors);
        host.route_post("/canteen/sample", svc::canteen::sample);
        host.route_post("/canteen/accompany", svc::canteen::accompany);
        host.route_post("/canteen/illness", svc::canteen::illness);
        host.health_extra([&](json& j) {
            j["sensors"] = sensors.count();
            j["sensors_in_excursion"] = sensors.in_excursion();
            j["lines_accepted"] = intake.accepted();
            j["lines_refused"] = intake.refused();
        });
        std::string more;
        if (!udp_at.empty()) {
            auto at = svc::parse_endpoint(udp_at);
            if (!at) p.fail("--udp \"" + udp_at + "\" is not HOST:PORT");
            auto ep = intake.serve_udp(svc::udp::endpoint(at->address(), at->port()));
            more += "udp=" + ep.address().to_string() + ":" + std::to_string(ep.port());
        }
        if (!tcp_at.empty()) {
            auto at = svc::parse_endpoint(tcp_at);
            if (!at) p.fail("--tcp \"" + tcp_at + "\" is not HOST:PORT");
            auto ep = intake.serve_tcp(*at, p.config().max_connections);
            if (!more.empty()) more += " ";
            more += "tcp=" + ep.address().to_string() + ":" + std::to_string(ep.port());
        }
        rt.on_stop([&] { intake.stop(); });
        for (const auto& f : files)
            rt.log().info("{}: {} readings", f, intake.read_file(f));
        host.start(more);
        return rt.run();
    });
}
