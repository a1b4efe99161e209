// The receivers directory of pingan-notify: who is paged, for which roles,
// tiers and places, and through which channel.
//
// The file is YAML (docs/notify.md shows the format). Like the rule file it
// is checked as a whole and every mistake is reported with its line and
// column, so that an operator fixes them all at once; a file with any error
// is refused. Routing is a pure function from a page to the receivers that
// should get it. The caller reads the file; nothing here does I/O.
#pragma once

#include "common/event.hpp"
#include "common/registry.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::notify {

enum class channel_kind { webhook, command, file };
std::string_view channel_name(channel_kind k) noexcept;

struct receiver {
    std::string id;   // unique, appears in receipts and idempotency keys
    std::string name; // for people: 张老师
    std::vector<std::string> roles;
    std::optional<pingan::tier> tier; // none: any tier
    std::string school;               // scope: one school,
    std::string district;             // or one district; neither: the whole city
    channel_kind channel = channel_kind::file;
    std::string url, secret;          // webhook: http://host:port/path, HMAC key
    std::vector<std::string> command; // command: program and its first arguments
    std::string address;              // command: phone number or mail address
    std::string path;                 // file: where lines go ("-" for stdout)
    bool exercises = false;           // gets Exercise pages
    int line = 0;
};

struct directory {
    std::string name;
    std::vector<receiver> receivers;
    const receiver* find(std::string_view id) const noexcept;
};

struct located_problem {
    int line = 0, column = 0; // 1-based
    std::string message;
};

// Parses and checks a directory file. Roles must be among `roles` (when not
// empty) and schools and districts in `reg` (when given).
// Returns: every problem found; `out` is meaningful only when there are none.
std::vector<located_problem> parse_directory(std::string_view text, const registry* reg,
                                             const std::vector<std::string>& roles, directory& out);

// The role names a rule file declares under `roles:`.
// Throws: pingan::error(bad_config) if the text is not such a YAML file.
std::vector<std::string> declared_roles(std::string_view rules_yaml);

// Whom a page goes to: receivers with one of its roles, of its tier (or of
// any tier), whose place contains the page's school. Exercise pages go only
// to receivers marked for exercises; Test pages only to file receivers.
std::vector<const receiver*> route(const directory& d, const event& page);

// The page as people read it: Exercise pages always start with 【演练 EXERCISE】.
std::string page_text(const event& page);

inline constexpr std::string_view exercise_prefix = "【演练 EXERCISE】";

// A webhook URL split into its parts. Returns: nothing unless http://host[:port]/path.
struct http_url {
    std::string host, port, target;
};
std::optional<http_url> parse_http_url(std::string_view url);

} // namespace pingan::notify
