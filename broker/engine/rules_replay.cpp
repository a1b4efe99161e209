// The what-if sandbox and the page diff.
#include "broker/engine/rules_replay.hpp"

#include <algorithm>
#include <tuple>

namespace pingan {

bool engine_made(const event& e) noexcept {
    return engine::made_by_engine(e);
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
    if (!started_) {
        // A broker schedules its absence checkpoints when it starts, before
        // any event: as early as the replay can know.
        started_ = true;
        auto t = stored.received_at;
        if (const auto* f = std::get_if<timer_fired>(&stored.body))
            t = std::min(t, f->due_at - micros{1});
        if (!logged_timers_) engine_.start(state_, t);
    }
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
    std::map<page_key, std::pair<std::vector<const event*>, std::vector<const event*>>> by_key;
    auto collect = [&](const std::vector<event>& v, bool is_log) {
        for (const auto& e : v) {
            const auto* n = std::get_if<notification_requested>(&e.body);
            if (!n) continue;
            auto& slot = by_key[key_of(*n)];
            (is_log ? slot.first : slot.second).push_back(&e);
            auto& f = d.first_by_school[e.school];
            auto& t = is_log ? f.logged : f.replayed;
            if (!t || e.received_at < *t) t = e.received_at;
        }
    };
    collect(logged, true);
    collect(replayed, false);
    auto earlier = [](const event* x, const event* y) { return x->received_at < y->received_at; };
    for (auto& [k, slot] : by_key) {
        auto& [log, rep] = slot;
        std::stable_sort(log.begin(), log.end(), earlier);
        std::stable_sort(rep.begin(), rep.end(), earlier);
        std::size_t both = std::min(log.size(), rep.size());
        for (std::size_t i = 0; i < both; ++i) {
            const auto& a = std::get<notification_requested>(log[i]->body);
            const auto& b = std::get<notification_requested>(rep[i]->body);
            if (log[i]->received_at != rep[i]->received_at || a.late != b.late)
                d.changed.emplace_back(*log[i], *rep[i]);
        }
        for (std::size_t i = both; i < rep.size(); ++i)
            d.added.push_back(*rep[i]);
        for (std::size_t i = both; i < log.size(); ++i)
            d.removed.push_back(*log[i]);
    }
    auto by_time = [](const event& x, const event& y) { return x.received_at < y.received_at; };
    std::stable_sort(d.added.begin(), d.added.end(), by_time);
    std::stable_sort(d.removed.begin(), d.removed.end(), by_time);
    std::stable_sort(d.changed.begin(), d.changed.end(),
                     [&](const auto& x, const auto& y) { return by_time(x.first, y.first); });
    return d;
}

} // namespace pingan
