// Psych alert requests → pseudonymous psych.alert events.
#include "handle_request.hpp"

namespace pingan::svc::wellbeing {
namespace {

// Keys a counsellor's form might carry that must never be published; named
// here to answer with a clear reason instead of "unknown field".
constexpr std::string_view never_published[] = {
    "student_name", "name", "note", "notes", "narrative", "description", "comment", "scale_scores"};

} // namespace

decision psych_alert(json& req, const intake_context& ctx, const school_keys& keys) {
    decision d;
    std::string student_id;
    if (auto it = req.find("student_id"); it == req.end() || it->is_null()) {
        d.errors.push_back({"student_id", errc::missing_field, "student_id is required"});
    } else if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
        d.errors.push_back(
            {"student_id", errc::wrong_type, "student_id: expected a non-empty string"});
    } else {
        student_id = it->get<std::string>();
    }
    req.erase("student_id");
    if (req.contains("student_ref"))
        d.errors.push_back({"student_ref", errc::bad_value,
                            "student_ref: made by this service from student_id; do not send it"});
    req.erase("student_ref");
    for (auto key : never_published) {
        if (req.contains(key)) {
            d.errors.push_back({std::string(key), errc::bad_value,
                                std::string(key) +
                                    ": names and free text are never published; keep them in the "
                                    "school's case system"});
            req.erase(std::string(key));
        }
    }

    event e;
    read_envelope(req, ctx, e, d.errors);
    e.scope = scope::private_;
    if (!req.contains("alert_id") || req["alert_id"].is_null())
        req["alert_id"] = "PA-" + e.id.str();
    // Placeholder until the school's key is known; replaced below.
    req["student_ref"] = "S-pending";
    read_body(pingan::psych_alert::type, req, e, d.errors);
    if (!d.errors.empty()) return d;

    const auto* key = keys.find(e.school);
    if (!key) {
        d.errors.push_back({"school", errc::bad_config,
                            "school: this service has no pseudonym key for " + e.school});
        return d;
    }
    auto& a = std::get<pingan::psych_alert>(e.body);
    a.student_ref = student_ref(*key, e.school, student_id);

    // Defence in depth: the raw id must appear nowhere in what is published,
    // not even inside a code a form let through.
    if (student_id.size() >= 3) {
        auto text = to_json_line(e);
        if (text.find(student_id) != std::string::npos) {
            d.errors.push_back(
                {"", errc::bad_value,
                 "the student's id appears in another field; it is never published"});
            return d;
        }
    }
    switch (a.level) {
    case risk_level::red:
        e.severity = severity::extreme;
        e.urgency = urgency::immediate;
        break;
    case risk_level::orange:
        e.severity = severity::severe;
        e.urgency = urgency::expected;
        break;
    case risk_level::yellow:
        e.severity = severity::moderate;
        e.urgency = urgency::future;
        break;
    }
    e.certainty = certainty::likely;
    // The answer never carries the reference: whoever can reach the intake
    // could otherwise post an alert for a guessed id and read back its pseudonym.
    d.answer["alert_id"] = a.alert_id;
    d.events.push_back(std::move(e));
    return d;
}

} // namespace pingan::svc::wellbeing
