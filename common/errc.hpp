// Error codes shared by every Pingan library, service and tool.
//
// One enum for the whole project, like nng's: library code returns or throws
// these codes with a detail string naming what was wrong ("body.area: unknown
// value"), and only programs turn them into user-facing text. The numeric values
// are part of the wire protocol (docs/protocol.md): never renumber, only append.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace pingan {

enum class errc : std::uint16_t {
    ok = 0,
    malformed_json = 1,       // text is not JSON, or not of the expected shape
    missing_field = 2,        // a required field is absent
    wrong_type = 3,           // a field has the wrong JSON type
    unknown_enum = 4,         // a value is not one of the field's enumerators
    unknown_type = 5,         // the event type is not known
    invalid_utf8 = 6,         // a text field is not valid UTF-8
    too_long = 7,             // a text or list is over its limit
    unknown_school = 8,       // the school is not in the registry
    bad_value = 9,            // a value is out of range or inconsistent
    bad_id = 10,              // an event id is not a 128-bit id
    undecodable = 11,         // binary event bytes could not be decoded
    unsupported_version = 12, // a record or body version newer than this build
    message_too_large = 13,   // a wire message or frame is over the size limit
    batch_too_large = 14,     // a publish carries more events than allowed
    bad_command = 15,         // unknown or malformed wire command
    not_found = 16,           // the thing asked for does not exist
    unauthorized = 17,        // the peer is not authenticated
    forbidden = 18,           // the peer may not do this
    shutting_down = 19,       // the broker is stopping and takes no new work
    store_failure = 20,       // the store failed; the event was not stored
    internal = 21,            // a bug: report it
    bad_config = 22,          // a configuration file or flag is wrong
    io_error = 23,            // reading or writing a file or socket failed
    tampered = 24,            // the hash chain does not verify
};

const std::error_category& pingan_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), pingan_category()};
}

// Short lowercase name used in JSON ("missing_field"); "unknown" for values
// this build does not know.
std::string_view errc_name(errc e) noexcept;

// Parses a name made by errc_name; returns errc::internal for unknown names.
errc errc_from_name(std::string_view name) noexcept;

// A failure with the detail a user needs to fix it.
struct problem {
    errc code = errc::ok;
    std::string detail;

    explicit operator bool() const noexcept { return code != errc::ok; }
    // "missing_field: body.area is required"
    std::string text() const;
};

// Thrown by code paths where a problem cannot be returned as a value.
class error : public std::runtime_error {
  public:
    error(errc code, const std::string& detail);
    errc code() const noexcept { return code_; }
    const std::string& detail() const noexcept { return detail_; }
    problem as_problem() const { return {code_, detail_}; }

  private:
    errc code_;
    std::string detail_;
};

} // namespace pingan

template <> struct std::is_error_code_enum<pingan::errc> : std::true_type {};
