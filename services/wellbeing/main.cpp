// pingan-wellbeing: the counsellor's intake of psychological-health alerts.
//
// The student's id is replaced by a keyed hash with the school's secret key
// (--keys FILE) before anything is written to the outbox or the log, and the
// events carry scope Private. `--make-keys FILE` writes a fresh key file for
// every school of the registry and exits.
#include "common/version.hpp"
#include "handle_request.hpp"
#include "services/common/service.hpp"

#include <sys/stat.h>

#include <fstream>
#include <iostream>

using namespace pingan;

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::cerr << "pingan-wellbeing: " << what << "\n";
    std::exit(2);
}

} // namespace

int main(int argc, char** argv) {
    service_config cfg;
    cfg.name = "pingan-wellbeing";
    cfg.data_dir = "var/wellbeing";
    cfg.http = "127.0.0.1:8084";
    std::string keys_path, make_keys;
    CLI::App app{"pingan-wellbeing: psychological-health alerts with pseudonymous students"};
    app.set_version_flag("--version", pingan::version_line("pingan-wellbeing"));
    add_service_options(app, cfg);
    svc::intake_options sec;
    svc::add_intake_options(app, sec);
    app.add_option("--keys", keys_path, "per-school pseudonym key file (SCHOOL HEXKEY lines)");
    app.add_option("--make-keys", make_keys, "write a new key file for every school and exit");
    CLI11_PARSE(app, argc, argv);
    try {
        if (!make_keys.empty()) {
            auto path = cfg.registry.empty() ? default_registry_path() : cfg.registry;
            auto text = svc::wellbeing::school_keys::generate(load_registry(path));
            auto old = ::umask(077);
            std::ofstream out(make_keys, std::ios::binary | std::ios::trunc);
            ::umask(old);
            if (!(out << text)) fail("cannot write " + make_keys);
            return 0;
        }
        if (keys_path.empty()) fail("--keys FILE is required (make one with --make-keys FILE)");
        auto keys = svc::wellbeing::school_keys::parse(read_text_file(keys_path));
        service_runtime rt(make_logger(cfg.name, cfg.log_level));
        svc::service_host host(rt, cfg, sec);
        host.route_post("/psych/alert", [&keys](json& req, const svc::intake_context& ctx) {
            return svc::wellbeing::psych_alert(req, ctx, keys);
        });
        host.health_extra([&keys](json& j) { j["schools_with_keys"] = keys.size(); });
        host.start();
        return rt.run();
    } catch (const error& x) {
        fail(x.what());
    } catch (const std::exception& x) {
        fail(x.what());
    }
}
