// pingan keys: the keys that seal minors' data at rest (common/key_ring.hpp).
//
// rotate makes a new current key (the broker seals with it from its next
// event on); shred destroys a period's keys, after which the values they
// sealed read as "[shredded]" while the log and its chain stay whole. A
// running broker notices both without a restart.
#include "common/clock.hpp"
#include "common/errc.hpp"
#include "common/key_ring.hpp"
#include "tools/pingan/commands.hpp"

#include <iostream>

namespace pingan::cli {
namespace {

struct keys_args {
    std::string dir;
    std::string period;
};

std::unique_ptr<key_ring> open_ring(const keys_args& a) {
    if (a.dir.empty()) fatal("give the key directory with --keys DIR (or $PINGAN_KEYS)");
    try {
        return std::make_unique<key_ring>(a.dir);
    } catch (const error& e) {
        fatal(e.detail());
    }
}

} // namespace

void add_keys_command(CLI::App& app) {
    auto a = std::make_shared<keys_args>();
    auto* cmd = app.add_subcommand(
        "keys", "Manage the keys sealing minors' data in the store: list, rotate, shred");
    cmd->require_subcommand(1);
    auto dir_option = [a](CLI::App* c) {
        c->add_option("--keys", a->dir, "the broker's key directory ($PINGAN_KEYS)")
            ->envname("PINGAN_KEYS");
    };

    auto* list = cmd->add_subcommand("list", "List the key ids, live or shredded");
    dir_option(list);
    list->callback([a] {
        for (const auto& k : open_ring(*a)->list())
            std::cout << k.id << "\t" << (k.shredded ? "shredded" : "live") << "\n";
    });

    auto* rotate = cmd->add_subcommand(
        "rotate", "Make a new current key for this month; the broker seals new events with it");
    dir_option(rotate);
    rotate->callback([a] {
        auto ring = open_ring(*a);
        try {
            std::cout << ring->rotate(system_clock().now()) << "\n";
        } catch (const error& e) {
            fatal(e.detail());
        }
    });

    auto* shred = cmd->add_subcommand(
        "shred", "Destroy the keys of a period (YYYY-MM: every key of that month of received "
                 "time; or one key id YYYY-MM.N): its minors' data can never be read again");
    dir_option(shred);
    shred->add_option("period", a->period, "YYYY-MM or a key id")->required();
    shred->callback([a] {
        auto ring = open_ring(*a);
        std::vector<std::string> gone;
        try {
            gone = ring->shred(a->period);
        } catch (const error& e) {
            fatal(e.detail());
        }
        if (gone.empty()) {
            std::cerr << "pingan: no live key of " << a->period << " in " << a->dir << "\n";
            exit_code() = 1;
            return;
        }
        for (const auto& id : gone)
            std::cout << "shredded " << id << "\n";
    });
}

PINGAN_COMMAND(81, add_keys_command);

} // namespace pingan::cli
