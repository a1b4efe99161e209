// The Prometheus text format writer.
#include "common/prometheus.hpp"

#include <cmath>
#include <cstdio>

namespace pingan::prom {
namespace {

std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        char b[32];
        std::snprintf(b, sizeof b, "%.0f", v);
        return b;
    }
    char b[40];
    std::snprintf(b, sizeof b, "%.9g", v);
    return b;
}

// HELP text escapes backslash and newline only.
std::string escape_help(std::string_view v) {
    std::string s;
    for (char c : v) {
        if (c == '\\')
            s += "\\\\";
        else if (c == '\n')
            s += "\\n";
        else
            s += c;
    }
    return s;
}

} // namespace

std::string escape_label(std::string_view v) {
    std::string s;
    for (char c : v) {
        if (c == '\\')
            s += "\\\\";
        else if (c == '"')
            s += "\\\"";
        else if (c == '\n')
            s += "\\n";
        else
            s += c;
    }
    return s;
}

void writer::head(std::string_view name, std::string_view type, std::string_view help) {
    out_ << "# HELP " << name << " " << escape_help(help) << "\n# TYPE " << name << " " << type
         << "\n";
}

void writer::line(std::string_view name, const labels& l, double value) {
    out_ << name;
    if (!l.empty()) {
        out_ << "{";
        for (std::size_t i = 0; i < l.size(); ++i)
            out_ << (i ? "," : "") << l[i].first << "=\"" << escape_label(l[i].second) << "\"";
        out_ << "}";
    }
    out_ << " " << number(value) << "\n";
}

writer& writer::counter(std::string_view name, std::string_view help, double value) {
    head(name, "counter", help);
    line(name, {}, value);
    return *this;
}

writer& writer::gauge(std::string_view name, std::string_view help, double value) {
    head(name, "gauge", help);
    line(name, {}, value);
    return *this;
}

writer& writer::family(std::string_view name, std::string_view type, std::string_view help,
                       std::span<const sample> samples) {
    head(name, type, help);
    for (const auto& s : samples)
        line(name, s.labels, s.value);
    return *this;
}

writer& writer::histogram(std::string_view name, std::string_view help, const histogram_snapshot& h,
                          const labels& l) {
    head(name, "histogram", help);
    std::string n(name);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= h.bounds.size() && i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        auto with_le = l;
        with_le.emplace_back("le", i < h.bounds.size() ? number(h.bounds[i]) : "+Inf");
        line(n + "_bucket", with_le, static_cast<double>(cumulative));
    }
    line(n + "_sum", l, h.sum);
    line(n + "_count", l, static_cast<double>(cumulative));
    return *this;
}

} // namespace pingan::prom
