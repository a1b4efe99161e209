// The what-if sandbox and the page diff.
#include "broker/rules_replay.hpp"

#include <algorithm>
#include <tuple>

namespace pingan {

bool engine_made(const event& e) noexcept {
    return engine::derived_type(e.type());
}

sandbox::sandbox(std::shared_ptr<const rules::ruleset> rs, std::shared_ptr<const registry> reg,
                 bool logged_timers)
    : engine_(std::move(rs), std::move(reg)), logged_timers_(logged_timers) {}

void sandbox::run(const event& e) {
    std::vector<event> out;
    engine_.apply(state_, e, out);
    for (auto& d : out)
        if (d.type() != ruleset_loaded::type) derived_.push_back(std::move(d));
}

void sandbox::fire_until(timestamp t) {
    while (true) {
        auto due = engine_.next_due(state_);
        if (!due || *due > t) return;
        std::vector<event> fired;
        engine_.fire(state_, *due, fired);
        for (auto& f : fired)
            run(f);
    }
}

void sandbox::feed(const event& stored) {
    if (engine_made(stored)) {
        if (stored.type() == timer_fired::type) {
            if (logged_timers_) run(stored);
        } else {
            logged_.push_back(stored);
        }
        return;
    }
    ++inputs_;
    if (!logged_timers_) fire_until(stored.received_at);
    run(stored);
}

void sandbox::finish(timestamp until) {
    if (!logged_timers_) fire_until(until);
}

namespace {

using page_key =
    std::tuple<std::string, std::string, tier, std::vector<std::string>, std::uint32_t>;

page_key key_of(const notification_requested& n) {
    auto roles = n.roles;
    std::sort(roles.begin(), roles.end());
    return {n.incident_id, n.rule_id, n.tier, roles, n.repeat};
}

} // namespace

page_diff diff_pages(const std::vector<event>& logged, const std::vector<event>& replayed) {
    page_diff d;
    std::multimap<page_key, const event*> in_log, in_replay;
    auto collect = [&](const std::vector<event>& v, auto& into, bool is_log) {
        for (const auto& e : v) {
            const auto* n = std::get_if<notification_requested>(&e.body);
            if (!n) continue;
            into.emplace(key_of(*n), &e);
            auto& f = d.first_by_school[e.school];
            auto& t = is_log ? f.logged : f.replayed;
            if (!t || e.received_at < *t) t = e.received_at;
        }
    };
    collect(logged, in_log, true);
    collect(replayed, in_replay, false);
    // Multiset difference, both ways, in time order.
    auto minus = [](const auto& a, const auto& b, std::vector<event>& out) {
        auto bi = b;
        for (const auto& [k, e] : a) {
            auto it = bi.find(k);
            if (it != bi.end())
                bi.erase(it);
            else
                out.push_back(*e);
        }
        std::stable_sort(out.begin(), out.end(), [](const event& x, const event& y) {
            return x.received_at < y.received_at;
        });
    };
    minus(in_replay, in_log, d.added);
    minus(in_log, in_replay, d.removed);
    return d;
}

} // namespace pingan
