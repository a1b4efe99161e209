// The broker's day in its log, at info level: one line per incident opened,
// escalated, acknowledged, overdue and closed, per refused request (its code
// and client), per slow commit, and a summary at a fixed interval (events
// stored, refusals, feed subscriptions, queue and the slowest commit).
//
// Each line is a short text and key=value fields (common/log_format.hpp), so
// that `--log-format json` gives the same facts as JSON fields. Event bodies
// are never logged: an incident line carries ids, the school, kind, rule,
// tier and severity, never a title or a classified value.
#pragma once

#include "broker/store/store.hpp"
#include "common/errc.hpp"

#include <chrono>
#include <cstddef>
#include <string_view>

namespace pingan::day_log {

// Commits that take longer than this are logged (default 250 ms).
void set_slow_commit(std::chrono::microseconds threshold) noexcept;

// Writer: what a durable commit stored; logs its incident events.
void stored(const batch_output& out);
// Writer: one group commit of `events` events that took `took`.
void committed(std::size_t events, std::chrono::steady_clock::duration took);
// Ingest and query: a refused request, or the refused events of one request
// (`refused` of `events`; `id` the first refused event's id, if any).
void refused(std::string_view what, errc code, std::string_view client, std::string_view detail,
             std::size_t refused = 1, std::size_t events = 0, std::string_view id = {});
// The summary of the interval since the last call (main's timer).
void summary(std::size_t subscriptions, std::size_t queued);

} // namespace pingan::day_log
