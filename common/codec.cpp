// Binary (cereal) and JSON codecs for events, both driven by the bodies' field lists.
#include "codec.hpp"

#include "validate.hpp"

#include <cereal/archives/portable_binary.hpp>

#include <bit>
#include <cctype>
#include <cstring>
#include <istream>
#include <ostream>
#include <streambuf>

namespace pingan {
namespace {

constexpr std::uint8_t record_format = 1;

// cereal reads and writes through rdbuf()->sgetn/sputn: these two buffers let
// it work on memory without the cost of a stringstream.
class string_sink final : public std::streambuf {
  public:
    explicit string_sink(std::string& s) : s_(s) {}

  protected:
    std::streamsize xsputn(const char* p, std::streamsize n) override {
        s_.append(p, static_cast<std::size_t>(n));
        return n;
    }
    int_type overflow(int_type c) override {
        if (c != traits_type::eof()) s_.push_back(static_cast<char>(c));
        return c;
    }

  private:
    std::string& s_;
};

class span_source final : public std::streambuf {
  public:
    explicit span_source(std::string_view b) {
        auto* p = const_cast<char*>(b.data());
        setg(p, p, p + b.size());
    }
};

// ---- binary ---------------------------------------------------------------------

using oarchive = cereal::PortableBinaryOutputArchive;

// The input archive with the buffer it reads, so that lengths read from the
// bytes can be checked against what is left before anything is allocated.
struct reader {
    span_source& src;
    cereal::PortableBinaryInputArchive& ar;

    void need(std::uint64_t n) {
        if (n > static_cast<std::uint64_t>(src.in_avail()))
            throw error(errc::undecodable, "length " + std::to_string(n) + " past end of data");
    }
};

template <class T> void save_value(oarchive& ar, const T& v) {
    if constexpr (std::is_same_v<T, timestamp>) {
        ar(to_us(v));
    } else if constexpr (std::is_enum_v<T>) {
        ar(static_cast<std::uint8_t>(v));
    } else if constexpr (is_optional<T>::value) {
        ar(v.has_value());
        if (v) save_value(ar, *v);
    } else if constexpr (is_vector<T>::value) {
        ar(static_cast<std::uint64_t>(v.size()));
        for (const auto& x : v)
            save_value(ar, x);
    } else if constexpr (std::is_same_v<T, std::string>) {
        ar(static_cast<std::uint64_t>(v.size()));
        ar(cereal::binary_data(v.data(), v.size()));
    } else if constexpr (field_record<T>) {
        const_cast<T&>(v).fields(
            [&](std::string_view, const auto& x, field_opts) { save_value(ar, x); });
    } else {
        ar(v);
    }
}

// A bool is one byte on the wire; any byte but 0 or 1 is refused (loading it
// into a bool would be undefined behaviour).
bool load_bool(reader& r) {
    std::uint8_t b;
    r.ar(b);
    if (b > 1)
        throw error(errc::undecodable, "boolean byte " + std::to_string(b) + " is neither 0 nor 1");
    return b == 1;
}

template <class T> void load_value(reader& r, T& v) {
    if constexpr (std::is_same_v<T, timestamp>) {
        std::int64_t us;
        r.ar(us);
        v = from_us(us);
        if (!representable(v))
            throw error(errc::undecodable,
                        "time " + std::to_string(us) + " us is outside years 0000 to 9999");
    } else if constexpr (std::is_enum_v<T>) {
        std::uint8_t x;
        r.ar(x);
        if (x >= enum_names<T>::names.size())
            throw error(errc::undecodable, "enumerator " + std::to_string(x) + " out of range");
        v = static_cast<T>(x);
    } else if constexpr (std::is_same_v<T, bool>) {
        v = load_bool(r);
    } else if constexpr (is_optional<T>::value) {
        if (load_bool(r)) {
            typename T::value_type x{};
            load_value(r, x);
            v = std::move(x);
        } else {
            v.reset();
        }
    } else if constexpr (is_vector<T>::value) {
        std::uint64_t n;
        r.ar(n);
        r.need(n); // every item takes at least one byte
        v.resize(static_cast<std::size_t>(n));
        for (auto& x : v)
            load_value(r, x);
    } else if constexpr (std::is_same_v<T, std::string>) {
        std::uint64_t n;
        r.ar(n);
        r.need(n);
        v.resize(static_cast<std::size_t>(n));
        r.ar(cereal::binary_data(v.data(), v.size()));
    } else if constexpr (field_record<T>) {
        v.fields([&](std::string_view, auto& x, field_opts) { load_value(r, x); });
    } else {
        r.ar(v);
    }
}

void save_id(oarchive& ar, const event_id& id) {
    ar(cereal::binary_data(id.bytes.data(), 16));
}
void load_id(reader& r, event_id& id) {
    r.need(16);
    r.ar(cereal::binary_data(id.bytes.data(), 16));
}

template <class Body> void save_body(oarchive& ar, const Body& b) {
    ar(Body::version);
    const_cast<Body&>(b).fields(
        [&](std::string_view, const auto& v, field_opts) { save_value(ar, v); });
}

template <class Body> void load_body(reader& r, Body& b) {
    std::uint32_t version;
    r.ar(version);
    if (version > Body::version || version == 0)
        throw error(errc::unsupported_version,
                    std::string(Body::type) + " body version " + std::to_string(version));
    b.fields([&](std::string_view, auto& v, field_opts o) {
        if (o.since <= version) load_value(r, v);
    });
}

// ---- JSON -----------------------------------------------------------------------

template <class T> json value_to_json(const T& v) {
    if constexpr (std::is_same_v<T, timestamp>) {
        return format_utc(v);
    } else if constexpr (std::is_enum_v<T>) {
        return std::string(enum_name(v));
    } else if constexpr (is_optional<T>::value) {
        return v ? value_to_json(*v) : json(nullptr);
    } else if constexpr (is_vector<T>::value) {
        json a = json::array();
        for (const auto& x : v)
            a.push_back(value_to_json(x));
        return a;
    } else if constexpr (field_record<T>) {
        json o = json::object();
        const_cast<T&>(v).fields([&](std::string_view name, const auto& x, field_opts) {
            o[std::string(name)] = value_to_json(x);
        });
        return o;
    } else {
        return v;
    }
}

std::string path_of(std::string_view prefix, std::string_view name) {
    std::string s(prefix);
    if (!s.empty()) s += '.';
    s += name;
    return s;
}

template <field_record T> problem record_from_json(const json& j, const std::string& path, T& v);

// Reads one value; `path` names it in errors ("body.area", "body.photos[2]").
template <class T> problem value_from_json(const json& j, const std::string& path, T& v) {
    if constexpr (std::is_same_v<T, timestamp>) {
        if (!j.is_string()) return {errc::wrong_type, path + ": expected an RFC 3339 time string"};
        auto t = parse_utc(j.get_ref<const std::string&>());
        if (!t)
            return {errc::bad_value, path + ": \"" + j.get<std::string>() +
                                         "\" is not an RFC 3339 time such as 2026-11-29T07:31:50Z"};
        v = *t;
    } else if constexpr (std::is_enum_v<T>) {
        if (!j.is_string()) return {errc::wrong_type, path + ": expected a string"};
        auto e = enum_parse<T>(j.get_ref<const std::string&>());
        if (!e)
            return {errc::unknown_enum,
                    path + ": \"" + j.get<std::string>() + "\" is not one of " + enum_choices<T>()};
        v = *e;
    } else if constexpr (is_optional<T>::value) {
        if (j.is_null()) {
            v.reset();
        } else {
            typename T::value_type x{};
            if (auto p = value_from_json(j, path, x)) return p;
            v = std::move(x);
        }
    } else if constexpr (is_vector<T>::value) {
        if (!j.is_array()) return {errc::wrong_type, path + ": expected an array"};
        v.clear();
        v.reserve(j.size());
        for (std::size_t i = 0; i < j.size(); ++i) {
            typename T::value_type x{};
            if (auto p = value_from_json(j[i], path + "[" + std::to_string(i) + "]", x)) return p;
            v.push_back(std::move(x));
        }
    } else if constexpr (field_record<T>) {
        return record_from_json(j, path, v);
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!j.is_string()) return {errc::wrong_type, path + ": expected a string"};
        v = j.get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!j.is_boolean()) return {errc::wrong_type, path + ": expected true or false"};
        v = j.get<bool>();
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!j.is_number()) return {errc::wrong_type, path + ": expected a number"};
        v = j.get<T>();
    } else if constexpr (std::is_unsigned_v<T>) {
        if (!j.is_number_integer()) return {errc::wrong_type, path + ": expected a whole number"};
        if (j.is_number_integer() && !j.is_number_unsigned() && j.get<std::int64_t>() < 0)
            return {errc::bad_value, path + ": must not be negative"};
        auto x = j.get<std::uint64_t>();
        if (x > std::numeric_limits<T>::max()) return {errc::bad_value, path + ": too large"};
        v = static_cast<T>(x);
    } else {
        if (!j.is_number_integer()) return {errc::wrong_type, path + ": expected a whole number"};
        v = j.get<T>();
    }
    return {};
}

template <class T> constexpr bool required_in_json() {
    return std::is_same_v<T, std::string> || std::is_enum_v<T> || std::is_same_v<T, timestamp>;
}

// A record is an object with its fields, and nothing else.
template <field_record T> problem record_from_json(const json& j, const std::string& path, T& v) {
    if (!j.is_object()) return {errc::wrong_type, path + ": expected an object"};
    problem result;
    std::size_t known = 0;
    v.fields([&](std::string_view name, auto& x, field_opts) {
        if (result) return;
        using X = std::decay_t<decltype(x)>;
        auto it = j.find(name);
        if (it == j.end() || it->is_null()) {
            if constexpr (required_in_json<X>())
                result = {errc::missing_field, path + "." + std::string(name) + " is required"};
            return;
        }
        ++known;
        result = value_from_json(*it, path + "." + std::string(name), x);
    });
    if (!result && known != j.size())
        for (auto it = j.begin(); it != j.end(); ++it) {
            bool found = false;
            v.fields([&](std::string_view name, auto&, field_opts) {
                found = found || name == it.key();
            });
            if (!found) return {errc::bad_value, path + "." + it.key() + ": unknown field"};
        }
    return result;
}

template <class Body> problem body_fields_from_json(const json& j, Body& b) {
    if (!j.is_object()) return {errc::wrong_type, "body: expected an object"};
    problem result;
    std::size_t known = 0;
    b.fields([&](std::string_view name, auto& v, field_opts) {
        if (result) return;
        using T = std::decay_t<decltype(v)>;
        auto path = path_of("body", name);
        auto it = j.find(name);
        if (it == j.end() || it->is_null()) {
            if constexpr (required_in_json<T>())
                result = {errc::missing_field, path + " is required"};
            return;
        }
        ++known;
        result = value_from_json(*it, path, v);
    });
    if (!result && known != j.size()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            bool found = false;
            b.fields([&](std::string_view name, auto&, field_opts) {
                found = found || name == it.key();
            });
            if (!found)
                return {errc::bad_value,
                        "body." + it.key() + ": unknown field for " + std::string(Body::type)};
        }
    }
    return result;
}

} // namespace

// ---- public: binary -----------------------------------------------------------------

void encode(const event& e, std::string& out) {
    string_sink sink(out);
    // Constructing a stream costs a locale copy; one per thread, re-pointed, is enough.
    thread_local std::ostream os(nullptr);
    os.rdbuf(&sink);
    oarchive ar(os);
    ar(record_format);
    save_id(ar, e.id);
    ar(e.offset);
    auto t = e.type();
    ar(static_cast<std::uint64_t>(t.size()));
    ar(cereal::binary_data(t.data(), t.size()));
    save_value(ar, e.school);
    save_value(ar, e.district);
    save_value(ar, e.source);
    save_value(ar, e.actor);
    save_value(ar, e.occurred_at);
    save_value(ar, e.received_at);
    save_value(ar, e.status);
    save_value(ar, e.severity);
    save_value(ar, e.urgency);
    save_value(ar, e.certainty);
    save_value(ar, e.scope);
    ar(static_cast<std::uint64_t>(e.references.size()));
    for (const auto& r : e.references)
        save_id(ar, r);
    std::visit([&](const auto& b) { save_body(ar, b); }, e.body);
}

std::string encode(const event& e) {
    std::string s;
    s.reserve(256);
    encode(e, s);
    return s;
}

problem decode(std::string_view bytes, event& e) {
    try {
        span_source src(bytes);
        thread_local std::istream is(nullptr);
        is.rdbuf(&src); // also clears the stream's state
        cereal::PortableBinaryInputArchive ar(is);
        reader r{src, ar};
        // Portable binary's first byte says little-endian (1); anything else is not ours.
        if (bytes.empty() || bytes[0] != 1) return {errc::undecodable, "not a Pingan binary event"};
        std::uint8_t format;
        ar(format);
        if (format != record_format)
            return {format < 16 ? errc::unsupported_version : errc::undecodable,
                    "record format " + std::to_string(format)};
        load_id(r, e.id);
        ar(e.offset);
        std::string type;
        load_value(r, type);
        auto b = make_body(type);
        if (!b) return {errc::unknown_type, "type \"" + type + "\" is not known to this build"};
        load_value(r, e.school);
        load_value(r, e.district);
        load_value(r, e.source);
        load_value(r, e.actor);
        load_value(r, e.occurred_at);
        load_value(r, e.received_at);
        load_value(r, e.status);
        load_value(r, e.severity);
        load_value(r, e.urgency);
        load_value(r, e.certainty);
        load_value(r, e.scope);
        std::uint64_t n;
        ar(n);
        r.need(n * 16);
        e.references.resize(static_cast<std::size_t>(n));
        for (auto& ref : e.references)
            load_id(r, ref);
        e.body = std::move(*b);
        std::visit([&](auto& body) { load_body(r, body); }, e.body);
        if (src.in_avail() != 0)
            return {errc::undecodable, std::to_string(src.in_avail()) + " trailing bytes"};
        return {};
    } catch (const error& x) {
        return x.as_problem();
    } catch (const std::exception& x) {
        return {errc::undecodable, x.what()};
    }
}

std::size_t received_at_position(const event& e) noexcept {
    // flag, format, id, offset, five length-prefixed strings, occurred_at.
    return 2 + 16 + 8 + (8 + e.type().size()) + (8 + e.school.size()) + (8 + e.district.size()) +
           (8 + e.source.size()) + (8 + e.actor.size()) + 8;
}

void patch_broker_fields(char* bytes, std::size_t received_pos, std::uint64_t offset,
                         timestamp received_at) noexcept {
    // Portable binary is little-endian, as is every machine this runs on; the
    // codec tests check the patched bytes against a fresh encode.
    static_assert(std::endian::native == std::endian::little);
    auto us = to_us(received_at);
    std::memcpy(bytes + offset_position, &offset, 8);
    std::memcpy(bytes + received_pos, &us, 8);
}

std::optional<std::size_t> received_at_position(std::string_view b) noexcept {
    // flag, format, id, offset, then five length-prefixed strings and occurred_at.
    std::size_t pos = 26;
    for (int i = 0; i < 5; ++i) {
        if (b.size() < 8 || pos > b.size() - 8) return std::nullopt;
        std::uint64_t n;
        std::memcpy(&n, b.data() + pos, 8);
        pos += 8;
        if (n > b.size() - pos) return std::nullopt;
        pos += n;
    }
    pos += 8; // occurred_at
    if (pos > b.size() || b.size() - pos < 8) return std::nullopt;
    return pos;
}

bool peek(std::string_view b, event_head& h) noexcept {
    // endianness flag, format, id: 18 bytes, then the offset.
    if (b.size() < 26 || b[0] != 1 || b[1] != record_format) return false;
    std::memcpy(&h.offset, b.data() + 18, 8);
    std::size_t pos = 26;
    auto str = [&](std::string_view& out) {
        if (pos + 8 > b.size()) return false;
        std::uint64_t n;
        std::memcpy(&n, b.data() + pos, 8);
        pos += 8;
        if (n > b.size() - pos) return false;
        out = b.substr(pos, n);
        pos += n;
        return true;
    };
    return str(h.type) && str(h.school) && str(h.district);
}

// ---- public: JSON -------------------------------------------------------------------

json body_to_json(const body& b) {
    return std::visit(
        [](const auto& x) {
            json j = json::object();
            const_cast<std::decay_t<decltype(x)>&>(x).fields(
                [&](std::string_view name, const auto& v, field_opts) {
                    j[std::string(name)] = value_to_json(v);
                });
            return j;
        },
        b);
}

json to_json(const event& e) {
    json j = json::object();
    j["id"] = e.id.str();
    if (e.offset) j["offset"] = e.offset;
    j["type"] = std::string(e.type());
    j["school"] = e.school;
    j["district"] = e.district;
    j["source"] = e.source;
    if (!e.actor.empty()) j["actor"] = e.actor;
    j["occurred_at"] = format_utc(e.occurred_at);
    if (to_us(e.received_at)) j["received_at"] = format_utc(e.received_at);
    j["status"] = std::string(enum_name(e.status));
    j["severity"] = std::string(enum_name(e.severity));
    j["urgency"] = std::string(enum_name(e.urgency));
    j["certainty"] = std::string(enum_name(e.certainty));
    j["scope"] = std::string(enum_name(e.scope));
    json refs = json::array();
    for (const auto& r : e.references)
        refs.push_back(r.str());
    j["references"] = std::move(refs);
    j["body"] = body_to_json(e.body);
    return j;
}

std::string to_json_line(const event& e) {
    return to_json(e).dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

namespace {

// Follows a SAX parse to know, when the parser stops, which field it was in:
// "body.description", "body.photos[2]".
class path_tracker {
  public:
    using number_integer_t = json::number_integer_t;
    using number_unsigned_t = json::number_unsigned_t;
    using number_float_t = json::number_float_t;
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    bool null() { return value(); }
    bool boolean(bool) { return value(); }
    bool number_integer(number_integer_t) { return value(); }
    bool number_unsigned(number_unsigned_t) { return value(); }
    bool number_float(number_float_t, const string_t&) { return value(); }
    bool string(string_t&) { return value(); }
    bool binary(binary_t&) { return value(); }
    bool start_object(std::size_t) { return open(false); }
    bool start_array(std::size_t) { return open(true); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(string_t& k) {
        if (!frames_.empty()) frames_.back().key = k;
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
        return false;
    }

    std::string path() const {
        std::string p;
        for (const auto& f : frames_) {
            if (f.array) {
                p += "[" + std::to_string(f.index) + "]";
            } else if (!f.key.empty()) {
                if (!p.empty()) p += ".";
                p += f.key;
            }
        }
        return p;
    }
    bool in_object() const { return !frames_.empty() && !frames_.back().array; }

  private:
    struct frame {
        bool array = false;
        std::size_t index = 0;
        std::string key;
    };
    std::vector<frame> frames_;

    bool value() {
        if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
        return true;
    }
    bool open(bool array) {
        frames_.push_back({array, 0, {}});
        return true;
    }
    bool close() {
        if (!frames_.empty()) frames_.pop_back();
        return value();
    }
};

// Names the field of a JSON text whose string holds invalid UTF-8, and the
// offset of the bad byte within that string. `last` is the byte the parser
// stopped at (its 1-based count of bytes read).
std::string describe_invalid_utf8(std::string_view text, std::size_t last) {
    path_tracker t;
    json::sax_parse(text.begin(), text.end(), &t);
    // The string the parser was in starts after the nearest unescaped quote
    // before the byte that stopped it.
    std::size_t stop = std::min(last, text.size());
    std::size_t q = stop >= 2 ? stop - 2 : 0;
    while (q > 0) {
        if (text[q] == '"') {
            std::size_t slashes = 0;
            while (q > slashes && text[q - 1 - slashes] == '\\')
                ++slashes;
            if (slashes % 2 == 0) break;
        }
        --q;
    }
    std::size_t start = text[q] == '"' ? q + 1 : q;
    auto bad = utf8_error_at(text.substr(start));
    std::size_t at = bad == std::string_view::npos ? stop - start : bad;
    // A string right after "{" or "," in an object is a key, not a value.
    std::size_t b = q;
    while (b > 0 && std::isspace(static_cast<unsigned char>(text[b - 1])))
        --b;
    bool is_key = t.in_object() && b > 0 && (text[b - 1] == '{' || text[b - 1] == ',');
    auto path = t.path();
    if (is_key)
        return (path.empty() ? "a key" : "a key after " + path) + ": invalid UTF-8 at byte " +
               std::to_string(at);
    if (path.empty()) return "text is not valid UTF-8 (at byte " + std::to_string(last) + ")";
    return path + ": invalid UTF-8 at byte " + std::to_string(at);
}

} // namespace

problem parse_json(std::string_view text, json& out) {
    try {
        out = json::parse(text.begin(), text.end());
        return {};
    } catch (const json::parse_error& x) {
        std::string what = x.what();
        if (what.find("UTF-8") != std::string::npos || what.find("utf-8") != std::string::npos)
            return {errc::invalid_utf8, describe_invalid_utf8(text, x.byte)};
        return {errc::malformed_json, what};
    } catch (const json::exception& x) {
        // A number too large for a double (1e999) is an out_of_range, not a parse_error.
        return {errc::malformed_json, x.what()};
    }
}

problem body_from_json(std::string_view type, const json& j, body& out) {
    auto b = make_body(type);
    if (!b) return {errc::unknown_type, "type \"" + std::string(type) + "\" is not known"};
    out = std::move(*b);
    return std::visit([&](auto& x) { return body_fields_from_json(j, x); }, out);
}

problem from_json(const json& j, event& e) {
    if (!j.is_object()) return {errc::malformed_json, "an event must be a JSON object"};
    auto str = [&](const char* name, std::string& out, bool required) -> problem {
        auto it = j.find(name);
        if (it == j.end() || it->is_null()) {
            if (required) return {errc::missing_field, std::string(name) + " is required"};
            return {};
        }
        return value_from_json(*it, name, out);
    };
    auto opt_enum = [&](const char* name, auto& out, bool required) -> problem {
        auto it = j.find(name);
        if (it == j.end() || it->is_null()) {
            if (required) return {errc::missing_field, std::string(name) + " is required"};
            return {};
        }
        return value_from_json(*it, name, out);
    };

    std::string type;
    if (auto p = str("type", type, true)) return p;
    auto bit = j.find("body");
    if (bit == j.end() || bit->is_null()) return {errc::missing_field, "body is required"};
    if (auto p = body_from_json(type, *bit, e.body)) return p;

    if (auto it = j.find("id"); it != j.end() && !it->is_null()) {
        if (!it->is_string()) return {errc::wrong_type, "id: expected a UUID string"};
        auto id = event_id::parse(it->get_ref<const std::string&>());
        if (!id) return {errc::bad_id, "id: \"" + it->get<std::string>() + "\" is not a UUID"};
        e.id = *id;
    }
    if (auto p = str("school", e.school, false)) return p;
    if (auto p = str("district", e.district, false)) return p;
    if (auto p = str("source", e.source, false)) return p;
    auto oit = j.find("occurred_at");
    if (oit == j.end() || oit->is_null()) return {errc::missing_field, "occurred_at is required"};
    if (auto p = value_from_json(*oit, "occurred_at", e.occurred_at)) return p;
    if (auto p = opt_enum("status", e.status, true)) return p;
    if (auto p = opt_enum("severity", e.severity, false)) return p;
    if (auto p = opt_enum("urgency", e.urgency, false)) return p;
    if (auto p = opt_enum("certainty", e.certainty, false)) return p;
    if (auto p = opt_enum("scope", e.scope, false)) return p;
    if (auto it = j.find("references"); it != j.end() && !it->is_null()) {
        if (!it->is_array()) return {errc::wrong_type, "references: expected an array"};
        e.references.clear();
        for (std::size_t i = 0; i < it->size(); ++i) {
            const auto& r = (*it)[i];
            auto id =
                r.is_string() ? event_id::parse(r.get_ref<const std::string&>()) : std::nullopt;
            if (!id) return {errc::bad_id, "references[" + std::to_string(i) + "]: not a UUID"};
            e.references.push_back(*id);
        }
    }
    // Assigned by the broker, never by the publisher.
    e.offset = 0;
    e.actor.clear();
    e.received_at = timestamp{};
    if (auto it = j.find("offset"); it != j.end() && it->is_number_unsigned())
        e.offset = it->get<std::uint64_t>();
    if (auto it = j.find("actor"); it != j.end() && it->is_string())
        e.actor = it->get<std::string>();
    if (auto it = j.find("received_at"); it != j.end() && it->is_string())
        if (auto t = parse_utc(it->get_ref<const std::string&>())) e.received_at = *t;
    return {};
}

} // namespace pingan
