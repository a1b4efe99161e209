// Drill records → drill, hazard and exercise incident events.
#include "handle_request.hpp"

#include "common/validate.hpp"

namespace pingan::svc::drill {
namespace {

// A problem is a line of text, or an object with a description and
// optionally the hazard's area, grade and location.
struct finding {
    std::string description;
    hazard_area area = hazard_area::building;
    hazard_grade grade = hazard_grade::general;
    std::string location;
};

void read_findings(json& req, std::vector<finding>& out, problems& errs) {
    auto it = req.find("problems");
    if (it == req.end() || it->is_null()) return;
    if (!it->is_array()) {
        errs.push_back({"problems", errc::wrong_type, "problems: expected an array"});
        req.erase(it);
        return;
    }
    json texts = json::array();
    for (std::size_t i = 0; i < it->size(); ++i) {
        const auto& p = (*it)[i];
        auto where = "problems[" + std::to_string(i) + "]";
        finding f;
        if (p.is_string()) {
            f.description = p.get<std::string>();
        } else if (p.is_object() && p.contains("description") && p["description"].is_string()) {
            f.description = p["description"].get<std::string>();
            if (auto a = p.find("area"); a != p.end()) {
                auto v =
                    a->is_string() ? enum_parse<hazard_area>(a->get<std::string>()) : std::nullopt;
                if (!v) {
                    errs.push_back(
                        {"problems", errc::unknown_enum,
                         where + ".area: expected one of " + enum_choices<hazard_area>()});
                    continue;
                }
                f.area = *v;
            }
            if (auto g = p.find("grade"); g != p.end()) {
                auto v =
                    g->is_string() ? enum_parse<hazard_grade>(g->get<std::string>()) : std::nullopt;
                if (!v) {
                    errs.push_back(
                        {"problems", errc::unknown_enum, where + ".grade: general or major"});
                    continue;
                }
                f.grade = *v;
            }
            if (auto l = p.find("location"); l != p.end() && l->is_string())
                f.location = l->get<std::string>();
        } else {
            errs.push_back({"problems", errc::wrong_type,
                            where + ": expected a string or {\"description\": ...}"});
            continue;
        }
        texts.push_back(f.description);
        out.push_back(std::move(f));
    }
    *it = std::move(texts);
}

} // namespace

decision record(json& req, const intake_context& ctx) {
    decision d;
    bool simulate_alarm = false;
    if (auto it = req.find("simulated_alarm"); it != req.end()) {
        if (!it->is_boolean())
            d.errors.push_back(
                {"simulated_alarm", errc::wrong_type, "simulated_alarm: true or false"});
        else
            simulate_alarm = it->get<bool>();
        req.erase(it);
    }
    std::vector<finding> findings;
    read_findings(req, findings, d.errors);
    for (const char* computed : {"evacuation_seconds", "target_seconds"})
        if (req.contains(computed)) {
            d.errors.push_back(
                {computed, errc::bad_value,
                 std::string(computed) + ": computed by the service; do not send it"});
            req.erase(computed);
        }

    event e;
    read_envelope(req, ctx, e, d.errors);
    if (e.status == status::exercise) e.status = status::actual; // see the header
    const school* sch = ctx.schools.find(e.school);
    if (!req.contains("drill_id") || req["drill_id"].is_null())
        req["drill_id"] = "DR-" + e.id.str();
    if ((!req.contains("floors") || req["floors"].is_null()) && sch)
        req["floors"] = sch->max_floors;
    read_body(drill_recorded::type, req, e, d.errors);
    if (!d.errors.empty() || !sch) return d;

    auto& r = std::get<drill_recorded>(e.body);
    auto evac = std::chrono::duration_cast<std::chrono::seconds>(r.all_clear_at - r.started_at);
    r.evacuation_seconds = static_cast<std::uint32_t>(evac.count());
    school building = *sch;
    if (r.floors) building.max_floors = r.floors;
    r.target_seconds = evacuation_target_seconds(building);
    bool too_slow = r.evacuation_seconds > r.target_seconds;
    bool headcount_off = r.headcount_expected != r.headcount_reported;
    if (too_slow && r.corrective_actions.empty())
        r.corrective_actions.push_back(
            "evacuation took " + std::to_string(r.evacuation_seconds) + " s against a target of " +
            std::to_string(r.target_seconds) + " s: corrective action due before the next drill");
    e.occurred_at = r.all_clear_at;
    e.severity = (r.injuries || headcount_off) ? severity::severe
                 : too_slow                    ? severity::moderate
                                               : severity::minor;
    e.urgency = (r.injuries || headcount_off) ? urgency::immediate : urgency::past;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    if (auto p = validate(e)) {
        d.errors.push_back({field_of(p.detail), p.code, p.detail});
        return d;
    }
    // The simulated alarm happened when the drill started.
    if (to_us(r.started_at) <= 0) {
        d.errors.push_back({"started_at", errc::bad_value, "body.started_at is before 1970"});
        return d;
    }

    if (simulate_alarm) {
        event alarm;
        alarm.id = new_event_id(ctx.now.now());
        alarm.school = e.school;
        alarm.source = e.source;
        alarm.occurred_at = r.started_at;
        alarm.status = status::exercise;
        alarm.severity = severity::severe;
        alarm.urgency = urgency::immediate;
        alarm.certainty = certainty::observed;
        alarm.scope = scope::restricted;
        incident_reported inc;
        inc.incident_id = "EX-" + r.drill_id;
        inc.category = r.kind == drill_type::earthquake ? incident_category::disaster
                       : r.kind == drill_type::intruder ? incident_category::social_security
                                                        : incident_category::accident;
        inc.reporter_role = "safety_officer";
        inc.summary = "EXERCISE: simulated " + std::string(enum_name(r.kind)) +
                      " alarm for drill " + r.drill_id;
        alarm.body = std::move(inc);
        e.references.push_back(alarm.id);
        d.events.push_back(std::move(alarm));
    }
    auto drill_id = e.id;
    d.events.push_back(e);

    std::size_t n = 0;
    for (auto& f : findings) {
        event h;
        h.id = new_event_id(ctx.now.now());
        h.school = e.school;
        h.source = e.source;
        h.occurred_at = r.all_clear_at;
        h.severity = f.grade == hazard_grade::major ? severity::severe : severity::moderate;
        h.urgency = f.grade == hazard_grade::major ? urgency::immediate : urgency::expected;
        h.certainty = certainty::observed;
        h.scope = scope::restricted;
        h.references.push_back(drill_id);
        hazard_reported hz;
        hz.hazard_id = "HZ-" + r.drill_id + "-" + std::to_string(++n);
        hz.area = f.area;
        hz.grade = f.grade;
        hz.description = f.description;
        hz.location = f.location.empty() ? "drill " + r.drill_id : f.location;
        hz.found_by = "drill:" + r.drill_id;
        if (f.grade == hazard_grade::general)
            hz.deadline = r.all_clear_at + std::chrono::duration_cast<micros>(std::chrono::days(7));
        else
            hz.interim_control = "found in a drill; interim control to be decided by the principal";
        h.body = std::move(hz);
        if (auto p = validate(h)) {
            d.errors.push_back(
                {"problems", p.code, "problems[" + std::to_string(n - 1) + "]: " + p.detail});
            continue;
        }
        d.events.push_back(std::move(h));
    }
    if (!d.errors.empty()) {
        d.events.clear();
        return d;
    }
    d.answer["drill_id"] = r.drill_id;
    d.answer["evacuation_seconds"] = r.evacuation_seconds;
    d.answer["target_seconds"] = r.target_seconds;
    d.answer["within_target"] = !too_slow;
    d.answer["headcount_matches"] = !headcount_off;
    d.answer["hazards_reported"] = n;
    return d;
}

} // namespace pingan::svc::drill
