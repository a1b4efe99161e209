// Result frames and topics of the wire protocol.
#include "wire.hpp"

#include "codec.hpp"

namespace pingan::wire {

std::string encode_result(const result& r) {
    std::string s;
    s.reserve(result_header + r.message.size());
    s.push_back(static_cast<char>(r.what));
    s.push_back(0);
    auto code = static_cast<std::uint16_t>(r.code);
    s.push_back(static_cast<char>(code & 0xff));
    s.push_back(static_cast<char>(code >> 8));
    s.append(reinterpret_cast<const char*>(r.id.bytes.data()), 16);
    s += u64_le(r.offset);
    s += r.message;
    return s;
}

std::optional<result> decode_result(std::string_view f) {
    if (f.size() < result_header) return std::nullopt;
    result r;
    auto what = static_cast<unsigned char>(f[0]);
    if (what > 2) return std::nullopt;
    r.what = static_cast<outcome>(what);
    r.code =
        static_cast<errc>(static_cast<unsigned char>(f[2]) | static_cast<unsigned char>(f[3]) << 8);
    std::memcpy(r.id.bytes.data(), f.data() + 4, 16);
    r.offset = *read_u64_le(f.substr(20, 8));
    r.message = f.substr(result_header);
    return r;
}

std::string result_json(const result& r, std::size_t index) {
    json j = json::object();
    j["index"] = index;
    j["id"] = r.id.is_nil() ? json(nullptr) : json(r.id.str());
    if (r.what == outcome::rejected) {
        j["error"] = {{"code", std::string(errc_name(r.code))}, {"message", r.message}};
    } else {
        j["offset"] = r.offset;
        j["duplicate"] = r.what == outcome::duplicate;
    }
    return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

std::string error_json(errc code, std::string_view message) {
    json j = {{"code", std::string(errc_name(code))}, {"message", std::string(message)}};
    return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

std::string type_topic(std::string_view type, std::string_view district, std::string_view school) {
    std::string s;
    s.reserve(4 + type.size() + district.size() + school.size());
    s += "t/";
    s += type;
    s += '/';
    s += district;
    s += '/';
    s += school;
    return s;
}

std::string place_topic(std::string_view district, std::string_view school, std::string_view type) {
    std::string s;
    s.reserve(5 + type.size() + district.size() + school.size());
    s += "s/";
    s += district;
    s += '/';
    s += school;
    s += '/';
    s += type;
    return s;
}

std::string subscription(std::string_view type_prefix, std::string_view district,
                         std::string_view school) {
    if (!school.empty()) {
        // School ids begin with their district code (registry convention).
        std::string d = district.empty() ? std::string(school.substr(0, 6)) : std::string(district);
        return "s/" + d + "/" + std::string(school) + "/";
    }
    if (!district.empty()) return "s/" + std::string(district) + "/";
    return "t/" + std::string(type_prefix);
}

} // namespace pingan::wire
