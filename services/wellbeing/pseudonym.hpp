// Pseudonymous student references for minors' data (DOMAIN §5, DESIGN §7).
//
// A student's school-internal id never leaves the school: the wellbeing
// service replaces it by a keyed hash, BLAKE2b (libsodium crypto_generichash)
// with the school's secret key, so the same student gets the same reference
// at that school (follow-ups line up) and nobody without the key can go back
// from the reference to the student, or link references across schools.
//
// Key file: one line per school, "<school_id> <64 hex digits>" (a 32-byte key);
// blank lines and lines starting with '#' are ignored. Keep it mode 0600.
#pragma once

#include "common/errc.hpp"
#include "common/registry.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace pingan::svc::wellbeing {

using secret_key = std::array<std::uint8_t, 32>;

class school_keys {
  public:
    // Throws: pingan::error(bad_config) naming the line that is wrong.
    static school_keys parse(std::string_view text);
    // A key file with a fresh random key for every school of the registry.
    static std::string generate(const registry& schools);

    const secret_key* find(std::string_view school) const;
    std::size_t size() const noexcept { return keys_.size(); }

  private:
    std::map<std::string, secret_key, std::less<>> keys_;
};

// "S-" and 32 hex digits: BLAKE2b-128 keyed with the school's key over
// school id, a 0x1f separator and the student id.
std::string student_ref(const secret_key& key, std::string_view school,
                        std::string_view student_id);

} // namespace pingan::svc::wellbeing
