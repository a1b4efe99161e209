// Live-feed handshakes for tests: a subscription is known to be in force once
// the subscriber has received an event on it, never after a fixed wait.
//
// The broker reads subscription notices from its XPUB socket when it next
// publishes (broker/server/writer.cpp, track_subscriptions), so a probe event
// stored after a subscriber's notice arrived reaches that subscriber.
#pragma once

#include "common/client.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pingan::test {

// Receives feed messages until the one at `offset` (the feed keeps log order
// on a connection), or fails when none comes within `limit` of the last.
// Returns: the messages, the one at `offset` last.
// Throws: std::runtime_error when the feed stops short of `offset`.
inline std::vector<feed_client::message>
feed_until(feed_client& f, std::uint64_t offset,
           std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::vector<feed_client::message> got;
    while (got.empty() || got.back().offset < offset) {
        auto m = f.receive(limit);
        if (!m)
            throw std::runtime_error(
                "the feed subscriber received nothing for " + std::to_string(limit.count()) +
                " ms while waiting for offset " + std::to_string(offset) +
                (got.empty() ? std::string(" (nothing at all)")
                             : " (last offset " + std::to_string(got.back().offset) + ")"));
        got.push_back(std::move(*m));
    }
    return got;
}

// Confirms that every subscriber's subscriptions are in force: stores probe
// events with `publish_probe` (one per call; returns its offset) until each
// subscriber has received one, then reads each feed up to the last probe, so
// that what the test publishes next is the next thing each one receives.
// Each subscriber must have subscribed to a topic of the probe events, after
// any subscription the test means the broker to refuse (a connection's
// notices are read in order). Events the broker derives from a probe (rules)
// may still follow it.
// Returns: the offset of the last probe.
// Throws: std::runtime_error when some subscriber received no probe within `limit`.
template <class Publish>
std::uint64_t confirm_feed(const std::vector<feed_client*>& subscribers, Publish publish_probe,
                           std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto until = std::chrono::steady_clock::now() + limit;
    std::vector<std::uint64_t> seen(subscribers.size(), 0); // offset received last; 0: none yet
    std::uint64_t last = 0;
    for (std::size_t waiting = subscribers.size(); waiting > 0;) {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error(std::to_string(waiting) + " of " +
                                     std::to_string(subscribers.size()) +
                                     " feed subscribers received no probe event within " +
                                     std::to_string(limit.count()) + " ms");
        last = publish_probe();
        for (std::size_t i = 0; i < subscribers.size(); ++i) {
            if (seen[i]) continue;
            if (auto m = subscribers[i]->receive(std::chrono::milliseconds(100))) {
                seen[i] = m->offset;
                --waiting;
            }
        }
    }
    // Drain: each feed up to the last probe.
    for (std::size_t i = 0; i < subscribers.size(); ++i)
        if (seen[i] < last) feed_until(*subscribers[i], last);
    return last;
}

} // namespace pingan::test
