// pingan-drill: records emergency evacuation drills (应急疏散演练) over HTTP
// JSON, checks the evacuation time against the registry's target, and turns
// every problem found into a hazard report.
#include "common/version.hpp"
#include "handle_request.hpp"
#include "services/common/service.hpp"

#include <iostream>

using namespace pingan;

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::cerr << "pingan-drill: " << what << "\n";
    std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
    service_config cfg;
    cfg.name = "pingan-drill";
    cfg.data_dir = "var/drill";
    cfg.http = "127.0.0.1:8082";
    CLI::App app{"pingan-drill: drill records, evacuation times and the hazards they find"};
    app.set_version_flag("--version", pingan::version_line("pingan-drill"));
    add_service_options(app, cfg);
    svc::intake_options sec;
    svc::add_intake_options(app, sec);
    CLI11_PARSE(app, argc, argv);
    try {
        service_runtime rt(make_logger(cfg.name, cfg.log_level));
        svc::service_host host(rt, cfg, sec);
        host.route_post("/drill/record", svc::drill::record);
        host.start();
        return rt.run();
    } catch (const error& x) {
        fail(x.what());
    } catch (const std::exception& x) {
        fail(x.what());
    }
}
