// The live feed's subscription notices and the prefixes subscribed (feed_subscriptions.hpp).
#include "broker/admission/feed_subscriptions.hpp"

namespace pingan {

std::optional<feed_notice> parse_feed_notice(std::string_view message) {
    // Unsigned: a byte above 127 is no notice either (as a char it is below 1).
    if (message.empty() || static_cast<unsigned char>(message[0]) > 1) return std::nullopt;
    return feed_notice{message[0] == 1, std::string(message.substr(1))};
}

feed_action feed_subscriptions::apply(const feed_notice& n, notice_source from, bool allowed) {
    if (n.subscribe) {
        if (from == notice_source::closed_connection) return feed_action::none; // never sent so
        auto& c = active_[n.prefix];
        if (from == notice_source::subscriber && !allowed) {
            ++c.refused;
            return feed_action::none;
        }
        if (c.applied++ == 0) ++held_;
        return from == notice_source::subscriber ? feed_action::subscribe : feed_action::none;
    }
    // A subscriber's own unsubscribe ends only its connection's subscription,
    // whichever count it was: the count is left until the connection closes.
    if (from == notice_source::subscriber) return feed_action::unsubscribe;
    auto it = active_.find(n.prefix);
    if (it == active_.end()) return feed_action::none;
    auto& c = it->second;
    // A closed connection's prefix may have been refused or applied. Every
    // count was added by some connection's subscribe, and a closing connection
    // takes back one per prefix it asked for; taking from the refused first,
    // the applied count stays at least the number of open connections that
    // hold the prefix.
    if (c.refused > 0)
        --c.refused;
    else if (c.applied > 0 && --c.applied == 0)
        --held_;
    if (c.applied == 0 && c.refused == 0) active_.erase(it);
    return feed_action::none;
}

bool feed_subscriptions::wanted(std::string_view topic) const {
    for (const auto& [p, c] : active_)
        if (c.applied > 0 && topic.starts_with(p)) return true;
    return false;
}

} // namespace pingan
