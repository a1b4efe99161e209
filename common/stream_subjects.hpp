// The subjects of the replicated log in NATS (docs/replication.md): each
// record is published on `<base>.<district>.<school>`, so that NATS account
// permissions and a reader's consumer can be narrowed to one district (or one
// school), and the stream takes `<base>.>`. A record without a school (a
// checkpoint, an access log, what the broker makes for the city) has `_` in
// its place, and so has one without a district; so has a code that is not a
// NATS token (empty, or holding a dot, a space, `*` or `>`), which the
// registry never issues.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pingan {

// The place of a missing school or district in a subject.
inline constexpr std::string_view no_scope_token = "_";

// `code` as one subject token: itself, or `_` when it cannot be one.
inline std::string_view subject_token(std::string_view code) noexcept {
    if (code.empty()) return no_scope_token;
    for (unsigned char c : code)
        if (c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f) return no_scope_token;
    return code;
}

// The subject of a record of `district` and `school`.
inline std::string record_subject(std::string_view base, std::string_view district,
                                  std::string_view school) {
    std::string s(base);
    s += '.';
    s += subject_token(district);
    s += '.';
    s += subject_token(school);
    return s;
}

// What the stream takes: every record's subject.
inline std::string stream_subjects(std::string_view base) {
    return std::string(base) + ".>";
}

// A reader's filter: one district, one school (of any district unless one is
// named), or everything when both are empty.
inline std::string scope_filter(std::string_view base, std::string_view district,
                                std::string_view school) {
    if (district.empty() && school.empty()) return stream_subjects(base);
    return std::string(base) + "." + (district.empty() ? "*" : std::string(district)) + "." +
           (school.empty() ? "*" : std::string(school));
}

// A NATS server URL as it may be logged: a password (or token) in it is not.
inline std::string shown_url(std::string_view url) {
    auto scheme = url.find("://");
    auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
    auto at = url.find('@', start);
    if (at == std::string_view::npos || url.find('/', start) < at) return std::string(url);
    auto user = url.substr(start, at - start);
    if (auto colon = user.find(':'); colon != std::string_view::npos) user = user.substr(0, colon);
    return std::string(url.substr(0, start)) + std::string(user) + ":***" +
           std::string(url.substr(at));
}

// Server URLs as logged, comma-separated: without their passwords.
inline std::string shown_urls(const std::vector<std::string>& urls) {
    std::string s;
    for (const auto& x : urls)
        s += (s.empty() ? "" : ",") + shown_url(x);
    return s;
}

} // namespace pingan
