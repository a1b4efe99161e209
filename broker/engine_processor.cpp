// The escalation engine bound to the broker's store: load, apply, save.
#include "broker/engine_processor.hpp"

#include <cstring>

namespace pingan {
namespace {

constexpr std::string_view meta_announced = "meta/announced";

std::string be64(std::int64_t v) {
    std::string s(8, '\0');
    auto u = static_cast<std::uint64_t>(v);
    for (int i = 7; i >= 0; --i, u >>= 8)
        s[static_cast<std::size_t>(i)] = static_cast<char>(u & 0xff);
    return s;
}

std::optional<std::int64_t> from_be64(std::string_view s) {
    if (s.size() != 8) return std::nullopt;
    std::uint64_t u = 0;
    for (unsigned char c : s)
        u = u << 8 | c;
    return static_cast<std::int64_t>(u);
}

[[noreturn]] void undecodable(std::string_view table, std::string_view key) {
    std::string k;
    for (unsigned char c : key)
        k += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    throw error(errc::store_failure,
                "engine table " + std::string(table) + ": record \"" + k + "\" does not decode");
}

} // namespace

void load_engine_state(state_store& s, engine_state& st) {
    st.clear();
    s.scan("incidents", "", [&](std::string_view k, std::string_view v) {
        incident i;
        if (!decode_incident(v, i)) undecodable("incidents", k);
        auto id = i.id;
        st.index(st.incidents.emplace(id, std::move(i)).first->second);
        return true;
    });
    s.scan("timers", "", [&](std::string_view k, std::string_view v) {
        engine_timer t;
        if (!decode_timer(v, t)) undecodable("timers", k);
        st.queue.emplace(t.due_us, t.id);
        auto id = t.id;
        st.timers.emplace(id, std::move(t));
        return true;
    });
    s.scan("engine", "", [&](std::string_view k, std::string_view v) {
        if (k == meta_announced) {
            st.announced_hash = std::string(v);
        } else if (k.starts_with("w/")) {
            std::vector<window_entry> w;
            if (!decode_window(v, w)) undecodable("engine", k);
            st.windows.emplace(std::string(k.substr(2)), std::move(w));
        } else if (k.starts_with("s/") || k.starts_with("a/")) {
            auto t = from_be64(v);
            if (!t) undecodable("engine", k);
            (k[0] == 's' ? st.sustained : st.last_seen).emplace(std::string(k.substr(2)), *t);
        }
        return true;
    });
}

engine_processor::engine_processor(std::shared_ptr<const rules::ruleset> rs,
                                   std::shared_ptr<const registry> reg, engine_options o)
    : registry_(std::move(reg)), options_(o),
      engine_(std::make_unique<engine>(std::move(rs), registry_, o)) {}

void engine_processor::open(state_store& s) {
    load_engine_state(s, state_);
}

void engine_processor::reload(state_store& s) {
    open(s);
}

void engine_processor::set_rules(std::shared_ptr<const rules::ruleset> rs) {
    if (!rs) return;
    std::lock_guard lock(pending_mutex_);
    pending_ = std::move(rs);
}

void engine_processor::take_new_rules() {
    std::shared_ptr<const rules::ruleset> next;
    {
        std::lock_guard lock(pending_mutex_);
        next.swap(pending_);
    }
    if (next) engine_ = std::make_unique<engine>(std::move(next), registry_, options_);
}

void engine_processor::apply(const event& e, state_store& s, std::vector<event>& derived) {
    take_new_rules();
    engine_->apply(state_, e, derived);
    save(s);
}

std::optional<timestamp> engine_processor::next_due() const {
    return engine_->next_due(state_);
}

void engine_processor::fire(timestamp now, state_store&, std::vector<event>& out) {
    take_new_rules();
    engine_->fire(state_, now, out);
}

// Writes what the last apply changed, inside the current transaction.
void engine_processor::save(state_store& s) {
    for (const auto& id : state_.dirty_incidents)
        if (auto it = state_.incidents.find(id); it != state_.incidents.end())
            s.put("incidents", id, encode_incident(it->second));
    for (const auto& [key, value] : state_.timer_changes) {
        if (value)
            s.put("timers", key, *value);
        else
            s.del("timers", key);
    }
    for (const auto& key : state_.dirty_engine) {
        auto name = std::string_view(key).substr(2);
        std::optional<std::string> value;
        if (key.starts_with("w/")) {
            auto it = state_.windows.find(std::string(name));
            if (it != state_.windows.end() && !it->second.empty())
                value = encode_window(it->second);
            else if (it != state_.windows.end())
                state_.windows.erase(it);
        } else {
            auto& m = key.starts_with("s/") ? state_.sustained : state_.last_seen;
            if (auto it = m.find(std::string(name)); it != m.end()) value = be64(it->second);
        }
        if (value)
            s.put("engine", key, *value);
        else
            s.del("engine", key);
    }
    if (state_.dirty_meta) s.put("engine", meta_announced, state_.announced_hash);
    state_.dirty_incidents.clear();
    state_.timer_changes.clear();
    state_.dirty_engine.clear();
    state_.dirty_meta = false;
}

} // namespace pingan
