// The escalation engine bound to the broker's store: load, apply, save.
//
// Start-up cost follows the open state, not the history: closed incidents
// (most of the `incidents` table after a term) are not loaded at open. The
// engine table indexes incidents by state, "o/<id>" for open ones and
// "c/<mode>|<school>|<id>" for closed ones, and before each apply the adapter
// loads the closed incidents the event could touch: those of the event's mode
// at its school and city-wide (the only keys the engine opens or joins for an
// event), the one an acknowledgement or hazard event names by id, and all of
// them before an absence checkpoint runs (it visits every school).
#include "broker/engine/engine_processor.hpp"

#include <cstring>

namespace pingan {
namespace {

constexpr std::string_view meta_announced = "meta/announced";
constexpr std::string_view meta_index = "meta/index"; // "1": the o/ and c/ entries exist
constexpr std::string_view open_prefix = "o/";
constexpr std::string_view closed_prefix = "c/";

// The mode letter that starts an incident's key (engine.cpp: Actual, System
// and anything else share 'A'; Exercise 'X'; Test 'T').
char mode_letter(pingan::status s) {
    return s == pingan::status::exercise ? 'X' : s == pingan::status::test ? 'T' : 'A';
}

// "A|420502K001|": the part of an incident key before its kind.
std::string scope_of(const incident& i) {
    auto bar = i.key.find('|');
    auto second = bar == std::string::npos ? std::string::npos : i.key.find('|', bar + 1);
    if (second == std::string::npos) return std::string(1, i.key.empty() ? 'A' : i.key[0]) + "||";
    return i.key.substr(0, second + 1);
}

std::string closed_key(const incident& i) {
    return std::string(closed_prefix) + scope_of(i) + i.id;
}

// Visits the keys of `table` that start with `prefix`, in order.
void scan_prefix(state_store& s, std::string_view table, std::string_view prefix,
                 const std::function<void(std::string_view, std::string_view)>& f) {
    s.scan(table, prefix, [&](std::string_view k, std::string_view v) {
        if (!k.starts_with(prefix)) return false;
        f(k, v);
        return true;
    });
}

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

// Adds one stored incident to the state. Returns: false if there is none.
bool load_incident(state_store& s, engine_state& st, std::string_view id) {
    if (st.incidents.count(std::string(id))) return true;
    auto v = s.get("incidents", id);
    if (!v) return false;
    incident i;
    if (!decode_incident(*v, i)) undecodable("incidents", id);
    auto key = i.id;
    st.index(st.incidents.emplace(key, std::move(i)).first->second);
    return true;
}

void load_engine_state(state_store& s, engine_state& st) {
    st.clear();
    if (s.get("engine", meta_index)) {
        scan_prefix(s, "engine", open_prefix, [&](std::string_view k, std::string_view) {
            if (!load_incident(s, st, k.substr(open_prefix.size()))) undecodable("engine", k);
        });
    } else {
        // A store from before the index: every incident, once; open() writes the index.
        s.scan("incidents", "", [&](std::string_view k, std::string_view v) {
            incident i;
            if (!decode_incident(v, i)) undecodable("incidents", k);
            auto id = i.id;
            st.index(st.incidents.emplace(id, std::move(i)).first->second);
            return true;
        });
    }
    s.scan("timers", "", [&](std::string_view k, std::string_view v) {
        engine_timer t;
        if (!decode_timer(v, t)) undecodable("timers", k);
        st.queue.emplace(t.due_us, t.id);
        auto id = t.id;
        st.timers.emplace(id, std::move(t));
        return true;
    });
    if (auto a = s.get("engine", meta_announced)) st.announced_hash = *a;
    scan_prefix(s, "engine", "w/", [&](std::string_view k, std::string_view v) {
        std::vector<window_entry> w;
        if (!decode_window(v, w)) undecodable("engine", k);
        st.windows.emplace(std::string(k.substr(2)), std::move(w));
    });
    for (auto prefix : {"s/", "a/"})
        scan_prefix(s, "engine", prefix, [&](std::string_view k, std::string_view v) {
            auto t = from_be64(v);
            if (!t) undecodable("engine", k);
            (k[0] == 's' ? st.sustained : st.last_seen).emplace(std::string(k.substr(2)), *t);
        });
}

engine_processor::engine_processor(std::shared_ptr<const rules::ruleset> rs,
                                   std::shared_ptr<const registry> reg, engine_options o)
    : registry_(std::move(reg)), options_(o),
      engine_(std::make_unique<engine>(std::move(rs), registry_, o)) {}

void engine_processor::open(state_store& s) {
    load_engine_state(s, state_);
    loaded_scopes_.clear();
    all_closed_loaded_.clear();
    {
        std::lock_guard lock(counts_mutex_);
        counts_ = {};
    }
    counted_.clear();
    for (const auto& [id, i] : state_.incidents)
        count(i);
    if (!s.get("engine", meta_index)) {
        // First open of a store from before the index: write it, and keep
        // everything loaded this once.
        for (const auto& [id, i] : state_.incidents)
            index_incident(s, i);
        s.put("engine", meta_index, "1");
        all_closed_loaded_ = "AXT";
    }
}

// Moves the incident's contribution to the counts to its present state.
void engine_processor::count(const incident& i) {
    std::optional<counted> now;
    if (!i.closed) {
        auto top = std::string("none");
        int top_rank = -1;
        for (const auto& p : i.paged) // "tier/role"
            if (auto t = enum_parse<pingan::tier>(p.substr(0, p.find('/'))))
                if (static_cast<int>(*t) > top_rank) {
                    top_rank = static_cast<int>(*t);
                    top = std::string(enum_name(*t));
                }
        now = counted{{std::string(enum_name(i.mode)), std::string(enum_name(i.severity)), top},
                      !i.fired.empty()};
    }
    auto before = counted_.find(i.id);
    std::lock_guard lock(counts_mutex_);
    if (before != counted_.end()) {
        if (auto c = counts_.open.find(before->second.key);
            c != counts_.open.end() && --c->second == 0)
            counts_.open.erase(c);
        if (before->second.overdue) --counts_.overdue;
        counted_.erase(before);
    }
    if (now) {
        ++counts_.open[now->key];
        if (now->overdue) ++counts_.overdue;
        counted_.emplace(i.id, std::move(*now));
    }
}

incident_counts engine_processor::counts() const {
    std::lock_guard lock(counts_mutex_);
    return counts_;
}

void engine_processor::index_incident(state_store& s, const incident& i) {
    if (i.closed) {
        s.put("engine", closed_key(i), "");
        s.del("engine", std::string(open_prefix) + i.id);
    } else {
        s.put("engine", std::string(open_prefix) + i.id, "");
        s.del("engine", closed_key(i));
    }
}

void engine_processor::load_closed(state_store& s, const std::string& scope) {
    if (all_closed_loaded_.find(scope.front()) != std::string::npos) return;
    if (!loaded_scopes_.insert(scope).second) return;
    auto prefix = std::string(closed_prefix) + scope;
    scan_prefix(s, "engine", prefix, [&](std::string_view k, std::string_view) {
        if (!load_incident(s, state_, k.substr(prefix.size()))) undecodable("engine", k);
    });
}

// Loads what the engine may read for `e` that open() left in the store.
void engine_processor::load_for(const event& e, state_store& s) {
    auto mode = mode_letter(e.status);
    // An absence checkpoint due by now runs inside this apply and may open or
    // join an incident at any school.
    auto now = to_us(e.received_at);
    for (const auto& [due, id] : state_.queue) {
        if (due > now) break;
        auto t = state_.timers.find(id);
        if (t == state_.timers.end() || t->second.kind != engine_timer::what::absence) continue;
        if (all_closed_loaded_.find('A') == std::string::npos) {
            scan_prefix(s, "engine", std::string(closed_prefix) + "A|",
                        [&](std::string_view k, std::string_view) {
                            auto id_at = k.rfind('|');
                            if (!load_incident(s, state_, k.substr(id_at + 1)))
                                undecodable("engine", k);
                        });
            all_closed_loaded_ += 'A';
        }
        break;
    }
    load_closed(s, std::string(1, mode) + "|" + e.school + "|");
    load_closed(s, std::string(1, mode) + "||");
    // Events that name an incident by id (or a hazard by its id).
    const std::string* ref = nullptr;
    if (auto* a = std::get_if<incident_acknowledged>(&e.body))
        ref = &a->incident_id;
    else if (auto* r = std::get_if<incident_resolved>(&e.body))
        ref = &r->incident_id;
    else if (auto* n = std::get_if<incident_note>(&e.body))
        ref = &n->incident_id;
    else if (auto* h = std::get_if<hazard_rectified>(&e.body))
        ref = &h->hazard_id;
    else if (auto* v = std::get_if<hazard_verified>(&e.body))
        ref = &v->hazard_id;
    else if (auto* rp = std::get_if<report_submitted>(&e.body))
        ref = &rp->incident_id;
    else if (auto* hp = std::get_if<hazard_remediation_planned>(&e.body))
        ref = &hp->hazard_id;
    else if (auto* ha = std::get_if<hazard_appealed>(&e.body))
        ref = &ha->hazard_id;
    else if (auto* hd = std::get_if<hazard_appeal_decided>(&e.body))
        ref = &hd->hazard_id;
    if (ref && !ref->empty()) load_incident(s, state_, *ref);
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
    load_for(e, s);
    engine_->apply(state_, e, derived);
    save(s);
}

std::optional<timestamp> engine_processor::next_due() const {
    // Absence checkpoints not scheduled yet (a broker that starts silent, or
    // a new rule set): due at once, so that fire() schedules them.
    if (!engine_->started(state_)) return timestamp{};
    return engine_->next_due(state_);
}

void engine_processor::fire(timestamp now, state_store& s, std::vector<event>& out) {
    take_new_rules();
    if (!engine_->started(state_)) {
        engine_->start(state_, now);
        save(s);
    }
    engine_->fire(state_, now, out);
}

// Writes what the last apply changed, inside the current transaction.
void engine_processor::save(state_store& s) {
    for (const auto& id : state_.dirty_incidents)
        if (auto it = state_.incidents.find(id); it != state_.incidents.end()) {
            s.put("incidents", id, encode_incident(it->second));
            index_incident(s, it->second);
            count(it->second);
        }
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
