// Broker endpoints as users write them: one (tcp://10.0.0.1:7401), or a
// leader and its standbys separated by commas
// (tcp://10.0.0.1:7401,tcp://10.0.0.2:7401; docs/replication.md).
#pragma once

#include "common/errc.hpp"

#include <zmq.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace pingan {

// Returns: the endpoints of a comma-separated list, empty items left out.
inline std::vector<std::string> split_endpoints(std::string_view list) {
    std::vector<std::string> out;
    std::size_t from = 0;
    while (from <= list.size()) {
        auto comma = list.find(',', from);
        if (comma == std::string_view::npos) comma = list.size();
        if (comma > from) out.emplace_back(list.substr(from, comma - from));
        from = comma + 1;
    }
    return out;
}

// Connects `s` to each endpoint of `list`. With several, a message is queued
// only on a connection that is up (ZMQ_IMMEDIATE): a request goes to
// whichever broker listens, and a resend after a timeout finds the new leader.
// Throws: pingan::error(bad_config) when the list names no endpoint.
inline void connect_each(zmq::socket_t& s, std::string_view list) {
    auto each = split_endpoints(list);
    if (each.empty()) throw error(errc::bad_config, "no broker endpoint given");
    if (each.size() > 1) s.set(zmq::sockopt::immediate, 1);
    for (const auto& e : each)
        s.connect(e);
}

} // namespace pingan
