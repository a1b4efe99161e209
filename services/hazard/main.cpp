// pingan-hazard: a school's hazard intake (隐患排查整治) over HTTP JSON.
//
// Reads flags and the YAML config, opens the outbox, sets the routes and runs
// until SIGINT or SIGTERM. Every accepted report is in the outbox before the
// 202 answer and reaches the broker once, whenever the broker is reachable.
#include "handle_request.hpp"
#include "services/common/program.hpp"

using namespace pingan;

int main(int argc, char** argv) {
    svc::service_program p{
        "pingan-hazard", "var/hazard", "127.0.0.1:8081",
        "pingan-hazard: hazard reports, rectifications and verifications over HTTP"};
    if (auto done = p.parse(argc, argv)) return *done;
    return p.run([](service_runtime& rt, svc::service_host& host) {
        host.route_post("/hazard/report", svc::hazard::report);
        host.route_post("/hazard/rectify", svc::hazard::rectify);
        host.route_post("/hazard/verify", svc::hazard::verify);
        host.route_post("/hazard/plan", svc::hazard::plan);
        host.route_post("/hazard/appeal", svc::hazard::appeal);
        host.start();
        return rt.run();
    });
}
