// Redaction of minors' details.
#include "common/privacy.hpp"

namespace pingan {
namespace {

void redact_all(std::vector<std::string>& v) {
    for (auto& x : v)
        x = std::string(redacted);
}

} // namespace

bool carries_minors_details(std::string_view type) noexcept {
    return type == psych_alert::type || type == bullying_reported::type;
}

bool redact_minors(event& e) {
    if (auto* p = std::get_if<psych_alert>(&e.body)) {
        p->student_ref = std::string(redacted);
        redact_all(p->indicator_codes);
        return true;
    }
    if (auto* b = std::get_if<bullying_reported>(&e.body)) {
        redact_all(b->victim_refs);
        redact_all(b->actor_refs);
        return true;
    }
    return false;
}

} // namespace pingan
