// Files only their owner may read (users, sessions, state with secrets),
// replaced atomically so that a crash leaves the old or the new content,
// never a mix or an empty file.
#pragma once

#include <string>
#include <string_view>

namespace pingan {

// Writes `text` to `path` with mode 0600: into a temporary file beside it,
// fsync, rename over `path`, then fsync of the folder so that the rename
// itself survives a crash.
// Throws: pingan::error(io_error) naming the file and the system's reason.
void write_private_file(const std::string& path, std::string_view text);

} // namespace pingan
