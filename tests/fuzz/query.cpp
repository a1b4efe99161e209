// Fuzzes the broker's query socket: a message's frames (split at NUL bytes)
// read as the broker reads them (parse_query_request), then its JSON
// parameters through every command's parser, whatever the command (REPLAY,
// CREDIT, CLOCK, CHECKPOINT, ACCESS, INCIDENTS, INCIDENT). What a replay
// selects and the place an incident command names then go through the scope
// decisions (may_query, check_place) of a city, a district and a school
// client, which must never widen a scoped client's view.
#include "broker/admission/query_params.hpp"
#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using namespace pingan;

// A scoped client's narrowed filter stays within its scope.
void check_scope(const principal& p, const scan_filter& f, const registry& reg) {
    if (p.city) return;
    if (!p.school.empty()) {
        if (f.school != p.school) __builtin_trap();
        if (!f.district.empty() && f.district != p.home_district) __builtin_trap();
        return;
    }
    if (f.district != p.district) __builtin_trap();
    if (!f.school.empty()) {
        const auto* s = reg.find(f.school);
        if (!s || s->district_code != p.district) __builtin_trap();
    }
}

void params_of_every_command(const json& params) {
    static const fuzz::clients who;
    const auto& reg = fuzz::schools();

    replay_params rp;
    if (!parse_replay_params(params, rp)) {
        if (rp.json && rp.packed) __builtin_trap();
        for (const principal* p : {&who.city, &who.district, &who.school}) {
            auto f = rp.filter;
            if (!may_query(*p, f, reg)) check_scope(*p, f, reg);
        }
    }
    std::uint64_t credit = 0;
    (void)parse_credit_params(params, credit);
    clock_params cp;
    if (!parse_clock_params(params, cp)) {
        if (!cp.moves && (cp.set || cp.advance)) __builtin_trap();
        if (cp.moves && cp.set.has_value() == cp.advance.has_value()) __builtin_trap();
        if (cp.advance && cp.advance->count() < 0) __builtin_trap();
    }
    bool now = false;
    (void)parse_checkpoint_params(params, now);
    (void)parse_access_params(params);
    incidents_params ip;
    if (!parse_incidents_params(params, ip))
        for (const principal* p :
             {static_cast<const principal*>(nullptr), &who.city, &who.district, &who.school})
            if (!check_place(reg, p, ip.school, ip.district) && p && !p->city) {
                // Allowed: the place is the client's own, or within it.
                if (!p->school.empty() && !ip.school.empty() && ip.school != p->school)
                    __builtin_trap();
                if (!p->district.empty() && !ip.district.empty() && ip.district != p->district)
                    __builtin_trap();
            }
    incident_params one;
    if (!parse_incident_params(params, one)) {
        if (one.id.empty() == one.subject.empty()) __builtin_trap();
        for (const principal* p : {&who.city, &who.district, &who.school})
            (void)check_place(reg, p, one.school, {});
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto frames =
        pingan::fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), '\0', 16);
    auto r = pingan::parse_query_request(frames);
    if (!r) {
        if (frames.size() >= 2) __builtin_trap();
        return 0;
    }
    if (r->tag.size() > pingan::wire::max_tag) __builtin_trap();
    if (r->key_frame >= frames.size()) __builtin_trap();
    if (!r->params.is_object()) __builtin_trap();
    if (!r->refused) params_of_every_command(r->params);
    return 0;
}
