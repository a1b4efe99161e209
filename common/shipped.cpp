// Files shipped beside the programs.
#include "common/shipped.hpp"

#include <filesystem>

namespace pingan {

std::vector<std::string> shipped_candidates(std::string_view rel) {
    namespace fs = std::filesystem;
    std::vector<std::string> v;
    std::error_code ec;
    auto exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return v;
    auto bin = exe.parent_path();
    v.push_back((bin / ".." / "share" / "pingan" / rel).lexically_normal().string());
    v.push_back((bin / ".." / ".." / rel).lexically_normal().string());
    return v;
}

std::string find_shipped(std::string_view rel) {
    std::error_code ec;
    for (auto& p : shipped_candidates(rel))
        if (std::filesystem::exists(p, ec)) return p;
    return {};
}

} // namespace pingan
