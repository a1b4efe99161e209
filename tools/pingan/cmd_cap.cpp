// pingan cap: CAP 1.2 (OASIS Common Alerting Protocol) exchange.
//
// export: an incident as a CAP 1.2 alert (Alert when open, Update with
// references to the first alert afterwards, Cancel with them when it was
// withdrawn), with the school's position from the registry; it validates
// against the OASIS schema (tests/data/cap). Without an incident, every one
// that passes the filters of `pingan incidents list`, one file per alert.
// With --type, stored events of those types, each an Alert of its own (never
// the types that carry minors' details).
//
// import: an outside alert (a city's weather, flood or earthquake warning)
// becomes one alert.external event per school inside its areas (circles and
// polygons against the registry's coordinates). Event ids are derived from
// the alert's sender and identifier and the school, so an Update or Cancel
// names the events of the alerts it references without looking them up, and
// importing a file twice stores nothing twice.
//
// The parser never loads a DTD, an external entity or an XInclude, and never
// touches the network or the file system for them: a document with a DOCTYPE
// is refused before libxml2 sees it, and libxml2 runs with XML_PARSE_NONET and
// without XML_PARSE_NOENT or XML_PARSE_DTDLOAD. Only UTF-8 is accepted.
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "common/codec.hpp"
#include "common/event_id.hpp"
#include "common/markup.hpp"
#include "common/privacy.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/engine_cli.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

namespace pingan::cli {
namespace {

constexpr const char* cap_ns = "urn:oasis:names:tc:emergency:cap:1.2";

// CAP's dateTime: China time with its offset, no fraction ("2026-10-12T09:00:00+08:00").
std::string cap_time(timestamp t) {
    auto local = format_local(t); // "2026-10-12 09:00:00 CST"
    return local.substr(0, 10) + "T" + local.substr(11, 8) + "+08:00";
}

// CAP suggests a headline of at most 160 characters; cut on a character boundary.
std::string headline_of(std::string s) {
    if (s.size() <= 160) return s;
    std::size_t at = 160;
    while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xc0) == 0x80)
        --at;
    return s.substr(0, at);
}

std::string category_of(const std::string& kind) {
    if (kind.starts_with("food") || kind.starts_with("health") || kind.starts_with("psych"))
        return "Health";
    if (kind.starts_with("bus")) return "Transport";
    if (kind.starts_with("bullying")) return "Security";
    return "Safety";
}

struct export_args {
    std::string ref, school, data_dir, out, registry_file;
    std::string sender = "pingan@yichang.edu.cn";
    incident_filter filter;
    std::vector<std::string> types; // --type: events of these types instead of incidents
};

bool withdrawn(const json& inc) {
    const auto& m = inc["milestones"];
    return m.is_array() && std::find(m.begin(), m.end(), "withdrawn") != m.end();
}

// The alert's identifier: the incident id for the first alert, then the id
// with the time of the update in microseconds.
std::string identifier_of(const json& inc) {
    auto opened = *parse_utc(inc["opened_at"].get<std::string>());
    auto updated = *parse_utc(inc["updated_at"].get<std::string>());
    auto id = inc["id"].get<std::string>();
    bool first = inc["state"] == "open" && updated == opened;
    return first ? id : id + "." + std::to_string(to_us(updated));
}

std::string area_xml(const registry& reg, const std::string& school, const std::string& district);

std::string alert_xml(const json& inc, const std::string& sender, const registry& reg) {
    auto opened = *parse_utc(inc["opened_at"].get<std::string>());
    auto updated = *parse_utc(inc["updated_at"].get<std::string>());
    auto state = inc["state"].get<std::string>();
    auto id = inc["id"].get<std::string>();
    bool first = state == "open" && updated == opened;
    // Withdrawn (reported in error, taken back): a Cancel of the first alert.
    bool cancel = state == "closed" && withdrawn(inc);
    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<alert xmlns=\"" << cap_ns << "\">\n"
      << "  <identifier>" << markup_escape(identifier_of(inc)) << "</identifier>\n"
      << "  <sender>" << markup_escape(sender) << "</sender>\n"
      << "  <sent>" << cap_time(first ? opened : updated) << "</sent>\n"
      << "  <status>" << inc["mode"].get<std::string>() << "</status>\n"
      << "  <msgType>"
      << (first    ? "Alert"
          : cancel ? "Cancel"
                   : "Update")
      << "</msgType>\n"
      << "  <scope>Restricted</scope>\n"
      << "  <restriction>教育主管部门及学校安全责任人 education bureaus and school safety "
         "officers</restriction>\n";
    if (!first)
        o << "  <references>" << markup_escape(sender) << "," << markup_escape(id) << ","
          << cap_time(opened) << "</references>\n";
    o << "  <incidents>" << markup_escape(id) << "</incidents>\n"
      << "  <info>\n"
      << "    <language>zh-CN</language>\n"
      << "    <category>" << category_of(inc["kind"].get<std::string>()) << "</category>\n"
      << "    <event>" << markup_escape(inc["kind"].get<std::string>()) << "</event>\n";
    if (state == "closed" && !cancel) o << "    <responseType>AllClear</responseType>\n";
    o << "    <urgency>" << (state == "closed" ? "Past" : "Immediate") << "</urgency>\n"
      << "    <severity>" << inc["severity"].get<std::string>() << "</severity>\n"
      << "    <certainty>Observed</certainty>\n";
    if (inc["due"].is_string())
        o << "    <expires>" << cap_time(*parse_utc(inc["due"].get<std::string>()))
          << "</expires>\n";
    o << "    <senderName>平安校园 Pingan</senderName>\n"
      << "    <headline>" << markup_escape(headline_of(inc["title"].get<std::string>()))
      << "</headline>\n"
      << "    <description>" << markup_escape(inc["title"].get<std::string>()) << "（"
      << (cancel ? "withdrawn 已撤回" : state) << "）</description>\n"
      << "    <parameter><valueName>pingan:state</valueName><value>" << state
      << "</value></parameter>\n";
    o << area_xml(reg, inc["school"].get<std::string>(), inc["district"].get<std::string>())
      << "  </info>\n</alert>\n";
    return o.str();
}

// The area of a school (its name, a 0.5 km circle around its registry
// position, its district code), or of a district; nothing for neither.
std::string area_xml(const registry& reg, const std::string& school, const std::string& district) {
    std::ostringstream o;
    if (const auto* s = school.empty() ? nullptr : reg.find(school)) {
        char circle[64];
        std::snprintf(circle, sizeof circle, "%.5f,%.5f 0.5", s->lat, s->lon);
        o << "    <area>\n"
          << "      <areaDesc>" << markup_escape(s->name + " " + s->id) << "</areaDesc>\n"
          << "      <circle>" << circle << "</circle>\n"
          << "      <geocode><valueName>GB/T 2260</valueName><value>" << s->district_code
          << "</value></geocode>\n"
          << "    </area>\n";
    } else if (const auto* d = reg.find_district(district)) {
        o << "    <area>\n"
          << "      <areaDesc>" << markup_escape(d->name) << "</areaDesc>\n"
          << "      <geocode><valueName>GB/T 2260</valueName><value>" << d->code
          << "</value></geocode>\n"
          << "    </area>\n";
    }
    return o.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f) fatal("cannot write " + path);
}

// ---- events of selected types ----

std::string text_field(const json& body, const char* k) {
    auto it = body.find(k);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An event as a CAP Alert of its own: identifier the event id, sent its
// occurred_at, the envelope's status, urgency, severity and certainty, the
// body's fields (never a classified one) as the description.
std::string event_alert_xml(const event& e, const std::string& sender, const registry& reg) {
    auto type = std::string(e.type());
    auto body = body_to_json(e.body);
    std::string what;
    for (const char* k : {"summary", "description", "headline", "title", "text"})
        if (what.empty()) what = text_field(body, k);
    std::string where = e.school;
    if (const auto* s = e.school.empty() ? nullptr : reg.find(e.school)) where = s->name;
    auto headline = type + (where.empty() ? "" : " " + where) + (what.empty() ? "" : ": " + what);
    std::string fields;
    for (const auto& [k, v] : body.items()) {
        if (is_classified(type, k) || v.is_null() || (v.is_array() && v.empty())) continue;
        fields +=
            (fields.empty() ? "" : "; ") + k + ": " +
            (v.is_string() ? v.get<std::string>()
                           : v.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace));
    }
    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<alert xmlns=\"" << cap_ns << "\">\n"
      << "  <identifier>" << e.id.str() << "</identifier>\n"
      << "  <sender>" << markup_escape(sender) << "</sender>\n"
      << "  <sent>" << cap_time(e.occurred_at) << "</sent>\n"
      << "  <status>" << enum_name(e.status) << "</status>\n"
      << "  <msgType>Alert</msgType>\n"
      << "  <scope>Restricted</scope>\n"
      << "  <restriction>教育主管部门及学校安全责任人 education bureaus and school safety "
         "officers</restriction>\n"
      << "  <info>\n"
      << "    <language>zh-CN</language>\n"
      << "    <category>" << category_of(type) << "</category>\n"
      << "    <event>" << markup_escape(type) << "</event>\n"
      << "    <urgency>" << enum_name(e.urgency) << "</urgency>\n"
      << "    <severity>" << enum_name(e.severity) << "</severity>\n"
      << "    <certainty>" << enum_name(e.certainty) << "</certainty>\n"
      << "    <senderName>平安校园 Pingan</senderName>\n"
      << "    <headline>" << markup_escape(headline_of(headline)) << "</headline>\n"
      << "    <description>" << markup_escape(fields) << "</description>\n"
      << "    <parameter><valueName>pingan:type</valueName><value>" << markup_escape(type)
      << "</value></parameter>\n";
    if (e.offset)
        o << "    <parameter><valueName>pingan:offset</valueName><value>" << e.offset
          << "</value></parameter>\n";
    o << area_xml(reg, e.school, e.district) << "  </info>\n</alert>\n";
    return o.str();
}

// The stored events of `types` (exact names) at the school or district of
// `f`: from the broker's REPLAY marked as an export (logged as access.viewed),
// or from a store directory read directly.
std::vector<event> events_of(const std::vector<std::string>& types, const incident_filter& f,
                             const std::string& dir) {
    std::set<std::string> wanted(types.begin(), types.end());
    auto prefix = wanted.size() == 1 ? *wanted.begin() : std::string();
    std::vector<event> out;
    auto keep = [&](std::uint64_t off, std::string_view rec) {
        event e;
        if (auto p = decode(rec, e))
            fatal("record " + std::to_string(off) + " does not decode: " + p.text(), 1);
        if (!wanted.count(std::string(e.type()))) return true;
        e.offset = off;
        redact_minors(e);
        out.push_back(std::move(e));
        return true;
    };
    if (!dir.empty()) {
        scan_filter sf;
        sf.type_prefix = prefix;
        sf.school = f.school;
        sf.district = f.district;
        scan_store(dir, sf, keep);
        std::cerr << "pingan: this export is not logged: it read the store directly, read-only; "
                     "export through the broker to have it logged as access.viewed\n";
        return out;
    }
    zmq::context_t ctx(1);
    query_client q(ctx, endpoints().query, curve());
    announce_waiting(q.link());
    replay_request r;
    r.type = prefix;
    r.school = f.school;
    r.district = f.district;
    r.credit = 2000;
    r.purpose = "export"; // the broker logs it as access.viewed
    try {
        q.replay(r, keep, answer_timeout());
    } catch (const error& e) {
        fail(e);
    }
    return out;
}

// Writes `alerts` (identifier, XML): one to standard output, or each to
// DIR/IDENTIFIER.xml; several to standard output are refused.
void write_alerts(const std::vector<std::pair<std::string, std::string>>& alerts,
                  const std::string& out, const std::string& what) {
    if (out.empty() || out == "-") {
        if (alerts.size() > 1)
            fatal(std::to_string(alerts.size()) + " " + what +
                      " match: several alerts do not go to standard output; give --out DIR "
                      "(one file per alert)",
                  2);
        for (const auto& [id, xml] : alerts)
            std::cout << xml;
        std::cerr << "pingan: " << alerts.size() << " alert" << (alerts.size() == 1 ? "" : "s")
                  << " written to standard output\n";
        return;
    }
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (!std::filesystem::is_directory(out))
        fatal("--out " + out + ": not a directory" + (ec ? " (" + ec.message() + ")" : ""), 2);
    for (const auto& [id, xml] : alerts)
        write_file((std::filesystem::path(out) / (id + ".xml")).string(), xml);
    std::cerr << "pingan: " << alerts.size() << " alert" << (alerts.size() == 1 ? "" : "s")
              << " written to " << out << "\n";
}

void run_export(const export_args& a) {
    auto reg = load_school_registry(a.registry_file);
    auto dir = data_dir_or_env(a.data_dir);
    bool to_stdout = a.out.empty() || a.out == "-";
    if (!a.types.empty()) {
        const auto& known = known_types();
        for (const auto& t : a.types) {
            if (std::find(known.begin(), known.end(), t) == known.end())
                fatal("--type " + t + ": not an event type (pingan schema lists them)", 2);
            if (carries_minors_details(t))
                fatal("--type " + t +
                          ": its events carry minors' details (a student's reference, "
                          "health or indicator codes) and are never exported as CAP alerts",
                      2);
        }
        std::vector<std::pair<std::string, std::string>> alerts;
        for (const auto& e : events_of(a.types, a.filter, dir))
            alerts.emplace_back(e.id.str(), event_alert_xml(e, a.sender, *reg));
        write_alerts(alerts, a.out, "events");
        return;
    }
    if (!a.ref.empty()) {
        auto r = dir.empty() ? incident_from_broker(a.ref, a.school)
                             : incident_from_store(dir, a.ref, a.school);
        auto xml = alert_xml(r.incident, a.sender, *reg);
        if (to_stdout)
            std::cout << xml;
        else
            write_file(a.out, xml);
        return;
    }
    // Every incident that passes the filters: one file per alert in --out.
    bool truncated = false;
    auto incidents = list_incidents(a.filter, dir, truncated);
    if (truncated)
        std::cerr << "pingan: the broker sent the first " << incidents.size()
                  << " incidents only; narrow the filters\n";
    std::vector<std::pair<std::string, std::string>> alerts;
    for (const auto& inc : incidents)
        alerts.emplace_back(identifier_of(inc), alert_xml(inc, a.sender, *reg));
    write_alerts(alerts, a.out, "incidents");
}

// ---- import ----

struct import_args {
    std::string file, out_file, registry_file;
    bool dry_run = false;
};

[[noreturn]] void refuse(const std::string& file, const std::string& why) {
    fatal(file + ": not imported: " + why, 1);
}

// The encoding the XML declaration names, or "" when it names none.
std::string declared_encoding(const std::string& text) {
    if (!text.starts_with("<?xml")) return {};
    auto end = text.find("?>");
    auto decl = text.substr(0, end);
    auto at = decl.find("encoding");
    if (at == std::string::npos) return {};
    auto q = decl.find_first_of("\"'", at);
    if (q == std::string::npos) return {};
    auto q2 = decl.find(decl[q], q + 1);
    if (q2 == std::string::npos) return {};
    return decl.substr(q + 1, q2 - q - 1);
}

const xmlNode* child(const xmlNode* n, const char* name) {
    for (auto* c = n ? n->children : nullptr; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0) return c;
    return nullptr;
}

std::vector<const xmlNode*> children(const xmlNode* n, const char* name) {
    std::vector<const xmlNode*> v;
    for (auto* c = n ? n->children : nullptr; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0) v.push_back(c);
    return v;
}

std::string text_of(const xmlNode* n) {
    if (!n) return {};
    xmlChar* s = xmlNodeGetContent(n);
    std::string out = s ? reinterpret_cast<const char*>(s) : "";
    xmlFree(s);
    auto b = out.find_first_not_of(" \t\r\n");
    auto e = out.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
}

struct point {
    double lat, lon;
};

double km_between(point a, point b) {
    constexpr double r = 6371.0, rad = 3.14159265358979323846 / 180;
    double dlat = (b.lat - a.lat) * rad, dlon = (b.lon - a.lon) * rad;
    double h =
        std::sin(dlat / 2) * std::sin(dlat / 2) +
        std::cos(a.lat * rad) * std::cos(b.lat * rad) * std::sin(dlon / 2) * std::sin(dlon / 2);
    return 2 * r * std::asin(std::sqrt(h));
}

// "lat,lon lat,lon ...": CAP's WGS 84 pairs.
std::optional<std::vector<point>> parse_points(const std::string& s) {
    std::vector<point> v;
    std::istringstream in(s);
    for (std::string pair; in >> pair;) {
        auto comma = pair.find(',');
        if (comma == std::string::npos) return std::nullopt;
        try {
            std::size_t used = 0;
            double lat = std::stod(pair.substr(0, comma), &used);
            double lon = std::stod(pair.substr(comma + 1));
            if (lat < -90 || lat > 90 || lon < -180 || lon > 180) return std::nullopt;
            v.push_back({lat, lon});
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    return v;
}

bool inside(const std::vector<point>& poly, point p) {
    bool in = false;
    for (std::size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
        if ((poly[i].lat > p.lat) != (poly[j].lat > p.lat) &&
            p.lon <
                (poly[j].lon - poly[i].lon) * (p.lat - poly[i].lat) / (poly[j].lat - poly[i].lat) +
                    poly[i].lon)
            in = !in;
    }
    return in;
}

// The id of the event an alert makes for a school: the same for the same
// (sender, identifier, school), so references need no lookup.
event_id derived_id(const std::string& sender, const std::string& identifier,
                    const std::string& school, timestamp sent) {
    auto base = new_event_id(sent).str(); // keeps the time prefix of a UUIDv7
    std::string key = sender + "\n" + identifier + "\n" + school;
    unsigned char h[16];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                       nullptr, 0);
    // UUIDv7 layout: 48 bits of time, version 7, then hash bits with the variant.
    char hexs[33];
    for (int i = 0; i < 16; ++i)
        std::snprintf(hexs + 2 * i, 3, "%02x", h[i]);
    std::string hex(hexs);
    auto t = base.substr(0, 8) + base.substr(9, 4); // 48 bits of time
    std::string u = t.substr(0, 8) + "-" + t.substr(8, 4) + "-7" + hex.substr(0, 3) + "-" +
                    std::string(1, "89ab"[h[2] & 3]) + hex.substr(4, 3) + "-" + hex.substr(8, 12);
    auto id = event_id::parse(u);
    return *id;
}

void run_import(const import_args& a) {
    std::string text;
    if (a.file == "-") {
        std::ostringstream s;
        s << std::cin.rdbuf();
        text = s.str();
    } else {
        std::ifstream in(a.file, std::ios::binary);
        if (!in) fatal("cannot read " + a.file);
        std::ostringstream s;
        s << in.rdbuf();
        text = s.str();
    }
    const auto& name = a.file == "-" ? std::string("standard input") : a.file;
    if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
    auto enc = declared_encoding(text);
    for (auto& c : enc)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!enc.empty() && enc != "UTF-8" && enc != "UTF8")
        refuse(name, "encoding \"" + declared_encoding(text) +
                         "\" is not supported: CAP import takes UTF-8 (convert with iconv)");
    if (text.find("<!DOCTYPE") != std::string::npos || text.find("<!ENTITY") != std::string::npos)
        refuse(name, "a DOCTYPE or entity declaration is not allowed in a CAP message "
                     "(nothing was fetched or read)");
    if (text.find("XInclude") != std::string::npos)
        refuse(name, "XInclude is not allowed in a CAP message (nothing was fetched or read)");
    xmlDocPtr doc = xmlReadMemory(text.data(), static_cast<int>(text.size()), "cap.xml", "UTF-8",
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError* err = xmlGetLastError();
        refuse(name, std::string("not well-formed XML") +
                         (err && err->message ? ": line " + std::to_string(err->line) + ": " +
                                                    std::string(err->message)
                                              : std::string()));
    }
    std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)> guard(doc, xmlFreeDoc);
    const xmlNode* root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, BAD_CAST "alert") != 0 || !root->ns ||
        xmlStrcmp(root->ns->href, BAD_CAST cap_ns) != 0)
        refuse(name, std::string("not a CAP 1.2 alert: the root must be <alert xmlns=\"") + cap_ns +
                         "\">");
    auto need = [&](const char* field) {
        auto v = text_of(child(root, field));
        if (v.empty()) refuse(name, std::string("<") + field + "> is missing or empty");
        return v;
    };
    auto identifier = need("identifier"), sender = need("sender"), sent_text = need("sent");
    auto st = need("status"), msg_type = need("msgType"), scope_text = need("scope");
    auto sent = parse_utc(sent_text);
    if (!sent) refuse(name, "<sent> \"" + sent_text + "\" is not a date and time");
    if (msg_type != "Alert" && msg_type != "Update" && msg_type != "Cancel")
        refuse(name, "<msgType> " + msg_type + ": only Alert, Update and Cancel are imported");
    auto mode = enum_parse<status>(st);
    if (!mode || *mode == status::system || st == "Draft")
        refuse(name, "<status> " + st + ": only Actual, Exercise and Test are imported");
    // References: "sender,identifier,sent" triples separated by spaces.
    struct reference {
        std::string sender, identifier;
        timestamp sent;
    };
    std::vector<reference> refs;
    {
        std::istringstream in(text_of(child(root, "references")));
        for (std::string r; in >> r;) {
            auto c1 = r.find(','), c2 = r.find(',', c1 == std::string::npos ? 0 : c1 + 1);
            if (c1 == std::string::npos || c2 == std::string::npos)
                refuse(name, "<references> \"" + r + "\" is not sender,identifier,sent");
            auto when = parse_utc(r.substr(c2 + 1));
            if (!when)
                refuse(name, "<references> \"" + r + "\": the sent time is not a date and time");
            refs.push_back({r.substr(0, c1), r.substr(c1 + 1, c2 - c1 - 1), *when});
        }
    }
    if (msg_type != "Alert" && refs.empty())
        refuse(name, "an " + msg_type + " must name the alert it updates in <references>");

    auto reg = load_school_registry(a.registry_file);
    std::vector<event> out;
    std::set<std::string> done;
    for (const auto* info : children(root, "info")) {
        auto lang = text_of(child(info, "language"));
        auto headline = text_of(child(info, "headline"));
        auto ev_name = text_of(child(info, "event"));
        if (ev_name.empty()) refuse(name, "<info> without <event>");
        auto sev = enum_parse<severity>(text_of(child(info, "severity")));
        auto urg = enum_parse<urgency>(text_of(child(info, "urgency")));
        auto cer = enum_parse<certainty>(text_of(child(info, "certainty")));
        if (!sev || !urg || !cer)
            refuse(name,
                   "<info> " + ev_name + ": urgency, severity or certainty is not a CAP value");
        for (const auto* area : children(info, "area")) {
            std::vector<std::pair<point, double>> circles;
            std::vector<std::vector<point>> polygons;
            for (const auto* c : children(area, "circle")) {
                auto t = text_of(c);
                auto sp = t.find(' ');
                auto centre = parse_points(t.substr(0, sp));
                double radius = -1;
                try {
                    radius = std::stod(t.substr(sp + 1));
                } catch (const std::exception&) {
                }
                if (sp == std::string::npos || !centre || centre->size() != 1 || radius < 0)
                    refuse(name, "<circle> \"" + t + "\" is not \"lat,lon radius_km\"");
                circles.emplace_back((*centre)[0], radius);
            }
            for (const auto* p : children(area, "polygon")) {
                auto pts = parse_points(text_of(p));
                if (!pts || pts->size() < 4)
                    refuse(name, "<polygon> \"" + text_of(p) +
                                     "\" is not four or more \"lat,lon\" pairs");
                polygons.push_back(*pts);
            }
            for (const auto& s : reg->schools()) {
                point at{s.lat, s.lon};
                bool hit = false;
                for (const auto& [c, r] : circles)
                    hit = hit || km_between(c, at) <= r;
                for (const auto& poly : polygons)
                    hit = hit || inside(poly, at);
                if (!hit || !done.insert(s.id).second) continue;
                event e;
                e.id = derived_id(sender, identifier, s.id, *sent);
                e.school = s.id;
                e.source = "pingan-cli/cap";
                e.occurred_at = *sent;
                e.status = *mode;
                e.severity = *sev;
                e.urgency = *urg;
                e.certainty = *cer;
                e.scope = scope_text == "Public" ? scope::public_ : scope::restricted;
                for (const auto& r : refs)
                    e.references.push_back(derived_id(r.sender, r.identifier, s.id, r.sent));
                alert_external b;
                b.cap_identifier = identifier;
                b.cap_sender = sender;
                b.msg_type = msg_type;
                b.category = text_of(child(info, "category"));
                b.event = ev_name;
                b.headline = headline;
                b.description = text_of(child(info, "description"));
                b.instruction = text_of(child(info, "instruction"));
                if (auto x = parse_utc(text_of(child(info, "expires")))) b.expires = *x;
                b.area = text_of(child(area, "areaDesc"));
                b.language = lang;
                e.body = std::move(b);
                out.push_back(std::move(e));
            }
        }
    }
    json summary = {{"identifier", identifier},
                    {"sender", sender},
                    {"msgType", msg_type},
                    {"schools", out.size()}};
    if (a.dry_run || out.empty()) {
        for (const auto& e : out)
            std::cout << to_json_line(e) << "\n";
        std::cerr << "pingan: " << summary.dump() << "\n";
        return;
    }
    // Received by the broker at its own time: an alert sent long ago keeps its
    // sent time as occurred_at only if the broker accepts it.
    zmq::context_t ctx(1);
    ingest_client client(ctx, endpoints().ingest, curve());
    publish_reply reply;
    try {
        reply = client.publish(out, answer_timeout(), 1);
    } catch (const error& x) {
        fail(x);
    }
    if (reply.refused) fatal("the broker refused the alert: " + reply.message, 1);
    std::size_t rejected = 0;
    for (std::size_t i = 0; i < reply.results.size(); ++i) {
        const auto& r = reply.results[i];
        json j = {{"id", out[i].id.str()}, {"school", out[i].school}};
        if (r.what == wire::outcome::rejected) {
            ++rejected;
            j["error"] = {{"code", std::string(errc_name(r.code))}, {"message", r.message}};
        } else {
            j["offset"] = r.offset;
            j["duplicate"] = r.what == wire::outcome::duplicate;
        }
        std::cout << j.dump() << "\n";
    }
    if (rejected) exit_code() = 1;
}

} // namespace

void add_cap_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("cap", "CAP 1.2 alerts: export incidents or selected events, "
                                          "import an outside warning for the schools in its areas");
    cmd->require_subcommand(1);
    auto e = std::make_shared<export_args>();
    auto* ex = cmd->add_subcommand(
        "export", "Incidents as CAP 1.2 alerts (Alert while open, Update afterwards, Cancel when "
                  "withdrawn), validating against the OASIS schema: one incident, or without an "
                  "incident every one the filters pass, one file per alert in --out DIR; with "
                  "--type, events of those types, one alert each");
    auto* inc_opt =
        ex->add_option("incident", e->ref,
                       "incident id, or a subject with --school (omit: every incident that "
                       "passes --state, --severity, --school, --district, --kind, --mode)");
    ex->add_option("--school", e->school,
                   "the school: of a subject, or without an incident only this school")
        ->each([e](const std::string& v) { e->filter.school = v; });
    ex->add_option("--out", e->out,
                   "with an incident: write to this file; without: the directory that receives "
                   "one IDENTIFIER.xml per alert (default: standard output, for one alert only)");
    std::vector<CLI::Option*> filters;
    filters.push_back(
        ex->add_option("--state", e->filter.state, "only this state")
            ->check(CLI::IsMember({"open", "acknowledged", "rectified", "closed", "active"})));
    filters.push_back(
        ex->add_option("--severity,--level", e->filter.severity, "only this severity")
            ->check(CLI::IsMember({"Extreme", "Severe", "Moderate", "Minor", "Unknown"})));
    auto* district = ex->add_option("--district", e->filter.district, "only this district");
    filters.push_back(district);
    filters.push_back(ex->add_option("--kind", e->filter.kind,
                                     "only this kind (hazard, food_illness, psych, ...)"));
    filters.push_back(ex->add_option("--mode", e->filter.mode, "only this mode")
                          ->check(CLI::IsMember({"Actual", "Exercise", "Test"})));
    for (auto* f : filters)
        inc_opt->excludes(f);
    auto* type_opt = ex->add_option(
        "--type", e->types,
        "instead of incidents, every stored event of this type as a CAP Alert of its own "
        "(identifier: the event id), within --school or --district; repeatable "
        "(food.alert, health.cluster, hazard.reported, ...; never psych.alert or "
        "bullying.reported, which carry minors' details)");
    type_opt->excludes(inc_opt);
    for (auto* f : filters)
        if (f != district) type_opt->excludes(f);
    ex->add_option("--sender", e->sender, "the alert's sender")->capture_default_str();
    ex->add_option("--data", e->data_dir,
                   "read this store directory instead of asking the broker ($PINGAN_DATA)");
    ex->add_option("--registry", e->registry_file, "schools.csv, for the schools' positions");
    add_endpoint_options(*ex, false, false, true);
    ex->callback([e] { run_export(*e); });

    auto i = std::make_shared<import_args>();
    auto* im = cmd->add_subcommand(
        "import", "An outside CAP 1.2 alert (weather, flood, earthquake) as alert.external events "
                  "for the schools inside its areas; Update and Cancel reference the earlier ones");
    im->add_option("file", i->file, "the CAP file, or - for standard input")->required();
    im->add_flag("--dry-run", i->dry_run, "print the events (JSON Lines) instead of publishing");
    im->add_option("--registry", i->registry_file, "schools.csv, for the schools' positions");
    add_endpoint_options(*im, true, false, false);
    im->callback([i] { run_import(*i); });
}

PINGAN_COMMAND(37, add_cap_command);

} // namespace pingan::cli
