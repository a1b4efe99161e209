// The process's limit on open file descriptors.
//
// Every connection, LMDB file and ZeroMQ socket is a descriptor, and the
// default soft limit (often 1024, sometimes 256) is far below what a broker
// or a service with a few hundred clients needs. Each program raises its soft
// limit to the hard limit once at start; the hard limit is the operator's to
// set (systemd's LimitNOFILE=, docs/operations.md).
#pragma once

#include <cstdint>

namespace pingan {

struct fd_limit {
    std::uint64_t before = 0; // soft limit found at start
    std::uint64_t soft = 0;   // soft limit now
    std::uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit. Never fails: if the limit
// cannot be read or raised, the soft limit stays what it was.
// Returns: the limits before and after.
fd_limit raise_fd_limit() noexcept;

} // namespace pingan
