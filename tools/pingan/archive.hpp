// Archive segments: old ranges of the log in compressed, chain-verified files
// (`pingan archive`, `pingan verify --archive`, `pingan replay --archive`).
//
// A segment file `seg-<first>-<last>.pseg` (offsets in 20 digits, so names
// sort in log order) holds the records of one China-time day (or the part of
// it archived so far), byte for byte as the store holds them:
//   line 1   "pingan-segment 1"
//   line 2   a JSON object: first, last (offsets), events, day (YYYY-MM-DD,
//            China time), prev_hash (the chain hash at first - 1, hex),
//            last_hash (the chain hash at last), raw_bytes, marks (the
//            chain hash after every mark_every records, so that a reader
//            names the few records among which one was altered)
//   then     one zlib stream of the records: for each, its length as a
//            4-byte little-endian integer, then the event's binary form
// The header is not trusted: a reader recomputes the chain (store.hpp) from
// prev_hash over every record and must reach last_hash, and each segment's
// prev_hash must be the previous segment's last_hash (zero for offset 1).
#pragma once

#include "broker/store/store.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pingan::cli::archive {

inline constexpr std::uint64_t mark_every = 256;

struct segment {
    std::string path;
    std::uint64_t first = 0, last = 0, events = 0, raw_bytes = 0, file_bytes = 0;
    std::string day;
    chain_hash prev_hash{}, last_hash{};
    std::vector<chain_hash> marks;
};

// The segments in `dir`, in offset order.
// Throws: std::runtime_error naming the file when a header is unreadable.
std::vector<segment> list(const std::string& dir);

struct read_report {
    bool ok = true;
    std::uint64_t checked = 0;
    std::uint64_t first_bad = 0; // the offset where the segment stops verifying
    std::string problem;         // names the segment file and the offset
    chain_hash head_hash{};      // the chain hash after the last record read
};

// Reads a segment's records in order, recomputing the chain from `prev` (which
// must be the segment's prev_hash) and checking each record's offset; `visit`
// (may be null) sees each record that verified and returns false to stop.
read_report read(const segment& s, const chain_hash& prev,
                 const std::function<bool(std::uint64_t, std::string_view)>& visit);

// Every segment in order as one chain from offset 1: their records, offsets
// and hashes. `visit` as in read().
read_report read_all(const std::vector<segment>& segs,
                     const std::function<bool(std::uint64_t, std::string_view)>& visit);

// The China-time day (YYYY-MM-DD) of a received_at in microseconds.
std::string china_day(std::int64_t received_us);

// received_at of a record (its binary form), in microseconds; 0 if unreadable.
std::int64_t received_us(std::string_view record);

} // namespace pingan::cli::archive
