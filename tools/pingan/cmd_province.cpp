// pingan province: a province's copies of its cities' replicated logs
// (docs/replication.md, "Province"). Each city's broker writes its own
// JetStream stream on a subject of its own; `create` makes, in the
// province's JetStream, one mirror of each city stream, which JetStream keeps
// in the city's offset order. `pingan replay --jetstream URL --province NAME`
// reads them.
#include "common/errc.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/jetstream_replay.hpp"

#include <cstdlib>
#include <iostream>

namespace pingan::cli {
namespace {

struct province_args {
    std::vector<std::string> jetstream;
    std::string province, creds;
    std::vector<std::string> cities;
    int replicas = 1;
};

void run_create(const province_args& a) {
    jetstream_source at;
    at.servers = server_list(a.jetstream);
    if (at.servers.empty()) fatal("--jetstream: give a NATS server URL, e.g. nats://host:4222");
    if (a.replicas != 1 && a.replicas != 3 && a.replicas != 5)
        fatal("--replicas: expected 1, 3 or 5");
    at.creds = a.creds;
    at.timeout = answer_timeout();
    try {
        for (const auto& line : create_province(at, a.province, a.cities, a.replicas))
            std::cout << line << "\n";
    } catch (const error& e) {
        fail(e);
    }
}

} // namespace

void add_province_command(CLI::App& app) {
    auto a = std::make_shared<province_args>();
    auto* cmd = app.add_subcommand(
        "province", "A province's copies of its cities' JetStream streams, read across cities");
    cmd->require_subcommand(1);
    auto* create = cmd->add_subcommand(
        "create", "Mirror each city's stream into the province's JetStream as <province>_<city> "
                  "(a mirror already there is kept)");
    if (const char* v = std::getenv("PINGAN_JETSTREAM"); v && *v) a->jetstream.push_back(v);
    create->add_option("--jetstream", a->jetstream,
                       "the province's NATS servers, nats://[user:password@]host:port, "
                       "comma-separated or repeated ($PINGAN_JETSTREAM)");
    create->add_option("--province", a->province, "the province's name, e.g. HUBEI")->required();
    create
        ->add_option("--city", a->cities,
                     "a city broker's stream (its jetstream.stream), or NAME@DOMAIN for one in "
                     "another JetStream domain; repeat for each city")
        ->required();
    create->add_option("--replicas", a->replicas, "copies of each mirror: 1, 3 or 5")
        ->capture_default_str();
    create->add_option("--jetstream-creds", a->creds,
                       "a NATS credentials file (user JWT and seed)");
    create
        ->add_option("--timeout", endpoints().timeout_s,
                     "seconds to wait for the NATS servers' answers before giving up")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    create->callback([a] { run_create(*a); });
}

PINGAN_COMMAND(32, add_province_command);

} // namespace pingan::cli
