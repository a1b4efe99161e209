// What-if runs of a rule set over a stored log, in a sandbox.
//
// The sandbox is a fresh engine fed the log's inputs in offset order. It
// writes nothing and can reach no receiver: what it would have raised is only
// returned. Timers fire at their due time, as a broker that never went down
// would fire them, unless the log's own timer events are used (the same rule
// set then reproduces the log's derived events byte for byte). A diff compares
// the pages the log records with the pages the sandbox made.
#pragma once

#include "broker/engine/engine.hpp"

#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace pingan {

class sandbox {
  public:
    sandbox(std::shared_ptr<const rules::ruleset> rs, std::shared_ptr<const registry> reg,
            bool logged_timers = false);

    // One stored event, in offset order. Inputs run through the engine; what
    // the broker derived is kept aside for diff().
    void feed(const event& stored);

    // Fires the timers due up to `until` (the end of the replayed range).
    void finish(timestamp until);

    const std::vector<event>& derived() const noexcept { return derived_; } // the sandbox's
    const std::vector<event>& logged() const noexcept { return logged_; }   // the log's
    std::size_t inputs() const noexcept { return inputs_; }
    const engine_state& state() const noexcept { return state_; }

  private:
    void run(const event& e);
    void fire_until(timestamp t);

    engine engine_;
    engine_state state_;
    bool logged_timers_;
    bool started_ = false;
    std::vector<event> derived_, logged_;
    std::size_t inputs_ = 0;
};

// True for events the broker's engine made (derived events and timer events).
bool engine_made(const event& e) noexcept;

struct page_diff {
    std::vector<event> added;   // pages the sandbox made and the log does not have
    std::vector<event> removed; // pages in the log the sandbox did not make
    // The same page (incident, rule, receivers, reminder number) in both, at
    // another time or with another late flag: (logged, replayed).
    std::vector<std::pair<event, event>> changed;
    struct first_page {
        std::optional<timestamp> logged, replayed;
    };
    std::map<std::string, first_page> first_by_school; // school → time of its first page
};

// Compares every notification.requested event: pages are the same page when
// their incident, rule, tier, roles and repeat number agree (ids differ when
// rule sets do; these do not); pages of one key pair up in time order, and a
// pair at different times or with a different late flag is `changed`.
page_diff diff_pages(const std::vector<event>& logged, const std::vector<event>& replayed);

} // namespace pingan
