// Rendering of events for the terminal, and the checks of the filters.
#include "tools/pingan/render.hpp"

#include "common/codec.hpp"
#include "tools/pingan/engine_cli.hpp"

#include <cctype>
#include <fstream>
#include <iostream>
#include <sstream>

namespace pingan::cli {
namespace {

bool has_prefix(std::string_view type, const std::vector<std::string>& prefixes) {
    for (const auto& p : prefixes)
        if (type.starts_with(p)) return true;
    return false;
}

// Cut on a character boundary: never half of a Chinese character.
std::string cut(std::string s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t at = max - 3;
    while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xc0) == 0x80)
        --at;
    return s.substr(0, at) + "...";
}

std::string str(const json& b, const char* k) {
    auto it = b.find(k);
    if (it == b.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

std::string local_time(const std::string& utc) {
    if (auto t = parse_utc(utc)) return format_local(*t);
    return utc;
}

std::string joined(const json& b, const char* k) {
    std::string s;
    if (auto it = b.find(k); it != b.end() && it->is_array())
        for (const auto& x : *it)
            s += (s.empty() ? "" : ",") + (x.is_string() ? x.get<std::string>() : x.dump());
    return s;
}

// What the event says, for people.
std::string summary(const event& e) {
    auto b = body_to_json(e.body);
    auto t = e.type();
    std::string s;
    if (t == "notification.requested") {
        s = "page " + str(b, "tier") + " " + joined(b, "roles") + ": " + str(b, "text");
        s += "  [" + str(b, "incident_id") + " rule " + str(b, "rule_id") + "]";
    } else if (t == "escalation.raised") {
        s = "to " + str(b, "tier") + " " + joined(b, "roles") + ": " + str(b, "reason");
        if (!str(b, "deadline").empty()) s += "  deadline " + local_time(str(b, "deadline"));
        if (b.value("late", false)) s += "  (late)";
        s += "  [" + str(b, "incident_id") + " rule " + str(b, "rule_id") + "]";
    } else if (t == "incident.opened") {
        s = str(b, "incident_id") + " " + str(b, "title");
        if (!str(b, "due").empty()) s += "  due " + local_time(str(b, "due"));
        s += "  [rule " + str(b, "rule_id") + "]";
    } else if (t == "incident.overdue") {
        s = str(b, "incident_id") + " waited for " + str(b, "waited_for") + " (deadline " +
            local_time(str(b, "deadline")) + ", " + str(b, "tier") + ")";
    } else if (t == "incident.closed" || t == "incident.reopened") {
        s = str(b, "incident_id") + ": " + str(b, "reason");
    } else if (t == "incident.acknowledged") {
        s = str(b, "incident_id") + (str(b, "note").empty() ? "" : ": " + str(b, "note"));
        if (!e.actor.empty()) s += "  by " + e.actor;
    } else if (t == "incident.note") {
        s = str(b, "incident_id") + " note: " + str(b, "text");
        if (!e.actor.empty()) s += "  by " + e.actor;
    } else if (t == "incident.resolved") {
        s = str(b, "incident_id") + (b.value("withdrawn", false) ? " withdrawn" : "") + ": " +
            str(b, "resolution");
        if (!e.actor.empty()) s += "  by " + e.actor;
    } else if (t == "hazard.reported") {
        s = str(b, "hazard_id") + " " + str(b, "grade") + " " + str(b, "area") + ": " +
            str(b, "description") + " @ " + str(b, "location");
    } else if (t == "hazard.rectified") {
        s = str(b, "hazard_id") + " by " + str(b, "rectified_by") + ": " + str(b, "description");
    } else if (t == "hazard.verified") {
        s = str(b, "hazard_id") + " " + str(b, "result") + " by " + str(b, "verifier") +
            (str(b, "evidence").empty() ? "" : ": " + str(b, "evidence"));
    } else {
        return cut(b.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace), 300);
    }
    return s;
}

} // namespace

bool filter_options::matches(const event& e) const {
    auto t = e.type();
    if (!types.empty() && !has_prefix(t, types)) return false;
    if (has_prefix(t, exclude)) return false;
    if (!school.empty() && e.school != school) return false;
    if (!district.empty() && e.district != district) return false;
    return true;
}

void add_filter_options(CLI::App& cmd, filter_options& f) {
    cmd.add_option("--type", f.types,
                   "type or type prefix, e.g. hazard. or food.alert; repeat for several");
    cmd.add_option("--exclude", f.exclude,
                   "leave out this type or prefix, e.g. food.temp_reading; repeat for several");
    cmd.add_option("--school", f.school, "one school, e.g. 420502K001");
    cmd.add_option("--district", f.district, "one district code, e.g. 420502");
    cmd.add_flag("--json", f.json, "JSON Lines instead of one line for people");
    cmd.add_option("--registry", f.registry,
                   "schools.csv for school names and code checks ($PINGAN_REGISTRY_DIR, or found "
                   "beside the program)");
}

std::optional<registry> load_registry(const filter_options& f) {
    std::string path = f.registry;
    if (path.empty()) {
        auto dir = registry_dir();
        if (dir.empty()) return std::nullopt;
        path = dir + "/schools.csv";
    }
    auto read = [](const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    };
    if (!std::filesystem::exists(path)) fatal("cannot read " + path);
    try {
        return registry::from_csv(
            read(path), read(std::filesystem::path(path).parent_path() / "districts.csv"));
    } catch (const error& e) {
        fatal(path + ": " + e.detail());
    }
}

void check_filters(const filter_options& f, const registry* reg) {
    for (const auto* list : {&f.types, &f.exclude})
        for (const auto& t : *list) {
            bool known = false;
            for (auto k : known_types())
                known = known || k.starts_with(t);
            if (t.empty() || !known)
                fatal("unknown event type \"" + t +
                      "\": give a type or a prefix of one, e.g. hazard. (pingan schema lists "
                      "them)");
        }
    if (f.school.empty() && f.district.empty()) return;
    if (!reg) {
        std::cerr << "pingan: warning: school and district codes are not checked: no school "
                     "registry found ("
                  << registry_search_text() << ")\n";
        return;
    }
    if (!f.school.empty() && !reg->find(f.school)) {
        std::string upper = f.school;
        for (auto& c : upper)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        fatal("school \"" + f.school + "\" is not in the registry" +
              (upper != f.school && reg->find(upper)
                   ? " (school codes are upper case: " + upper + ")"
                   : ""));
    }
    if (!f.district.empty() && !reg->districts().empty() && !reg->find_district(f.district)) {
        for (const auto& d : reg->districts())
            if (d.name == f.district)
                fatal("district \"" + f.district + "\" is a name: give its code, " + d.code);
        fatal("district \"" + f.district + "\" is not in the registry (a code such as 420502)");
    }
}

std::string render_line(const event& e, const registry* reg) {
    std::ostringstream o;
    o << "#" << e.offset << "  " << format_local(e.received_at) << "  ";
    if (e.status == status::exercise) o << "[EXERCISE] ";
    if (e.status == status::test) o << "[TEST] ";
    o << e.type() << "  " << (e.school.empty() ? "-" : e.school);
    if (reg && !e.school.empty())
        if (auto* s = reg->find(e.school)) o << " " << s->name;
    o << "  " << enum_name(e.severity) << "  " << summary(e);
    return o.str();
}

} // namespace pingan::cli
