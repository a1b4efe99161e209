// JSON log lines: a spdlog formatter that splits each message into its text
// and key=value fields.
#include "log_format.hpp"

#include "errc.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <ctime>
#include <vector>

namespace pingan {
namespace {

std::atomic<log_format> process_format{log_format::text};

bool key_char(char c, bool first) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
           (!first && (std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-'));
}

// One word of a message: a plain word, or key=value (the value maybe quoted).
struct word {
    std::size_t begin = 0;
    std::string key, value;
    bool field = false;
    bool quoted = false;
};

// Splits on spaces, keeping a quoted value (key="a b") in one word.
std::vector<word> words(std::string_view s) {
    std::vector<word> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ')
            ++i;
        if (i >= s.size()) break;
        word w;
        w.begin = i;
        std::size_t k = i;
        while (k < s.size() && key_char(s[k], k == i))
            ++k;
        if (k > i && k < s.size() && s[k] == '=') {
            w.field = true;
            w.key = std::string(s.substr(i, k - i));
            i = k + 1;
            if (i < s.size() && s[i] == '"') {
                w.quoted = true;
                ++i;
                bool closed = false;
                while (i < s.size()) {
                    char c = s[i++];
                    if (c == '\\' && i < s.size()) {
                        w.value += s[i++];
                    } else if (c == '"') {
                        closed = true;
                        break;
                    } else {
                        w.value += c;
                    }
                }
                // An unclosed quote, or text glued after it: not a field.
                if (!closed || (i < s.size() && s[i] != ' ')) w.field = false;
            }
            while (i < s.size() && s[i] != ' ')
                w.value += s[i++];
        } else {
            while (i < s.size() && s[i] != ' ')
                ++i;
        }
        out.push_back(std::move(w));
    }
    return out;
}

nlohmann::ordered_json field_value(const std::string& v, bool quoted) {
    if (quoted || v.empty()) return v;
    if (v == "true" || v == "false") return v == "true";
    const char* b = v.data();
    const char* e = b + v.size();
    std::int64_t i = 0;
    if (auto [p, ec] = std::from_chars(b, e, i); ec == std::errc() && p == e) return i;
    if (v.find_first_not_of("-0123456789.") == std::string::npos &&
        std::count(v.begin(), v.end(), '.') == 1 &&
        std::isdigit(static_cast<unsigned char>(v.back()))) {
        double d = 0;
        if (auto [p, ec] = std::from_chars(b, e, d); ec == std::errc() && p == e) return d;
    }
    return v;
}

class json_formatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& m, spdlog::memory_buf_t& dest) override {
        auto t = std::chrono::system_clock::to_time_t(m.time);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(m.time.time_since_epoch())
                      .count() %
                  1000000;
        std::tm tm{};
        gmtime_r(&t, &tm);
        char when[40];
        auto n = std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        std::snprintf(when + n, sizeof when - n, ".%06lldZ", static_cast<long long>(us));
        auto level = spdlog::level::to_string_view(m.level);
        auto line = json_log_line(when, std::string_view(level.data(), level.size()),
                                  std::string_view(m.logger_name.data(), m.logger_name.size()),
                                  std::string_view(m.payload.data(), m.payload.size()));
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<json_formatter>();
    }
};

} // namespace

log_format parse_log_format(std::string_view name) {
    if (name == "text") return log_format::text;
    if (name == "json") return log_format::json;
    throw error(errc::bad_config,
                "log format \"" + std::string(name) + "\" is not known; expected text or json");
}

void set_default_log_format(log_format f) noexcept {
    process_format.store(f);
}
log_format default_log_format() noexcept {
    return process_format.load();
}

void apply_log_format(spdlog::logger& log, log_format f) {
    if (f == log_format::json) log.set_formatter(std::make_unique<json_formatter>());
}

std::string log_value(std::string_view v) {
    bool plain = !v.empty();
    for (char c : v)
        if (c == ' ' || c == '"' || c == '\\' || c == '=' || static_cast<unsigned char>(c) < 0x20)
            plain = false;
    if (plain) return std::string(v);
    std::string s = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') s += '\\';
        s += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
    return s + "\"";
}

log_message split_fields(std::string_view message) {
    log_message out;
    auto w = words(message);
    // The fields are the longest run of key=value words at the end.
    std::size_t first = w.size();
    while (first > 0 && w[first - 1].field)
        --first;
    auto text_end = first < w.size() ? w[first].begin : message.size();
    auto text = message.substr(0, text_end);
    while (!text.empty() && text.back() == ' ')
        text.remove_suffix(1);
    out.msg = std::string(text);
    for (std::size_t i = first; i < w.size(); ++i)
        out.fields[w[i].key] = field_value(w[i].value, w[i].quoted);
    return out;
}

std::string json_log_line(std::string_view time, std::string_view level, std::string_view logger,
                          std::string_view message) {
    auto m = split_fields(message);
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    j["time"] = time;
    j["level"] = level;
    j["logger"] = logger;
    j["msg"] = std::move(m.msg);
    j["fields"] = std::move(m.fields);
    // Bytes that are not UTF-8 (a path, a peer's text) are replaced, never fatal.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace pingan
