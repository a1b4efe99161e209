// The staff's mobile page, served by every school service's intake.
//
// GET / is one self-contained page (web/mobile.html, compiled in at build
// time: no CDN, no file read at run time) and GET /sw.js its service worker,
// which keeps the page's assets on the phone so that it opens without a
// network. The page signs in with a staff token, kept in the page's storage
// and sent as `Authorization: Bearer` (never a cookie), and shows the forms
// of the routes the credential's roles may use. Reports made offline wait in
// IndexedDB with the event id made when the report was made, and are sent
// when the network returns.
//
// Two read routes, for a signed-in credential only:
//   GET /mobile/me              → who the credential is, its schools and routes
//   GET /mobile/status?school=S → S's open hazards and the credential's latest
//                                  reports (received, stored at offset N, the
//                                  incident it opened: state, tiers that
//                                  acknowledged it and when);
//                                  403 for a school outside its scope.
#pragma once

#include "credentials.hpp"
#include "net.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::svc {

// Returns: the page or its worker for GET `target`, or nothing if `target` is neither.
std::optional<response> mobile_asset(std::string_view target);

// Returns: {"name", "roles", "service", "routes": [...], "schools": [{"id", "name"}]}
// listing the routes of `routes` the credential may use and the schools it covers
// (at most `max_schools`).
nlohmann::json mobile_me(const credential& c, const registry& reg, std::string_view service,
                         const std::vector<std::string>& routes, std::size_t max_schools = 500);

// True if the credential's roles allow `route` (guard.hpp's policy_of).
bool route_allowed(const credential& c, std::string_view route);

// The value of `key` in a target's query string ("/x?school=A&b=1"), percent-decoded.
std::optional<std::string> query_param(std::string_view target, std::string_view key);

} // namespace pingan::svc
