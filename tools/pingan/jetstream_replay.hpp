// A province's mirrors of its cities' streams (pingan province, pingan
// replay --province; docs/replication.md, "Province"). The stream reader
// itself is common/stream_reader.hpp.
#pragma once

#include "common/stream_reader.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::cli {

// A city of a province: the city's broker stream, mirrored into the
// provincial servers' JetStream as `<province>_<city>`. The mirror's sequence
// is the city's offset.
struct province_city {
    std::string city;    // the city broker's stream (its jetstream.stream)
    std::string domain;  // the city's JetStream domain, or empty: the same JetStream
    std::string stream;  // the mirror in the provincial servers
    std::string subject; // the city broker's jetstream.subject
};

// Makes, in the JetStream of `at.servers`, a mirror of each city stream
// named in `cities` ("NAME", or "NAME@DOMAIN" for a stream in another
// JetStream domain reached through a leaf node): `<province>_<NAME>`, file
// storage, `replicas` copies, filtered to the city's `<subject>.>`. A mirror
// that exists already is left as it is. Returns: one line per city.
// Throws: pingan::error(not_found) naming a city stream that does not exist;
// pingan::error(bad_value) when two cities share a subject, or a city stream
// is not a broker's (one `<subject>.>`); pingan::error(bad_config) when a
// stream of the mirror's name is something else; io_error.
std::vector<std::string> create_province(const jetstream_source& at, const std::string& province,
                                         const std::vector<std::string>& cities, int replicas);

// The cities of `province`: the mirrors `<province>_*` at `at.servers`, by name.
// Throws: pingan::error(not_found) when there is none; forbidden; io_error.
std::vector<province_city> province_cities(const jetstream_source& at, const std::string& province);

} // namespace pingan::cli
