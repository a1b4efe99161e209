// The service's watch over the incidents its reports opened.
#include "incidents.hpp"

#include "common/client.hpp"
#include "common/errc.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace pingan::svc {

using nlohmann::json;

std::string actor_tier(std::string_view identity, const registry& reg) {
    auto colon = identity.rfind(':');
    auto code = colon == std::string_view::npos ? identity : identity.substr(colon + 1);
    if (code.empty()) return "";
    if (reg.find(code)) return "school";
    if (reg.find_district(code)) return "district";
    if (code == "city") return "city";
    // A city's own code: "420500" for the districts 4205xx.
    if (code.size() == 6 && code.substr(4) == "00" &&
        std::any_of(reg.districts().begin(), reg.districts().end(),
                    [&](const auto& d) { return d.code.rfind(code.substr(0, 4), 0) == 0; }))
        return "city";
    return "";
}

incident_watch::incident_watch(boost::asio::io_context& io, std::string endpoint,
                               std::optional<curve_client> curve, std::chrono::milliseconds every,
                               const registry& reg, std::shared_ptr<spdlog::logger> log,
                               found_fn found)
    : io_(io), endpoint_(std::move(endpoint)), curve_(std::move(curve)), every_(every), reg_(reg),
      log_(std::move(log)), found_(std::move(found)) {}

incident_watch::~incident_watch() {
    stop();
}

void incident_watch::start() {
    if (endpoint_.empty() || thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
}

void incident_watch::stop() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void incident_watch::want(wanted w) {
    bool grew = false;
    {
        std::lock_guard lk(mu_);
        for (const auto& [school, ids] : w) {
            auto it = wanted_.find(school);
            for (const auto& [id, report] : ids)
                if (it == wanted_.end() || !it->second.count(id)) grew = true;
        }
        wanted_ = std::move(w);
        if (grew) poke_ = true;
    }
    if (grew) cv_.notify_all();
}

void incident_watch::run() {
    // Made when first needed and again after a failure: a process out of
    // descriptors cannot make a context or a socket (EMFILE), and that must
    // cost a round, never the thread (an exception leaving it ends the process).
    std::optional<zmq::context_t> ctx;
    std::unique_ptr<query_client> q;
    while (true) {
        wanted w;
        {
            std::unique_lock lk(mu_);
            if (stop_) break;
            w = wanted_;
        }
        if (!w.empty()) {
            try {
                if (!ctx) ctx.emplace(1);
                if (!q)
                    q = std::make_unique<query_client>(*ctx, endpoint_,
                                                       curve_ ? &*curve_ : nullptr);
            } catch (const std::exception& x) {
                if (!failing_)
                    log_->warn("incidents: no socket to the broker at {}: {}; trying again "
                               "every {} ms",
                               endpoint_, x.what(), every_.count());
                failing_ = true;
            }
            // A socket that lost its answer (or its handshake) starts afresh.
            if (q && !round(*q, w)) q.reset();
        }
        std::unique_lock lk(mu_);
        cv_.wait_for(lk, every_, [this] { return stop_ || poke_; });
        poke_ = false;
        if (stop_) break;
    }
}

bool incident_watch::round(query_client& q, const wanted& w) {
    const auto timeout = std::chrono::milliseconds(3000);
    try {
        for (const auto& [school, ids] : w) {
            {
                std::lock_guard lk(mu_);
                if (stop_) return true;
            }
            auto reply = q.request("INCIDENTS", json{{"school", school}}, timeout);
            for (const auto& inc : reply.value("incidents", json::array())) {
                if (!inc.is_object()) continue;
                auto cause = ids.find(inc.value("cause", ""));
                if (cause == ids.end()) continue;
                auto id = inc.value("id", "");
                json acks = json::array();
                auto by = inc.value("acknowledged_by", json::array());
                if (!by.empty()) {
                    auto& known = acks_[id];
                    if (known.first != by.size()) {
                        // The acknowledgements' times are in the incident's timeline.
                        json seen = json::array();
                        auto one = q.request("INCIDENT", json{{"id", id}}, timeout);
                        for (const auto& e : one.value("timeline", json::array())) {
                            if (!e.is_object() || e.value("type", "") != "incident.acknowledged")
                                continue;
                            auto tier = actor_tier(e.value("actor", ""), reg_);
                            if (std::any_of(seen.begin(), seen.end(),
                                            [&](const json& a) { return a["tier"] == tier; }))
                                continue;
                            seen.push_back({{"tier", tier}, {"at", e.value("received_at", "")}});
                        }
                        known = {by.size(), std::move(seen)};
                    }
                    acks = known.second;
                }
                json summary = {{"id", id},
                                {"kind", inc.value("kind", "")},
                                {"severity", inc.value("severity", "")},
                                {"state", inc.value("state", "")},
                                {"opened_at", inc.value("opened_at", json())},
                                {"closed_at", inc.value("closed_at", json())},
                                {"acknowledged", std::move(acks)}};
                boost::asio::post(io_, [f = found_, report = cause->second,
                                        s = std::move(summary)] { f(report, s); });
            }
        }
        if (failing_) log_->info("incidents: the broker at {} answers again", endpoint_);
        failing_ = false;
        return true;
    } catch (const std::exception& x) {
        if (!failing_)
            log_->warn("incidents: {}; the reports' incidents are asked again every {} ms{}",
                       x.what(), every_.count(), [&] {
                           auto* e = dynamic_cast<const error*>(&x);
                           return e && e->code() == errc::forbidden
                                      ? " (the service's key needs `query` in the broker's "
                                        "access table)"
                                      : "";
                       }());
        failing_ = true;
        return false;
    }
}

} // namespace pingan::svc
