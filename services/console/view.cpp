// The incident projection and the per-user view of events.
#include "view.hpp"

#include "common/privacy.hpp"
#include "common/time.hpp"

#include <algorithm>

namespace pingan::console {
namespace {

char mode_char(pingan::status s) {
    return s == status::exercise ? 'E' : s == status::test ? 'T' : 'A';
}

std::string us_text(std::int64_t us) {
    return format_utc(from_us(us));
}

template <class T> const T* body_as(const event& e) {
    return std::get_if<T>(&e.body);
}

} // namespace

bool derived_names_minors(const event& e) noexcept {
    if (e.scope != scope::private_) return false;
    if (const auto* n = body_as<notification_requested>(e)) return n->tier == tier::school;
    if (const auto* x = body_as<escalation_raised>(e)) return x->tier == tier::school;
    return false;
}

std::string_view level_of(pingan::severity s) noexcept {
    switch (s) {
    case severity::extreme:
        return "red";
    case severity::severe:
        return "orange";
    case severity::moderate:
        return "yellow";
    default:
        return "blue";
    }
}

std::string console_view::school_name(std::string_view id) const {
    if (auto* s = reg_.find(id)) return s->name;
    return std::string(id);
}

std::string console_view::district_name(std::string_view code) const {
    if (auto* d = reg_.find_district(code)) return d->name;
    return std::string(code);
}

incident_view* console_view::find_named(const event& e, std::string_view ref) {
    if (auto it = incidents_.find(std::string(ref)); it != incidents_.end())
        return mode_char(it->second.mode) == mode_char(e.status) ? &it->second : nullptr;
    auto key = std::string(1, mode_char(e.status)) + "|" + e.school + "|" + std::string(ref);
    if (auto it = by_subject_.find(key); it != by_subject_.end())
        if (auto i = incidents_.find(it->second); i != incidents_.end()) return &i->second;
    return nullptr;
}

const incident_view* console_view::incident(std::string_view id) const {
    auto it = incidents_.find(std::string(id));
    return it == incidents_.end() ? nullptr : &it->second;
}

const incident_view* console_view::incident_of(const event& e) const {
    return const_cast<console_view*>(this)->find_named(e, [&]() -> std::string {
        return std::visit(
            [](const auto& b) -> std::string {
                if constexpr (requires { b.incident_id; })
                    return b.incident_id;
                else if constexpr (requires { b.hazard_id; })
                    return b.hazard_id;
                else
                    return {};
            },
            e.body);
    }());
}

void console_view::apply(const event& e) {
    if (e.offset <= last_) return;
    last_ = e.offset;
    now_us_ = std::max(now_us_, to_us(e.received_at));
    history_.push_back(e);
    offset_of_id_[e.id.str()] = e.offset;
    while (history_.size() > history_limit_) {
        offset_of_id_.erase(history_.front().id.str());
        history_.pop_front();
    }

    auto t = to_us(e.received_at);
    if (const auto* o = body_as<incident_opened>(e)) {
        auto& i = incidents_[o->incident_id];
        bool fresh = i.id.empty();
        i.id = o->incident_id;
        i.school = e.school;
        i.district = e.district;
        i.kind = o->kind;
        i.subject = o->subject;
        if (!o->title.empty()) i.title = o->title;
        // Derived events of a real incident carry status System.
        i.mode = e.status == status::system ? status::actual : e.status;
        i.severity = e.severity;
        i.minors = e.scope == scope::private_;
        if (fresh) i.opened_us = t;
        i.closed = false;
        if (o->due) i.due_us = to_us(*o->due);
        if (!e.references.empty()) {
            i.cause_id = e.references.front().str();
            if (auto c = offset_of_id_.find(i.cause_id);
                c != offset_of_id_.end() && c->second != e.offset &&
                std::find(i.timeline.begin(), i.timeline.end(), c->second) == i.timeline.end())
                i.timeline.push_back(c->second);
        }
        i.timeline.push_back(e.offset);
        i.updated_us = t;
        if (i.school.empty()) note_members(i, e);
        by_subject_[std::string(1, mode_char(e.status)) + "|" + e.school + "|" + o->subject] = i.id;
        return;
    }
    auto* i = incident_of(e) ? const_cast<incident_view*>(incident_of(e)) : nullptr;
    if (!i) return;
    i->timeline.push_back(e.offset);
    i->updated_us = t;
    if (i->school.empty()) note_members(*i, e);
    if (const auto* x = body_as<escalation_raised>(e)) {
        if (x->deadline) i->deadlines_us.push_back(to_us(*x->deadline));
    } else if (const auto* n = body_as<notification_requested>(e)) {
        i->message = n->text;
        i->message_names_minors = derived_names_minors(e);
        std::string who = std::string(enum_name(n->tier)) + ":";
        for (std::size_t k = 0; k < n->roles.size(); ++k)
            who += (k ? ", " : " ") + n->roles[k];
        if (std::find(i->told.begin(), i->told.end(), who) == i->told.end()) i->told.push_back(who);
    } else if (const auto* a = body_as<incident_acknowledged>(e)) {
        if (!i->closed) i->acknowledged = true;
        i->acked_by.push_back(e.actor + (a->note.empty() ? "" : " (" + a->note + ")"));
    } else if (body_as<incident_closed>(e)) {
        i->closed = true;
    } else if (body_as<incident_reopened>(e)) {
        i->closed = false;
    }
}

void console_view::note_members(incident_view& i, const event& e) const {
    if (!e.district.empty()) i.member_districts.insert(e.district);
    // The report that caused it, and for its opening every report of the
    // window (the engine lists them after the cause).
    for (const auto& ref : e.references) {
        auto c = offset_of_id_.find(ref.str());
        if (c == offset_of_id_.end()) continue;
        if (const auto* report = at(c->second); report && !report->school.empty()) {
            i.member_schools[report->school] = report->district;
            i.member_districts.insert(report->district);
        }
    }
}

std::vector<const event*> console_view::since(std::uint64_t from) const {
    std::vector<const event*> v;
    if (history_.empty()) return v;
    std::size_t first = 0;
    if (from > history_.front().offset)
        first = std::min<std::size_t>(history_.size(), from - history_.front().offset);
    for (std::size_t k = first; k < history_.size(); ++k)
        v.push_back(&history_[k]);
    return v;
}

std::uint64_t console_view::oldest_kept() const noexcept {
    return history_.empty() ? last_ + 1 : history_.front().offset;
}

const event* console_view::at(std::uint64_t offset) const {
    if (history_.empty() || offset < history_.front().offset || offset > history_.back().offset)
        return nullptr;
    return &history_[offset - history_.front().offset];
}

json console_view::event_json(const event& e) const {
    json j = to_json(e);
    j["school_name"] = e.school.empty() ? std::string("全市") : school_name(e.school);
    j["district_name"] = e.district.empty() ? std::string() : district_name(e.district);
    j["time_cst"] = format_local(e.received_at);
    j["level"] = std::string(level_of(e.severity));
    if (auto* i = incident_of(e)) j["incident"] = i->id;
    if (const auto* o = body_as<incident_opened>(e)) j["incident"] = o->incident_id;
    return j;
}

json console_view::incident_json(const incident_view& i) const {
    json j = json::object();
    j["id"] = i.id;
    j["school"] = i.school;
    j["school_name"] = i.school.empty() ? std::string("全市") : school_name(i.school);
    j["district"] = i.district;
    j["district_name"] = district_name(i.district);
    j["kind"] = i.kind;
    j["subject"] = i.subject;
    j["title"] = i.title;
    j["mode"] = std::string(enum_name(i.mode));
    j["severity"] = std::string(enum_name(i.severity));
    j["level"] = std::string(level_of(i.severity));
    j["state"] = i.closed ? "closed" : i.acknowledged ? "acknowledged" : "open";
    j["opened_at"] = us_text(i.opened_us);
    j["opened_cst"] = format_local(from_us(i.opened_us));
    j["message"] = i.message;
    j["told"] = i.told;
    j["acked_by"] = i.acked_by;
    if (i.school.empty()) {
        json schools = json::array();
        for (const auto& [code, district] : i.member_schools)
            schools.push_back({{"school", code},
                               {"school_name", school_name(code)},
                               {"district", district},
                               {"district_name", district_name(district)}});
        j["member_schools"] = std::move(schools);
        j["member_districts"] = i.member_districts;
    }
    // The next deadline still ahead on the broker's clock.
    std::optional<std::int64_t> next;
    auto consider = [&](std::int64_t d) {
        if (d > now_us_ && (!next || d < *next)) next = d;
    };
    if (i.due_us) consider(*i.due_us);
    for (auto d : i.deadlines_us)
        consider(d);
    j["next_deadline"] = next && !i.closed ? json(us_text(*next)) : json(nullptr);
    j["next_deadline_in_s"] = next && !i.closed ? json((*next - now_us_) / 1000000) : json(nullptr);
    j["timeline"] = i.timeline;
    return j;
}

std::optional<json> console_view::for_user(const event& e, const user& u, bool test,
                                           bool& minors_shown) const {
    minors_shown = false;
    if (u.disabled) return std::nullopt;
    if (e.status == status::test && !test) return std::nullopt;
    // An event of no school but of a district (a cross-school incident's, for
    // the district of the report that caused it) is that district's too.
    const std::set<std::string> own_district{e.district};
    if (!in_scope(u, e.school, e.district, e.district.empty() ? nullptr : &own_district))
        return std::nullopt;
    if (derived_names_minors(e)) {
        if (!u.minors_clearance) {
            event copy = e;
            if (auto* n = std::get_if<notification_requested>(&copy.body))
                n->text = std::string(redacted);
            if (auto* x = std::get_if<escalation_raised>(&copy.body))
                x->reason = std::string(redacted);
            return event_json(copy);
        }
        minors_shown = true;
        return event_json(e);
    }
    if (carries_minors_details(e.type())) {
        if (!u.minors_clearance) {
            event copy = e;
            redact_minors(copy);
            return event_json(copy);
        }
        // Nothing to record if the broker already redacted it (the console's
        // key has no clearance).
        minors_shown = shows_minors_details(e);
        return event_json(e);
    }
    return event_json(e);
}

std::optional<json> console_view::incident_for_user(const incident_view& i, const user& u,
                                                    bool test) const {
    if (u.disabled) return std::nullopt;
    if (i.mode == status::test && !test) return std::nullopt;
    if (!in_scope(u, i.school, i.district, &i.member_districts)) return std::nullopt;
    auto j = incident_json(i);
    if (i.message_names_minors && !u.minors_clearance) j["message"] = std::string(redacted);
    return j;
}

json console_view::places_for(const user& u) const {
    json districts = json::array();
    for (const auto& d : reg_.districts()) {
        if (u.scope.at == user_scope::level::district && d.code != u.scope.code) continue;
        double lat = 0, lon = 0;
        int n = 0;
        json schools = json::array();
        for (const auto& s : reg_.schools()) {
            if (s.district_code != d.code) continue;
            lat += s.lat;
            lon += s.lon;
            ++n;
            if (!in_scope(u, s.id, s.district_code)) continue;
            schools.push_back({{"id", s.id}, {"name", s.name}, {"lat", s.lat}, {"lon", s.lon}});
        }
        if (u.scope.at == user_scope::level::school && schools.empty()) continue;
        districts.push_back({{"code", d.code},
                             {"name", d.name},
                             {"lat", n ? lat / n : 0.0},
                             {"lon", n ? lon / n : 0.0},
                             {"schools", std::move(schools)}});
    }
    return districts;
}

} // namespace pingan::console
