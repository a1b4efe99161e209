// Running the `pingan` program in black-box tests, and waiting for what a
// running process does.
#pragma once

#include "process.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace pingan::test {

struct run_result {
    int code;
    std::vector<std::string> lines;
};

// `pingan ARGS`, with standard error in the lines (messages and refusals).
inline run_result run(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(PINGAN_BIN_DIR) + "/pingan");
    args.insert(args.begin(), {"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh"});
    process p(args);
    auto lines = p.lines(std::chrono::seconds(60));
    return {p.wait(), lines};
}

// `pingan ARGS`, its standard output only (a JSON answer, a CSV).
inline run_result run_stdout(std::vector<std::string> args) {
    args.insert(args.begin(), std::string(PINGAN_BIN_DIR) + "/pingan");
    process p(args);
    auto lines = p.lines(std::chrono::seconds(60));
    return {p.wait(), lines};
}

// Returns: whether a line holds `text`.
inline bool has(const run_result& r, const std::string& text) {
    for (const auto& l : r.lines)
        if (l.find(text) != std::string::npos) return true;
    return false;
}

// Polls `done` every 20 ms. Returns: true once it holds, false after `limit`.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

} // namespace pingan::test
