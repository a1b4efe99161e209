// What a school service accepted, for the people who reported it: each
// request's events with the reporter and the broker's answer, and the school's
// hazards that are not closed yet.
//
// The mobile page reads it (GET /mobile/status): "stored at offset N" for
// each report of the signed-in person, and the incident it opened (its state,
// who acknowledged it: incidents.hpp), and the open hazards of a school. It
// also makes a resend harmless at the intake: a request that carries an id
// already accepted is answered from here, not accepted again (the broker
// stores an id once as well, but a drill record's derived events get new ids).
//
// LMDB in <data_dir>/reports (readable with mdb_dump): `reports` (event id
// text → JSON), `hazards` (school ‖ 0x1f ‖ hazard_id → JSON). A projection of
// what this service accepted: hazards reported through another service (a
// drill's findings) are that service's. One thread at a time (the io thread).
#pragma once

#include "common/event.hpp"
#include "common/lmdb.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

namespace pingan::svc {

class report_ledger {
  public:
    // Throws: pingan::error(io_error) naming the directory.
    explicit report_ledger(const std::string& dir);

    // Records a request's events (the first one's id names the request), the
    // route it came by, who reported them and the 202 answer; updates the open hazards.
    // Throws: pingan::error(store_failure).
    void record(std::span<const event> events, const std::string& route,
                const std::string& reporter, const nlohmann::json& answer, timestamp at);
    // The broker stored (or had stored) event `id` at `offset`.
    void stored(const event_id& id, std::uint64_t offset, bool duplicate);

    // What the broker says of the incident the request `id` opened
    // (incidents.hpp); for a report on minors (psych, bullying) only its state
    // and acknowledgements are kept.
    void incident(const std::string& id, const nlohmann::json& summary);
    // Returns: school → (event id → request id) of the requests accepted at or
    // after `since` (RFC 3339 UTC, as format_utc writes it) that the broker
    // stored and whose incident no one acknowledged and is not closed; a
    // request known to have opened none only if accepted at or after
    // `no_incident_since`.
    std::map<std::string, std::map<std::string, std::string>>
    unacknowledged(const std::string& since, const std::string& no_incident_since) const;

    // Returns: the request recorded under this id, or nothing.
    std::optional<nlohmann::json> find(const std::string& id) const;
    // Returns: the reporter's latest requests (newest first) for the schools
    // `covers` accepts, at most `max`.
    template <class Covers>
    nlohmann::json by_reporter(const std::string& reporter, Covers&& covers,
                               std::size_t max) const {
        return scan_reports(
            reporter, [&](const std::string& s) { return covers(s); }, max);
    }
    // Returns: the school's hazards not yet closed, oldest first.
    nlohmann::json open_hazards(const std::string& school) const;

  private:
    nlohmann::json scan_reports(const std::string& reporter,
                                const std::function<bool(const std::string&)>& covers,
                                std::size_t max) const;

    MDB_dbi reports_{}, hazards_{}; // before env_: its opening fills them in
    lmdb::env env_;
};

} // namespace pingan::svc
