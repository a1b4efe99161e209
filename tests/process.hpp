// Real child processes for integration tests: start a program, read its
// output lines with a deadline, signal it, and collect its exit status.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace pingan::test {

class process {
  public:
    // Starts `argv[0]` with stdout piped to the test (stderr is inherited, or
    // written to `stderr_file` when one is given).
    explicit process(std::vector<std::string> argv, const std::string& stdin_file = {},
                     const std::string& stderr_file = {}) {
        int out[2];
        if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        if (!stdin_file.empty())
            posix_spawn_file_actions_addopen(&fa, 0, stdin_file.c_str(), O_RDONLY, 0);
        if (!stderr_file.empty())
            posix_spawn_file_actions_addopen(&fa, 2, stderr_file.c_str(),
                                             O_WRONLY | O_CREAT | O_TRUNC, 0600);
        std::vector<char*> args;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        if (rc != 0) {
            ::close(out[0]);
            throw std::runtime_error("cannot start " + argv[0]);
        }
        fd_ = out[0];
    }
    process(const process&) = delete;
    ~process() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
        if (fd_ >= 0) ::close(fd_);
    }

    // Returns: the next line of output, or nothing at EOF or after `timeout`.
    std::optional<std::string> line(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                auto l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return l;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || eof_) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char chunk[65536];
            auto n = ::read(fd_, chunk, sizeof chunk);
            if (n <= 0) {
                eof_ = true;
                continue;
            }
            buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    // All remaining output until EOF (or timeout).
    std::vector<std::string> lines(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        std::vector<std::string> out;
        while (auto l = line(timeout))
            out.push_back(*l);
        return out;
    }

    void signal(int sig) { ::kill(pid_, sig); }

    // Waits for the process to end. Returns: its exit code, or 128 + signal.
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        if (status_) return *status_;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            int st;
            auto r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                return *status_;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &st, 0);
                status_ = -1;
                return -1;
            }
            ::usleep(10000);
        }
    }
    pid_t pid() const noexcept { return pid_; }

  private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buf_;
    bool eof_ = false;
    std::optional<int> status_;
};

// A fresh temporary directory, removed with its contents at the end.
class temp_dir {
  public:
    temp_dir() {
        char tmpl[] = "/tmp/pingan-test-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~temp_dir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
    const std::string& path() const noexcept { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  private:
    std::string path_;
};

} // namespace pingan::test
