// A temporary folder for tests that use real files, removed when the test ends.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace pingan::test {

class temp_dir {
  public:
    explicit temp_dir(const std::string& prefix = "pingan-test") {
        auto tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::string& path() const noexcept { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  private:
    std::string path_;
};

} // namespace pingan::test
