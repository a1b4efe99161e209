// Text made safe to place in HTML or XML, in element content and in quoted
// attribute values alike: the one escaper for the CAP messages, the term
// report and the notifier's pages.
#pragma once

#include <string>
#include <string_view>

namespace pingan {

inline std::string markup_escape(std::string_view s) {
    std::string o;
    o.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&':
            o += "&amp;";
            break;
        case '<':
            o += "&lt;";
            break;
        case '>':
            o += "&gt;";
            break;
        case '"':
            o += "&quot;";
            break;
        case '\'':
            o += "&#39;";
            break;
        default:
            o += c;
        }
    }
    return o;
}

} // namespace pingan
