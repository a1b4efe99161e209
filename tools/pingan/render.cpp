// Rendering of events for the terminal.
#include "tools/pingan/render.hpp"

#include "common/codec.hpp"

#include <fstream>
#include <sstream>

namespace pingan::cli {

void add_filter_options(CLI::App& cmd, filter_options& f) {
    cmd.add_option("--type", f.type, "type prefix, e.g. hazard. or food.alert");
    cmd.add_option("--school", f.school, "one school, e.g. 420502K001");
    cmd.add_option("--district", f.district, "one district code, e.g. 420502");
    cmd.add_flag("--json", f.json, "JSON Lines instead of one line for people");
    cmd.add_option("--registry", f.registry, "schools.csv for school names");
}

std::optional<registry> load_registry(const filter_options& f) {
    std::string path =
        f.registry.empty() ? std::string(PINGAN_DATA_DIR) + "/schools.csv" : f.registry;
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    try {
        return registry::from_csv(s.str());
    } catch (const error&) {
        return std::nullopt;
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
    o << "  " << enum_name(e.severity);
    auto body =
        body_to_json(e.body).dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
    if (body.size() > 160) {
        // Cut on a character boundary: never half of a Chinese character.
        std::size_t cut = 157;
        while (cut > 0 && (static_cast<unsigned char>(body[cut]) & 0xc0) == 0x80)
            --cut;
        body = body.substr(0, cut) + "...";
    }
    o << "  " << body;
    return o.str();
}

} // namespace pingan::cli
