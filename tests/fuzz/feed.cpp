// Fuzzes the broker's live-feed subscriptions: the input is a sequence of
// subscriber notices (split at newlines), each read as the broker's writer
// reads it (parse_feed_notice), allowed or not for a city, a district and a
// school client (may_subscribe), and applied to that client's table of
// subscriptions (feed_subscriptions). A scoped client's table must then want
// no topic of another place, and no type topic; the same notices beside
// another connection's subscription never end it, nor does the client's
// connection closing.
#include "broker/admission/access.hpp"
#include "broker/admission/feed_subscriptions.hpp"
#include "common/wire.hpp"
#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

using namespace pingan;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const fuzz::clients who;
    auto messages =
        fuzz::split(std::string_view(reinterpret_cast<const char*>(data), size), '\n', 64);
    std::string type = "hazard.reported";
    for (const principal* p : {&who.city, &who.district, &who.school}) {
        // The client's own subscriptions, and the same notices beside another
        // connection's subscription to everything, which they must not end.
        feed_subscriptions table, shared;
        const feed_notice everything{true, ""};
        shared.apply(everything, notice_source::subscriber, true);
        std::set<std::string> held; // what libzmq keeps for the connection, allowed or not
        bool unsubscribed = false, repeated = false;
        for (auto m : messages) {
            auto n = parse_feed_notice(m);
            if (!n) {
                if (!m.empty() && (m[0] == 0 || m[0] == 1)) __builtin_trap();
                continue;
            }
            if (n->prefix != m.substr(1)) __builtin_trap();
            bool allowed = may_subscribe(*p, n->prefix);
            if (!allowed && p->city) __builtin_trap(); // the city may subscribe to anything
            auto action = table.apply(*n, notice_source::subscriber, allowed);
            shared.apply(*n, notice_source::subscriber, allowed);
            if (action != (!n->subscribe ? feed_action::unsubscribe
                           : allowed     ? feed_action::subscribe
                                         : feed_action::none))
                __builtin_trap();
            if (n->subscribe) {
                repeated |= !held.insert(n->prefix).second;
                if (allowed && !table.wanted(n->prefix)) __builtin_trap();
                if (n->prefix.size() > 2) type = n->prefix.substr(2);
            } else {
                held.erase(n->prefix);
                unsubscribed = true;
            }
            if (!shared.wanted("t/" + type)) __builtin_trap();
        }
        if (p->city) continue;
        // What the scoped client's own subscriptions ask for is allowed.
        if (!may_subscribe(*p, wire::subscription(type, p->district, p->school))) __builtin_trap();
        // Nothing of another place, nor any type topic, reaches it.
        for (auto [district, school] : {std::pair{"420503", "420503K001"},
                                        {"420502", "420502K0010"},
                                        {"420502", "420502P001"},
                                        {"4205021", "420502K001"}}) {
            if (p->school.empty() && district == p->district) continue;
            if (table.wanted(wire::place_topic(district, school, type))) __builtin_trap();
        }
        if (table.wanted(wire::type_topic(type, p->district, p->school))) __builtin_trap();
        // The connection closes: the other subscription stays, and unless it
        // unsubscribed or repeated a subscribe (which the broker cannot tell
        // from another connection's), nothing of this client's is left.
        for (const auto& prefix : held) {
            table.apply({false, prefix}, notice_source::closed_connection);
            shared.apply({false, prefix}, notice_source::closed_connection);
        }
        if (!shared.wanted("t/" + type)) __builtin_trap();
        if (!unsubscribed && !repeated && !table.empty()) __builtin_trap();
    }
    return 0;
}
