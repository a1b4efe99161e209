// pingan-wellbeing: the counsellor's intake of psychological-health alerts.
//
// The student's id is replaced by a keyed hash with the school's secret key
// (--keys FILE) before anything is written to the outbox or the log, and the
// events carry scope Private. `--make-keys FILE` writes a fresh key file for
// every school of the registry and exits.
#include "handle_request.hpp"
#include "services/common/program.hpp"

#include <sys/stat.h>

#include <fstream>

using namespace pingan;

int main(int argc, char** argv) {
    svc::service_program p{
        "pingan-wellbeing", "var/wellbeing", "127.0.0.1:8084",
        "pingan-wellbeing: psychological-health alerts with pseudonymous students"};
    std::string keys_path, make_keys;
    p.app().add_option("--keys", keys_path, "per-school pseudonym key file (SCHOOL HEXKEY lines)");
    p.app().add_option("--make-keys", make_keys, "write a new key file for every school and exit");
    if (auto done = p.parse(argc, argv)) return *done;
    const auto& cfg = p.config();
    if (!make_keys.empty())
        return p.guard([&] {
            auto path = cfg.registry.empty() ? default_registry_path() : cfg.registry;
            auto text = svc::wellbeing::school_keys::generate(load_registry(path));
            auto old = ::umask(077);
            std::ofstream out(make_keys, std::ios::binary | std::ios::trunc);
            ::umask(old);
            if (!(out << text)) p.fail("cannot write " + make_keys);
            return 0;
        });
    if (keys_path.empty()) p.fail("--keys FILE is required (make one with --make-keys FILE)");
    auto keys =
        p.guard([&] { return svc::wellbeing::school_keys::parse(read_text_file(keys_path)); });
    return p.run([&keys](service_runtime& rt, svc::service_host& host) {
        host.route_post("/psych/alert", [&keys](json& req, const svc::intake_context& ctx) {
            return svc::wellbeing::psych_alert(req, ctx, keys);
        });
        host.health_extra([&keys](json& j) { j["schools_with_keys"] = keys.size(); });
        host.start();
        return rt.run();
    });
}
