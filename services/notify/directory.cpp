// The receivers directory: YAML → checked structs, and page → receivers.
#include "directory.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>
#include <tuple>

namespace pingan::notify {
namespace {

struct checker {
    std::vector<located_problem>& out;
    void bad(const YAML::Node& n, std::string msg) {
        auto m = n.Mark();
        out.push_back({m.line + 1, m.column + 1, std::move(msg)});
    }
    bool scalar(const YAML::Node& n, const std::string& what, std::string& v) {
        if (!n.IsScalar()) {
            bad(n, what + ": expected a text value");
            return false;
        }
        v = n.Scalar();
        return true;
    }
};

bool valid_id(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : ", ") + x;
    return s;
}

} // namespace

std::string_view channel_name(channel_kind k) noexcept {
    switch (k) {
    case channel_kind::webhook:
        return "webhook";
    case channel_kind::command:
        return "command";
    default:
        return "file";
    }
}

const receiver* directory::find(std::string_view id) const noexcept {
    for (const auto& r : receivers)
        if (r.id == id) return &r;
    return nullptr;
}

std::optional<http_url> parse_http_url(std::string_view url) {
    constexpr std::string_view scheme = "http://";
    if (!url.starts_with(scheme)) return std::nullopt;
    url.remove_prefix(scheme.size());
    auto slash = url.find('/');
    auto hostport = url.substr(0, slash);
    http_url u;
    u.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    auto colon = hostport.rfind(':');
    if (colon == std::string_view::npos) {
        u.host = hostport;
        u.port = "80";
    } else {
        u.host = hostport.substr(0, colon);
        u.port = hostport.substr(colon + 1);
        if (u.port.empty() ||
            !std::all_of(u.port.begin(), u.port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
    }
    if (u.host.empty()) return std::nullopt;
    return u;
}

std::vector<located_problem> parse_directory(std::string_view text, const registry* reg,
                                             const std::vector<std::string>& roles,
                                             directory& out) {
    std::vector<located_problem> problems;
    checker c{problems};
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::ParserException& x) {
        problems.push_back({x.mark.line + 1, x.mark.column + 1, x.msg});
        return problems;
    }
    if (!root.IsMap()) {
        problems.push_back({1, 1, "expected a map with `receivers:`"});
        return problems;
    }
    out = directory{};
    static const std::set<std::string> top{"directory", "description", "receivers"};
    for (const auto& kv : root)
        if (!top.count(kv.first.as<std::string>()))
            c.bad(kv.first, "unknown key \"" + kv.first.as<std::string>() +
                                "\"; expected directory, description or receivers");
    if (auto n = root["directory"]) c.scalar(n, "directory", out.name);
    auto list = root["receivers"];
    if (!list || !list.IsSequence()) {
        c.bad(list ? list : root, "receivers: expected a list of receivers");
        return problems;
    }
    static const std::set<std::string> keys{"id",      "name",     "roles",   "role",     "tier",
                                            "school",  "district", "channel", "url",      "secret",
                                            "command", "address",  "path",    "exercises"};
    std::set<std::string> ids;
    for (const auto& n : list) {
        if (!n.IsMap()) {
            c.bad(n, "a receiver must be a map");
            continue;
        }
        receiver r;
        r.line = n.Mark().line + 1;
        for (const auto& kv : n) {
            auto k = kv.first.as<std::string>();
            if (!keys.count(k))
                c.bad(kv.first, "unknown key \"" + k +
                                    "\" in a receiver; expected one of id, "
                                    "name, roles, tier, school, district, "
                                    "channel, url, secret, command, address, "
                                    "path, exercises");
        }
        if (!n["id"]) {
            c.bad(n, "receiver without id");
        } else if (c.scalar(n["id"], "id", r.id)) {
            if (!valid_id(r.id))
                c.bad(n["id"], "id \"" + r.id + "\": expected at most 64 of A-Z a-z 0-9 . _ -");
            else if (!ids.insert(r.id).second)
                c.bad(n["id"], "id \"" + r.id + "\" is used by another receiver");
        }
        if (auto x = n["name"]) c.scalar(x, "name", r.name);
        auto add_role = [&](const YAML::Node& x) {
            std::string role;
            if (!c.scalar(x, "role", role)) return;
            if (!roles.empty() && std::find(roles.begin(), roles.end(), role) == roles.end())
                c.bad(x, "role \"" + role + "\" is not declared; expected one of: " + join(roles));
            r.roles.push_back(role);
        };
        if (auto x = n["role"]) add_role(x);
        if (auto x = n["roles"]) {
            if (!x.IsSequence())
                c.bad(x, "roles: expected a list");
            else
                for (const auto& y : x)
                    add_role(y);
        }
        if (r.roles.empty()) c.bad(n, "receiver " + r.id + ": give role or roles");
        if (auto x = n["tier"]) {
            std::string t;
            if (c.scalar(x, "tier", t)) {
                auto v = enum_parse<pingan::tier>(t);
                if (!v)
                    c.bad(x, "tier \"" + t + "\" is not one of school, district, city, regulator");
                else
                    r.tier = *v;
            }
        }
        if (auto x = n["school"]) {
            if (c.scalar(x, "school", r.school) && reg && !reg->find(r.school))
                c.bad(x, "school \"" + r.school + "\" is not in the registry");
        }
        if (auto x = n["district"]) {
            if (c.scalar(x, "district", r.district) && reg && !reg->districts().empty() &&
                !reg->find_district(r.district))
                c.bad(x, "district \"" + r.district + "\" is not in the registry");
        }
        if (!r.school.empty() && !r.district.empty())
            c.bad(n, "receiver " + r.id + ": give school or district, not both");
        std::string ch = "file";
        if (auto x = n["channel"]) c.scalar(x, "channel", ch);
        if (ch == "webhook") {
            r.channel = channel_kind::webhook;
            if (!n["url"])
                c.bad(n, "receiver " + r.id + ": a webhook needs url");
            else if (c.scalar(n["url"], "url", r.url) && !parse_http_url(r.url))
                c.bad(n["url"], "url \"" + r.url + "\": expected http://HOST[:PORT]/PATH");
            if (!n["secret"])
                c.bad(n, "receiver " + r.id + ": a webhook needs secret (signs each request)");
            else if (c.scalar(n["secret"], "secret", r.secret) && r.secret.size() < 16)
                c.bad(n["secret"], "secret: at least 16 characters");
        } else if (ch == "command") {
            r.channel = channel_kind::command;
            auto x = n["command"];
            if (!x) {
                c.bad(n, "receiver " + r.id + ": a command channel needs command");
            } else if (x.IsScalar()) {
                r.command.push_back(x.Scalar());
            } else if (x.IsSequence() && x.size() > 0) {
                for (const auto& y : x) {
                    std::string a;
                    if (c.scalar(y, "command", a)) r.command.push_back(a);
                }
            } else {
                c.bad(x, "command: expected a program path or a list [program, args...]");
            }
            if (!r.command.empty() && !r.command[0].starts_with("/"))
                c.bad(x, "command: \"" + r.command[0] + "\" must be an absolute path");
            if (auto a = n["address"]) c.scalar(a, "address", r.address);
        } else if (ch == "file") {
            r.channel = channel_kind::file;
            if (!n["path"])
                c.bad(n, "receiver " + r.id + ": a file channel needs path (\"-\" for stdout)");
            else
                c.scalar(n["path"], "path", r.path);
        } else {
            c.bad(n["channel"], "channel \"" + ch + "\" is not one of webhook, command, file");
        }
        if (auto x = n["exercises"]) {
            std::string v;
            if (c.scalar(x, "exercises", v)) {
                if (v == "true")
                    r.exercises = true;
                else if (v != "false")
                    c.bad(x, "exercises: expected true or false");
            }
        }
        out.receivers.push_back(std::move(r));
    }
    std::stable_sort(problems.begin(), problems.end(), [](const auto& a, const auto& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return problems;
}

std::vector<std::string> declared_roles(std::string_view rules_yaml) {
    try {
        auto root = YAML::Load(std::string(rules_yaml));
        std::vector<std::string> v;
        if (root.IsMap() && root["roles"] && root["roles"].IsSequence())
            for (const auto& r : root["roles"])
                v.push_back(r.as<std::string>());
        if (v.empty()) throw error(errc::bad_config, "the rule file declares no roles");
        return v;
    } catch (const YAML::Exception& x) {
        throw error(errc::bad_config, std::string("rule file: ") + x.what());
    }
}

std::vector<const receiver*> route(const directory& d, const event& page) {
    std::vector<const receiver*> out;
    const auto* n = std::get_if<notification_requested>(&page.body);
    if (!n) return out;
    bool exercise = n->exercise || page.status == pingan::status::exercise;
    bool test = page.status == pingan::status::test;
    for (const auto& r : d.receivers) {
        if (r.tier && *r.tier != n->tier) continue;
        if (!r.school.empty() && r.school != page.school) continue;
        if (!r.district.empty() && r.district != page.district &&
            !page.school.starts_with(r.district))
            continue;
        bool role = std::any_of(r.roles.begin(), r.roles.end(), [&](const std::string& x) {
            return std::find(n->roles.begin(), n->roles.end(), x) != n->roles.end();
        });
        if (!role) continue;
        if (exercise && !r.exercises) continue;
        if (test && r.channel != channel_kind::file) continue;
        out.push_back(&r);
    }
    return out;
}

std::string page_text(const event& page) {
    const auto* n = std::get_if<notification_requested>(&page.body);
    std::string t = n ? n->text : std::string();
    bool exercise = (n && n->exercise) || page.status == pingan::status::exercise;
    if (exercise && !t.starts_with(exercise_prefix)) t = std::string(exercise_prefix) + t;
    return t;
}

} // namespace pingan::notify
