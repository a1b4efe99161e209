// Hazard requests → hazard events.
#include "handle_request.hpp"

namespace pingan::svc::hazard {

decision report(json& req, const intake_context& ctx) {
    decision d;
    event e;
    read_envelope(req, ctx, e, d.errors);
    if (!req.contains("hazard_id") || req["hazard_id"].is_null())
        req["hazard_id"] = "HZ-" + e.id.str();
    read_body(hazard_reported::type, req, e, d.errors);
    auto* h = std::get_if<hazard_reported>(&e.body);
    if (!d.errors.empty() || !h) return d;

    if (h->grade == hazard_grade::major && !h->area_closed &&
        (!h->interim_control || h->interim_control->empty()))
        d.errors.push_back({"interim_control", errc::missing_field,
                            "interim_control: a major hazard needs an interim control measure "
                            "or area_closed: true"});
    if (h->deadline && *h->deadline < e.occurred_at)
        d.errors.push_back(
            {"deadline", errc::bad_value, "deadline: must not be before the hazard was found"});
    if (!d.errors.empty()) return d;

    if (h->grade == hazard_grade::general && !h->deadline)
        h->deadline = e.occurred_at + std::chrono::duration_cast<micros>(default_general_deadline);
    bool major = h->grade == hazard_grade::major;
    e.severity = major ? severity::severe : severity::moderate;
    e.urgency = major ? urgency::immediate : urgency::expected;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    d.answer["hazard_id"] = h->hazard_id;
    if (h->deadline) d.answer["deadline"] = format_utc(*h->deadline);
    d.events.push_back(std::move(e));
    return d;
}

decision rectify(json& req, const intake_context& ctx) {
    decision d;
    event e;
    read_envelope(req, ctx, e, d.errors);
    read_body(hazard_rectified::type, req, e, d.errors);
    if (!d.errors.empty()) return d;
    e.severity = severity::minor;
    e.urgency = urgency::past;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    d.answer["hazard_id"] = std::get<hazard_rectified>(e.body).hazard_id;
    d.events.push_back(std::move(e));
    return d;
}

decision verify(json& req, const intake_context& ctx) {
    decision d;
    event e;
    // The fixer, when the kiosk knows it, lets the service refuse a
    // self-verification at once (rule 3); the engine checks again from the log.
    std::optional<std::string> fixer;
    if (auto it = req.find("rectified_by"); it != req.end()) {
        if (it->is_string()) fixer = it->get<std::string>();
        req.erase(it);
    }
    read_envelope(req, ctx, e, d.errors);
    read_body(hazard_verified::type, req, e, d.errors);
    if (!d.errors.empty()) return d;
    const auto& v = std::get<hazard_verified>(e.body);
    if (fixer && *fixer == v.verifier) {
        d.errors.push_back({"verifier", errc::bad_value,
                            "verifier: must be someone other than the person who rectified it"});
        return d;
    }
    e.severity = v.result == verify_result::fail ? severity::moderate : severity::minor;
    e.urgency = urgency::past;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    d.answer["hazard_id"] = v.hazard_id;
    d.events.push_back(std::move(e));
    return d;
}

decision plan(json& req, const intake_context& ctx) {
    decision d;
    event e;
    read_envelope(req, ctx, e, d.errors);
    read_body(hazard_remediation_planned::type, req, e, d.errors);
    if (!d.errors.empty()) return d;
    const auto& p = std::get<hazard_remediation_planned>(e.body);
    e.severity = severity::moderate;
    e.urgency = urgency::expected;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    d.answer["hazard_id"] = p.hazard_id;
    d.answer["due"] = format_utc(p.due);
    d.events.push_back(std::move(e));
    return d;
}

decision appeal(json& req, const intake_context& ctx) {
    decision d;
    event e;
    read_envelope(req, ctx, e, d.errors);
    read_body(hazard_appealed::type, req, e, d.errors);
    if (!d.errors.empty()) return d;
    const auto& a = std::get<hazard_appealed>(e.body);
    // The school disputes a failure; a reporter disputes a pass.
    if (a.appellant == appellant::school && a.disputed != verify_result::fail)
        d.errors.push_back({"disputed", errc::bad_value,
                            "disputed: the school appeals a failed verification (fail); a "
                            "passed one is disputed by the reporter"});
    else if (a.appellant == appellant::reporter && a.disputed != verify_result::pass)
        d.errors.push_back({"disputed", errc::bad_value,
                            "disputed: the reporter appeals a passed verification (pass); a "
                            "failed one is disputed by the school"});
    if (!d.errors.empty()) return d;
    e.severity = severity::moderate;
    e.urgency = urgency::expected;
    e.certainty = certainty::observed;
    e.scope = scope::restricted;
    d.answer["hazard_id"] = a.hazard_id;
    d.answer["appeal_id"] = a.appeal_id;
    d.events.push_back(std::move(e));
    return d;
}

} // namespace pingan::svc::hazard
