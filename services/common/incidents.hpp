// What became of the reports a school service accepted, asked of the broker:
// which incident a report opened (the incident whose `cause` is one of the
// report's event ids), its state, and which tiers acknowledged it and when.
//
// The watch runs on its own thread with its own ZeroMQ context and DEALER on
// the broker's query socket (with the service's CURVE key), so the HTTP io
// thread never waits for the broker. The io thread tells it what to look for
// (want()); every `every` while something is wanted, it asks INCIDENTS for each
// school concerned, and for an incident that was acknowledged, INCIDENT once
// for the acknowledgements' times; it hands each finding to `found` on the io
// thread. A broker that does not answer, or refuses (a key without `query`),
// is logged once and asked again later; nothing else depends on it.
#pragma once

#include "common/curve.hpp"
#include "common/registry.hpp"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace pingan {
class query_client;
}

namespace pingan::svc {

// The tier of an acknowledging actor's identity ("bureau:420502" → "district",
// "school:420502K001" → "school", "...:city" → "city"), read from the registry
// code after its last ':'; "" when the identity names none.
std::string actor_tier(std::string_view identity, const registry& reg);

class incident_watch {
  public:
    // school → (event id → the id of the report that carried it)
    using wanted = std::map<std::string, std::map<std::string, std::string>>;
    // On the io thread: the report's id and what the broker says of its incident:
    // {"id", "kind", "severity", "state", "opened_at", "closed_at",
    //  "acknowledged": [{"tier", "at"}, ...]} (the first acknowledgement of each tier).
    using found_fn = std::function<void(const std::string& report, nlohmann::json incident)>;

    incident_watch(boost::asio::io_context& io, std::string endpoint,
                   std::optional<curve_client> curve, std::chrono::milliseconds every,
                   const registry& reg, std::shared_ptr<spdlog::logger> log, found_fn found);
    ~incident_watch();
    incident_watch(const incident_watch&) = delete;
    incident_watch& operator=(const incident_watch&) = delete;

    void start();
    void stop();
    // Replaces what to look for (any thread); asks at once if it grew.
    void want(wanted w);

  private:
    void run();
    // Returns: false if the broker did not answer or refused.
    bool round(query_client& q, const wanted& w);

    boost::asio::io_context& io_;
    std::string endpoint_;
    std::optional<curve_client> curve_;
    std::chrono::milliseconds every_;
    const registry& reg_;
    std::shared_ptr<spdlog::logger> log_;
    found_fn found_;

    std::mutex mu_;
    std::condition_variable cv_;
    wanted wanted_;
    bool poke_ = false;
    bool stop_ = false;
    std::thread thread_;
    // incident id → (acknowledgers seen, the acknowledgements found): the
    // timeline is asked for again only when someone else acknowledged.
    std::map<std::string, std::pair<std::size_t, nlohmann::json>> acks_;
    bool failing_ = false;
};

} // namespace pingan::svc
