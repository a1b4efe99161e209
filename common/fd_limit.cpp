// Raising RLIMIT_NOFILE: see fd_limit.hpp.
#include "fd_limit.hpp"

#include <sys/resource.h>

namespace pingan {

fd_limit raise_fd_limit() noexcept {
    fd_limit out;
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return out;
    out.before = out.soft = static_cast<std::uint64_t>(r.rlim_cur);
    out.hard = static_cast<std::uint64_t>(r.rlim_max);
    if (r.rlim_cur == r.rlim_max) return out;
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) out.soft = out.hard;
    return out;
}

} // namespace pingan
