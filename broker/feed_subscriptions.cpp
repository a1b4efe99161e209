// The live feed's subscription notices and the prefixes subscribed (feed_subscriptions.hpp).
#include "broker/feed_subscriptions.hpp"

namespace pingan {

std::optional<feed_notice> parse_feed_notice(std::string_view message) {
    // Unsigned: a byte above 127 is no notice either (as a char it is below 1).
    if (message.empty() || static_cast<unsigned char>(message[0]) > 1) return std::nullopt;
    return feed_notice{message[0] == 1, std::string(message.substr(1))};
}

void feed_subscriptions::apply(const feed_notice& n) {
    if (n.subscribe) {
        ++active_[n.prefix];
    } else if (auto it = active_.find(n.prefix); it != active_.end() && --it->second <= 0) {
        active_.erase(it);
    }
}

bool feed_subscriptions::wanted(std::string_view topic) const {
    for (const auto& [p, n] : active_)
        if (topic.starts_with(p)) return true;
    return false;
}

} // namespace pingan
