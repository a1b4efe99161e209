// The incident, refusal, slow-commit and summary lines of the broker's log.
#include "broker/server/day_log.hpp"

#include "common/codec.hpp"
#include "common/log_format.hpp"

#include <spdlog/spdlog.h>

#include <atomic>

namespace pingan::day_log {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;
std::atomic<std::int64_t> slow_us{250'000};
std::atomic<std::uint64_t> events_since{0}, refusals_since{0}, slowest_us{0};

bool incident_type(std::string_view t) {
    return t == incident_opened::type || t == escalation_raised::type ||
           t == incident_acknowledged::type || t == incident_overdue::type ||
           t == incident_closed::type;
}

void log_incident(const event& e) {
    auto school = log_value(e.school.empty() ? "-" : e.school);
    if (const auto* b = std::get_if<incident_opened>(&e.body)) {
        spdlog::info("incident opened incident={} school={} kind={} rule={} severity={} status={} "
                     "offset={}",
                     log_value(b->incident_id), school, log_value(b->kind), log_value(b->rule_id),
                     enum_name(e.severity), enum_name(e.status), e.offset);
    } else if (const auto* b = std::get_if<escalation_raised>(&e.body)) {
        spdlog::info("incident escalated incident={} school={} tier={} rule={} late={} offset={}",
                     log_value(b->incident_id), school, enum_name(b->tier), log_value(b->rule_id),
                     b->late, e.offset);
    } else if (const auto* b = std::get_if<incident_acknowledged>(&e.body)) {
        spdlog::info("incident acknowledged incident={} school={} by={} offset={}",
                     log_value(b->incident_id), school, log_value(e.actor), e.offset);
    } else if (const auto* b = std::get_if<incident_overdue>(&e.body)) {
        spdlog::info("incident overdue incident={} school={} rule={} offset={}",
                     log_value(b->incident_id), school, log_value(b->rule_id), e.offset);
    } else if (const auto* b = std::get_if<incident_closed>(&e.body)) {
        spdlog::info("incident closed incident={} school={} rule={} reason={} offset={}",
                     log_value(b->incident_id), school, log_value(b->rule_id), log_value(b->reason),
                     e.offset);
    }
}

} // namespace

void set_slow_commit(std::chrono::microseconds threshold) noexcept {
    slow_us.store(threshold.count(), relaxed);
}

void stored(const batch_output& out) {
    events_since.fetch_add(out.stored.size(), relaxed);
    if (!spdlog::should_log(spdlog::level::info)) return;
    for (const auto& r : out.stored) {
        auto bytes = r.bytes();
        event_head h;
        if (!peek(bytes, h) || !incident_type(h.type)) continue;
        event e;
        if (decode(bytes, e)) continue;
        e.offset = r.offset;
        log_incident(e);
    }
}

void committed(std::size_t events, std::chrono::steady_clock::duration took) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
    auto prev = slowest_us.load(relaxed);
    while (static_cast<std::uint64_t>(us) > prev &&
           !slowest_us.compare_exchange_weak(prev, static_cast<std::uint64_t>(us), relaxed)) {
    }
    if (us > slow_us.load(relaxed))
        spdlog::info("slow commit events={} ms={:.1f} threshold_ms={:.1f}", events,
                     static_cast<double>(us) / 1000.0,
                     static_cast<double>(slow_us.load(relaxed)) / 1000.0);
}

void refused(std::string_view what, errc code, std::string_view client, std::string_view detail,
             std::size_t refused, std::size_t events, std::string_view id) {
    refusals_since.fetch_add(refused, relaxed);
    // A long reason is cut: the code and the client say what happened.
    constexpr std::size_t most = 200;
    std::string why(detail.substr(0, most));
    if (detail.size() > most) why += "…";
    if (events)
        spdlog::info("refused {} code={} client={} refused={} events={} id={} reason={}", what,
                     errc_name(code), log_value(client.empty() ? "-" : client), refused, events,
                     log_value(id.empty() ? "-" : id), log_value(why));
    else
        spdlog::info("refused {} code={} client={} reason={}", what, errc_name(code),
                     log_value(client.empty() ? "-" : client), log_value(why));
}

void summary(std::size_t subscriptions, std::size_t queued) {
    auto events = events_since.exchange(0, relaxed);
    auto refusals = refusals_since.exchange(0, relaxed);
    auto slowest = slowest_us.exchange(0, relaxed);
    spdlog::info("summary events={} refusals={} subscriptions={} queued={} lag_ms={:.1f}", events,
                 refusals, subscriptions, queued, static_cast<double>(slowest) / 1000.0);
}

} // namespace pingan::day_log
