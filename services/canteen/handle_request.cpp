// Canteen readings and requests → food events.
#include "handle_request.hpp"

#include "common/validate.hpp"

#include <cmath>
#include <cstdio>

namespace pingan::svc::canteen {
namespace {

std::string celsius_text(double c) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", c);
    return buf;
}

std::string range_text(food_zone z) {
    auto l = limits_for(z);
    if (std::isinf(l.low)) return "at most " + celsius_text(l.high) + " °C";
    if (std::isinf(l.high)) return "at least " + celsius_text(l.low) + " °C";
    return celsius_text(l.low) + "–" + celsius_text(l.high) + " °C";
}

void default_canteen(json& req, const event& e) {
    if ((!req.contains("canteen_id") || req["canteen_id"].is_null()) && !e.school.empty())
        req["canteen_id"] = e.school + "-main";
}

} // namespace

std::size_t sensors::in_excursion() const {
    std::size_t n = 0;
    for (const auto& [k, s] : states_)
        n += s.out;
    return n;
}

decision sensors::on_reading(const reading& r, const intake_context& ctx) {
    decision d;
    if (!ctx.schools.find(r.school)) {
        d.errors.push_back({"canteen_id", errc::unknown_school,
                            "canteen_id: school \"" + r.school + "\" is not in the registry"});
        return d;
    }
    event e;
    e.id = new_event_id(ctx.now.now());
    e.school = r.school;
    e.source = ctx.source + "/" + r.sensor_id;
    e.occurred_at = r.at ? *r.at : ctx.now.now();
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    e.urgency = urgency::past;
    auto l = limits_for(r.zone);
    bool outside = r.celsius < l.low || r.celsius > l.high;
    e.severity = outside ? severity::moderate : severity::minor;
    e.body = food_temp_reading{r.canteen_id, r.sensor_id, r.zone, r.celsius};
    if (auto p = validate(e)) {
        d.errors.push_back({field_of(p.detail), p.code, p.detail});
        return d;
    }

    auto key = r.canteen_id + "/" + r.sensor_id;
    auto& state = states_[key];
    auto step = observe(state, r.zone, r.celsius, e.occurred_at, opts_, e.id);
    d.events.push_back(e);
    if (step.action != cold_chain_action::alert && step.action != cold_chain_action::escalate)
        return d;

    bool escalate = step.action == cold_chain_action::escalate;
    event a;
    a.id = new_event_id(ctx.now.now());
    a.school = r.school;
    a.source = e.source;
    a.occurred_at = e.occurred_at;
    a.severity = escalate ? severity::severe : severity::moderate;
    a.urgency = urgency::immediate;
    a.certainty = certainty::observed;
    a.scope = scope::restricted;
    if (!state.first_reading.is_nil()) a.references.push_back(state.first_reading);
    a.references.push_back(e.id);
    food_alert fa;
    fa.canteen_id = r.canteen_id;
    fa.kind = food_alert_kind::cold_chain;
    fa.zone = r.zone;
    fa.celsius = step.worst;
    fa.duration_seconds = std::chrono::duration_cast<std::chrono::seconds>(step.duration).count();
    auto minutes = std::chrono::duration_cast<std::chrono::minutes>(step.duration).count();
    fa.description = std::string(enum_name(r.zone)) + " sensor " + r.sensor_id + " outside " +
                     range_text(r.zone) + " for " + std::to_string(minutes) + " min (worst " +
                     celsius_text(step.worst) + " °C)" + (escalate ? ": quarantine the stock" : "");
    a.body = std::move(fa);
    d.events.push_back(std::move(a));
    return d;
}

decision sample(json& req, const intake_context& ctx) {
    decision d;
    event e;
    read_envelope(req, ctx, e, d.errors);
    default_canteen(req, e);
    if (!req.contains("stored_at") || req["stored_at"].is_null())
        req["stored_at"] = format_utc(e.occurred_at);
    read_body(food_sample::type, req, e, d.errors);
    if (!d.errors.empty()) return d;
    const auto& s = std::get<food_sample>(e.body);
    e.severity = s.grams < min_sample_grams ? severity::moderate : severity::minor;
    e.urgency = urgency::past;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    d.answer["meets_minimum"] = s.grams >= min_sample_grams;
    d.answer["minimum_grams"] = min_sample_grams;
    d.events.push_back(std::move(e));
    return d;
}

decision accompany(json& req, const intake_context& ctx) {
    decision d;
    event e;
    read_envelope(req, ctx, e, d.errors);
    default_canteen(req, e);
    read_body(food_accompany::type, req, e, d.errors);
    if (!d.errors.empty()) return d;
    e.severity = severity::minor;
    e.urgency = urgency::past;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    d.events.push_back(std::move(e));
    return d;
}

decision illness(json& req, const intake_context& ctx) {
    decision d;
    event e;
    if (auto it = req.find("kind"); it != req.end()) {
        if (*it != "illness")
            d.errors.push_back({"kind", errc::bad_value, "kind: this route takes illness only"});
        req.erase(it);
    }
    read_envelope(req, ctx, e, d.errors);
    default_canteen(req, e);
    req["kind"] = "illness";
    if (!req.contains("description")) req["description"] = "";
    read_body(food_alert::type, req, e, d.errors);
    if (!d.errors.empty()) return d;
    const auto& a = std::get<food_alert>(e.body);
    if (a.cases == 0)
        d.errors.push_back({"cases", errc::bad_value, "cases: at least one person must be ill"});
    if (!a.meal_id)
        d.errors.push_back(
            {"meal_id", errc::missing_field, "meal_id: name the meal (e.g. 2026-11-29-lunch)"});
    if (!d.errors.empty()) return d;
    bool serious = a.deaths > 0 || a.cases >= 5;
    e.severity = serious ? severity::extreme : severity::severe;
    e.urgency = urgency::immediate;
    e.certainty = certainty::likely; // suspected until the CDC says otherwise
    e.scope = scope::restricted;
    d.events.push_back(std::move(e));
    return d;
}

} // namespace pingan::svc::canteen
