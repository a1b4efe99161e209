// pingan-hazard: a school's hazard intake (隐患排查整治) over HTTP JSON.
//
// Reads flags and the YAML config, opens the outbox, sets the routes and runs
// until SIGINT or SIGTERM. Every accepted report is in the outbox before the
// 202 answer and reaches the broker once, whenever the broker is reachable.
#include "common/version.hpp"
#include "handle_request.hpp"
#include "services/common/service.hpp"

#include <iostream>

using namespace pingan;

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::cerr << "pingan-hazard: " << what << "\n";
    std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
    service_config cfg;
    cfg.name = "pingan-hazard";
    cfg.data_dir = "var/hazard";
    cfg.http = "127.0.0.1:8081";
    CLI::App app{"pingan-hazard: hazard reports, rectifications and verifications over HTTP"};
    app.set_version_flag("--version", pingan::version_line("pingan-hazard"));
    add_service_options(app, cfg);
    svc::intake_options sec;
    svc::add_intake_options(app, sec);
    CLI11_PARSE(app, argc, argv);
    try {
        service_runtime rt(make_logger(cfg.name, cfg.log_level));
        svc::service_host host(rt, cfg, sec);
        host.route_post("/hazard/report", svc::hazard::report);
        host.route_post("/hazard/rectify", svc::hazard::rectify);
        host.route_post("/hazard/verify", svc::hazard::verify);
        host.route_post("/hazard/plan", svc::hazard::plan);
        host.route_post("/hazard/appeal", svc::hazard::appeal);
        host.start();
        return rt.run();
    } catch (const error& x) {
        fail(x.what());
    } catch (const std::exception& x) {
        fail(x.what());
    }
}
