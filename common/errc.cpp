// Names and messages for pingan::errc.
#include "errc.hpp"

#include <array>

namespace pingan {
namespace {

struct entry {
    errc code;
    std::string_view name;
    std::string_view message;
};

constexpr std::array entries{
    entry{errc::ok, "ok", "ok"},
    entry{errc::malformed_json, "malformed_json", "malformed json"},
    entry{errc::missing_field, "missing_field", "missing field"},
    entry{errc::wrong_type, "wrong_type", "wrong type"},
    entry{errc::unknown_enum, "unknown_enum", "unknown value"},
    entry{errc::unknown_type, "unknown_type", "unknown event type"},
    entry{errc::invalid_utf8, "invalid_utf8", "invalid utf-8"},
    entry{errc::too_long, "too_long", "too long"},
    entry{errc::unknown_school, "unknown_school", "unknown school"},
    entry{errc::bad_value, "bad_value", "bad value"},
    entry{errc::bad_id, "bad_id", "bad event id"},
    entry{errc::undecodable, "undecodable", "undecodable event"},
    entry{errc::unsupported_version, "unsupported_version", "unsupported version"},
    entry{errc::message_too_large, "message_too_large", "message too large"},
    entry{errc::batch_too_large, "batch_too_large", "batch too large"},
    entry{errc::bad_command, "bad_command", "bad command"},
    entry{errc::not_found, "not_found", "not found"},
    entry{errc::unauthorized, "unauthorized", "unauthorized"},
    entry{errc::forbidden, "forbidden", "forbidden"},
    entry{errc::shutting_down, "shutting_down", "shutting down"},
    entry{errc::store_failure, "store_failure", "store failure"},
    entry{errc::internal, "internal", "internal error"},
    entry{errc::bad_config, "bad_config", "bad configuration"},
    entry{errc::io_error, "io_error", "i/o error"},
    entry{errc::tampered, "tampered", "hash chain broken"},
};

const entry* find(errc e) noexcept {
    for (const auto& x : entries)
        if (x.code == e) return &x;
    return nullptr;
}

class category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "pingan"; }
    std::string message(int ev) const override {
        auto* x = find(static_cast<errc>(ev));
        return x ? std::string(x->message) : "unknown error";
    }
};

} // namespace

const std::error_category& pingan_category() noexcept {
    static const category c;
    return c;
}

std::string_view errc_name(errc e) noexcept {
    auto* x = find(e);
    return x ? x->name : "unknown";
}

errc errc_from_name(std::string_view name) noexcept {
    for (const auto& x : entries)
        if (x.name == name) return x.code;
    return errc::internal;
}

std::string problem::text() const {
    std::string s(errc_name(code));
    if (!detail.empty()) {
        s += ": ";
        s += detail;
    }
    return s;
}

error::error(errc code, const std::string& detail)
    : std::runtime_error(problem{code, detail}.text()), code_(code), detail_(detail) {}

} // namespace pingan
