// The escalation engine as the broker's processor (broker/store/processor.hpp).
//
// A thin adapter: it keeps the pure engine's state in memory for speed, loads
// it from the store's tables at open, and after each apply writes back only
// what changed, inside the writer's transaction, so that an event and
// everything it derived or changed commit together. Tables (create them with
// store_options::processor_tables):
//   incidents  incident id → incident (engine.hpp, cereal portable binary)
//   timers     8-byte big-endian due time (µs + 2^63) ‖ timer id → timer:
//              the earliest deadline is the first key
//   engine     "w/…" windows, "s/…" sustained conditions, "a/…" last seen
//              for absence rules, "meta/announced" the rule set last logged,
//              "o/<id>" each open incident and "c/<mode>|<school>|<id>" each
//              closed one, so that open() reads only the open state and
//              closed incidents are read when an event may touch them
//              ("meta/index" = "1" once these exist)
#pragma once

#include "broker/engine/engine.hpp"
#include "broker/store/processor.hpp"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>

namespace pingan {

// Open incidents for metrics: how many per (mode, severity, highest tier
// paged), and how many of them have let a deadline pass.
struct incident_counts {
    std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> open;
    std::uint64_t overdue = 0;
};

class engine_processor final : public processor {
  public:
    static constexpr std::array<std::string_view, 3> tables{"incidents", "timers", "engine"};

    engine_processor(std::shared_ptr<const rules::ruleset> rs, std::shared_ptr<const registry> reg,
                     engine_options o = {});

    void open(state_store& s) override;
    void apply(const event& e, state_store& s, std::vector<event>& derived) override;
    std::optional<timestamp> next_due() const override;
    void fire(timestamp now, state_store& s, std::vector<event>& out) override;
    void reload(state_store& s) override;

    // Replaces the rule set from any thread (a reload on SIGHUP). It takes
    // effect at the writer's next apply or fire, whose first derived event is
    // then the ruleset.loaded announcement. The caller parses and checks the
    // new text first, so a bad file never replaces a good rule set.
    void set_rules(std::shared_ptr<const rules::ruleset> rs);

    // The rule set in force (writer thread).
    std::shared_ptr<const rules::ruleset> rules() const { return engine_->rules_ptr(); }

    // The state as last loaded or applied (writer thread; for tests and tools).
    // Closed incidents are in it only once an event needed them.
    const engine_state& state() const noexcept { return state_; }

    // The open incidents as of the last commit (any thread).
    incident_counts counts() const;

  private:
    void take_new_rules();
    void save(state_store& s);
    void index_incident(state_store& s, const incident& i);
    void load_for(const event& e, state_store& s);
    void load_closed(state_store& s, const std::string& scope);
    void count(const incident& i);

    struct counted {
        std::tuple<std::string, std::string, std::string> key;
        bool overdue = false;
    };

    std::shared_ptr<const registry> registry_;
    engine_options options_;
    std::unique_ptr<engine> engine_;
    engine_state state_;
    std::set<std::string> loaded_scopes_; // "A|school|" whose closed incidents are loaded
    std::string all_closed_loaded_;       // modes whose closed incidents are all loaded
    std::mutex pending_mutex_;
    std::shared_ptr<const rules::ruleset> pending_;
    std::unordered_map<std::string, counted> counted_; // open incidents (writer thread)
    mutable std::mutex counts_mutex_;
    incident_counts counts_;
};

// Reads the state of an engine from its tables: the open incidents (all of
// them in a store from before the open/closed index), timers, windows and
// marks; closed incidents stay in the store.
// Throws: pingan::error(store_failure) naming a record that does not decode.
void load_engine_state(state_store& s, engine_state& out);

} // namespace pingan
