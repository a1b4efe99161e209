// YAML parsing of the broker configuration.
#include "broker/server/config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>

namespace pingan {
namespace {

[[noreturn]] void bad(const YAML::Node& n, const std::string& key, const std::string& what) {
    throw error(errc::bad_config,
                "line " + std::to_string(n.Mark().line + 1) + ": " + key + ": " + what);
}

void text(const YAML::Node& parent, const char* key, std::string& out) {
    auto n = parent[key];
    if (!n) return;
    if (!n.IsScalar()) bad(n, key, "expected a string");
    out = n.as<std::string>();
}

// A path from the file: relative to the file's folder.
void path(const YAML::Node& parent, const char* key, std::string& out, std::string_view dir) {
    auto n = parent[key];
    if (!n) return;
    text(parent, key, out);
    if (dir.empty() || out.empty() || std::filesystem::path(out).is_absolute()) return;
    out = (std::filesystem::path(dir) / out).lexically_normal().string();
}

template <class T> void number(const YAML::Node& parent, const char* key, T& out) {
    auto n = parent[key];
    if (!n) return;
    try {
        out = n.as<T>();
    } catch (const YAML::Exception&) {
        bad(n, key, "expected a whole number");
    }
}

void duration(const YAML::Node& parent, const char* key, micros& out) {
    auto n = parent[key];
    if (!n) return;
    auto d = n.IsScalar() ? parse_duration(n.as<std::string>()) : std::nullopt;
    if (!d) bad(n, key, "expected a duration such as 30s, 10m, 24h");
    out = *d;
}

void known_keys(const YAML::Node& map, std::initializer_list<const char*> keys,
                const std::string& where) {
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->first.IsScalar()) bad(it->first, where, "a key must be a name, not a list or map");
        auto k = it->first.as<std::string>();
        bool ok = false;
        for (auto* x : keys)
            ok = ok || k == x;
        if (!ok) bad(it->first, where + k, "unknown key");
    }
}

} // namespace

broker_config parse_broker_config(std::string_view yaml, broker_config c, std::string_view dir) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::ParserException& x) {
        throw error(errc::bad_config, "line " + std::to_string(x.mark.line + 1) + ": " + x.msg);
    }
    if (root.IsNull()) return c;
    if (!root.IsMap()) throw error(errc::bad_config, "line 1: expected a map of settings");
    known_keys(root,
               {"data_dir", "registry", "districts", "clock", "rules", "log_level", "endpoints",
                "limits", "security", "metrics", "keys_dir", "log_format", "slow_commit",
                "log_summary", "checkpoint", "replication", "jetstream"},
               "");
    auto& b = c.broker;
    path(root, "data_dir", b.data_dir, dir);
    path(root, "registry", c.registry, dir);
    path(root, "keys_dir", c.keys, dir);
    path(root, "districts", c.districts, dir);
    text(root, "clock", c.clock);
    path(root, "rules", c.rules, dir);
    text(root, "log_level", c.log_level);
    text(root, "log_format", c.log_format);
    duration(root, "slow_commit", c.slow_commit);
    duration(root, "log_summary", c.log_summary);
    text(root, "metrics", c.metrics);
    if (auto sec = root["security"]) {
        if (!sec.IsMap()) bad(sec, "security", "expected a map");
        known_keys(sec, {"server_key", "clients"}, "security.");
        path(sec, "server_key", c.server_key, dir);
        path(sec, "clients", c.clients, dir);
        if (c.server_key.empty() != c.clients.empty())
            bad(sec, "security", "server_key and clients go together");
    }
    if (auto cp = root["checkpoint"]) {
        if (!cp.IsMap()) bad(cp, "checkpoint", "expected a map");
        known_keys(cp, {"interval_s", "dir", "key"}, "checkpoint.");
        number(cp, "interval_s", c.checkpoint_interval_s);
        if (c.checkpoint_interval_s == 0)
            bad(cp["interval_s"], "checkpoint.interval_s", "must be at least 1");
        path(cp, "dir", c.checkpoint_dir, dir);
        path(cp, "key", c.checkpoint_key, dir);
        if (c.checkpoint_key.empty())
            bad(cp, "checkpoint",
                "key: the signing key file is required (pingan checkpoint keygen)");
    }
    text(root, "replication", c.replication);
    if (c.replication != "none" && c.replication != "jetstream")
        bad(root["replication"], "replication", "expected none or jetstream");
    if (auto js = root["jetstream"]) {
        if (!js.IsMap()) bad(js, "jetstream", "expected a map");
        known_keys(
            js, {"servers", "stream", "subject", "replicas", "timeout", "lease", "standby", "name"},
            "jetstream.");
        auto& j = c.jetstream;
        if (auto sv = js["servers"]) {
            if (!sv.IsSequence() || sv.size() == 0)
                bad(sv, "jetstream.servers",
                    "expected a list of URLs such as nats://127.0.0.1:4222");
            j.servers.clear();
            for (const auto& u : sv) {
                if (!u.IsScalar()) bad(u, "jetstream.servers", "expected a URL");
                j.servers.push_back(u.as<std::string>());
            }
        }
        text(js, "stream", j.stream);
        text(js, "subject", j.subject);
        number(js, "replicas", j.replicas);
        if (j.replicas != 1 && j.replicas != 3 && j.replicas != 5)
            bad(js["replicas"], "jetstream.replicas", "expected 1, 3 or 5");
        micros t{j.timeout};
        duration(js, "timeout", t);
        if (t < micros{1000}) bad(js["timeout"], "jetstream.timeout", "must be at least 1ms");
        j.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(t);
        micros l{j.lease};
        duration(js, "lease", l);
        if (l < micros{300'000}) bad(js["lease"], "jetstream.lease", "must be at least 300ms");
        j.lease = std::chrono::duration_cast<std::chrono::milliseconds>(l);
        if (auto sb = js["standby"]) {
            if (!sb.IsScalar() ||
                (sb.as<std::string>() != "true" && sb.as<std::string>() != "false"))
                bad(sb, "jetstream.standby", "expected true or false");
            j.standby = sb.as<std::string>() == "true";
        }
        text(js, "name", j.name);
        if (j.stream.empty() || j.subject.empty())
            bad(js, "jetstream", "stream and subject must not be empty");
    }
    if (auto ep = root["endpoints"]) {
        if (!ep.IsMap()) bad(ep, "endpoints", "expected a map");
        known_keys(ep, {"ingest", "feed", "query"}, "endpoints.");
        text(ep, "ingest", b.ingest);
        text(ep, "feed", b.feed);
        text(ep, "query", b.query);
    }
    if (auto l = root["limits"]) {
        if (!l.IsMap()) bad(l, "limits", "expected a map");
        known_keys(l,
                   {"max_message_bytes", "max_event_bytes", "max_batch", "max_inflight", "feed_hwm",
                    "max_future_skew", "initial_map_size"},
                   "limits.");
        number(l, "max_message_bytes", b.max_message_bytes);
        number(l, "max_event_bytes", b.limits.max_event_bytes);
        number(l, "max_batch", b.max_batch);
        number(l, "max_inflight", b.max_inflight);
        number(l, "feed_hwm", b.feed_hwm);
        number(l, "initial_map_size", b.initial_map_size);
        duration(l, "max_future_skew", b.limits.max_future_skew);
    }
    return c;
}

} // namespace pingan
