// The live feed's subscriptions: what a subscriber's notice on the XPUB
// socket says, and the prefixes subscribed now. Apart from the writer thread
// that receives the notices and publishes (writer.cpp), so that the same code
// is fuzzed (tests/fuzz/feed.cpp). Whether a client may subscribe to a prefix
// is may_subscribe (access.hpp).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pingan {

// A subscriber's notice: byte 1 (subscribe) or 0 (unsubscribe), then the topic prefix.
struct feed_notice {
    bool subscribe = false;
    std::string prefix;
};
// Returns: the notice, or nothing for an empty message or a first byte other
// than 0 or 1 (not a notice: ignored).
std::optional<feed_notice> parse_feed_notice(std::string_view message);

// The prefixes subscribed now, each with its live subscriptions. An event
// whose topic no prefix begins is not sent at all.
class feed_subscriptions {
  public:
    // Counts a subscribe; an unsubscribe ends one, and the prefix with its last.
    void apply(const feed_notice& n);
    // Returns: true if some subscribed prefix begins `topic`.
    bool wanted(std::string_view topic) const;
    // Prefixes subscribed now.
    std::size_t size() const noexcept { return active_.size(); }
    bool empty() const noexcept { return active_.empty(); }

  private:
    std::map<std::string, int, std::less<>> active_; // prefix -> live subscriptions
};

} // namespace pingan
