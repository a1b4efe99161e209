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

// Where a notice came from.
enum class notice_source {
    // Without authentication XPUB passes on a prefix's first subscribe and
    // last unsubscribe, for all subscribers together.
    shared,
    // With authentication (XPUB_MANUAL) every notice a subscriber sends is
    // passed on, with the subscriber's key: duplicates, and unsubscribes of
    // prefixes it never subscribed to.
    subscriber,
    // With authentication, libzmq's notice that a connection closed: one
    // unsubscribe per prefix that connection asked for, allowed or not,
    // without a key.
    closed_connection,
};

// What to do on the socket for a notice (XPUB_MANUAL applies only what the
// writer applies, and only to the connection that sent the notice).
enum class feed_action { none, subscribe, unsubscribe };

// The prefixes subscribed now. An event whose topic no prefix begins is not
// sent at all, so the counts must never fall to zero while a subscriber still
// holds a prefix: one subscriber must not be able to stop another's feed.
// Without knowing the connection, a subscriber's own unsubscribe (which its
// connection applies to itself) does not change a count; a count falls only
// when a connection closes, first from the prefixes that were refused. A
// count may so stay above zero after an explicit unsubscribe or a repeated
// subscribe on one connection (libzmq reports a closed connection's prefix
// once): events are then prepared for a prefix nobody reads, and the socket
// sends them to no one.
class feed_subscriptions {
  public:
    // Counts the notice. `allowed`: may the sender subscribe to the prefix
    // (may_subscribe; only read for a subscriber's subscribe).
    // Returns: what to apply to the socket for the connection that sent it.
    feed_action apply(const feed_notice& n, notice_source from, bool allowed = true);
    // Returns: true if some subscribed prefix begins `topic`.
    bool wanted(std::string_view topic) const;
    // Prefixes subscribed now.
    std::size_t size() const noexcept { return held_; }
    bool empty() const noexcept { return held_ == 0; }

  private:
    struct counts {
        int applied = 0; // subscriptions in force
        int refused = 0; // subscriptions asked for and refused, until their connection closes
    };
    std::map<std::string, counts, std::less<>> active_;
    std::size_t held_ = 0; // prefixes with applied > 0
};

} // namespace pingan
