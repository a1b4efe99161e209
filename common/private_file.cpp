// The atomic, owner-only file writer.
#include "common/private_file.hpp"

#include "common/errc.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pingan {

void write_private_file(const std::string& path, std::string_view text) {
    auto tmp = path + ".tmp";
    auto fail = [](const std::string& what) {
        throw error(errc::io_error, what + ": " + std::strerror(errno));
    };
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail("cannot write " + tmp);
    ::fchmod(fd, 0600); // also when the temporary file existed with other bits
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int keep = errno;
            ::close(fd);
            errno = keep;
            fail("cannot write " + tmp);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int keep = errno;
        ::close(fd);
        errno = keep;
        fail("cannot write " + tmp);
    }
    if (::close(fd) != 0) fail("cannot write " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot replace " + path);
    auto dir = std::filesystem::path(path).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) fail("cannot open the folder of " + path);
    if (::fsync(dfd) != 0) {
        int keep = errno;
        ::close(dfd);
        errno = keep;
        fail("cannot sync the folder of " + path);
    }
    ::close(dfd);
}

} // namespace pingan
