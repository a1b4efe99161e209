// pingan-drill: records emergency evacuation drills (应急疏散演练) over HTTP
// JSON, checks the evacuation time against the registry's target, and turns
// every problem found into a hazard report.
#include "handle_request.hpp"
#include "services/common/program.hpp"

using namespace pingan;

int main(int argc, char** argv) {
    svc::service_program p{
        "pingan-drill", "var/drill", "127.0.0.1:8082",
        "pingan-drill: drill records, evacuation times and the hazards they find"};
    if (auto done = p.parse(argc, argv)) return *done;
    return p.run([](service_runtime& rt, svc::service_host& host) {
        host.route_post("/drill/record", svc::drill::record);
        host.start();
        return rt.run();
    });
}
