// Running the `pingan` program in black-box tests, and waiting for what a
// running process does.
#pragma once

#include "common/codec.hpp"
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

inline std::string pingan_bin() {
    return std::string(PINGAN_BIN_DIR) + "/pingan";
}

// A program (`args[0]`) with its standard error in the lines, run in `dir`
// if one is given.
inline run_result run_program(std::vector<std::string> args, const std::string& dir = {}) {
    args.insert(args.begin(), {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\" 2>&1",
                               dir.empty() ? std::string(".") : dir});
    process p(args);
    auto lines = p.lines(std::chrono::seconds(60));
    return {p.wait(), lines};
}

// `pingan ARGS`, with standard error in the lines (messages and refusals).
inline run_result run(std::vector<std::string> args) {
    args.insert(args.begin(), pingan_bin());
    return run_program(std::move(args));
}

// `pingan ARGS`, its standard output only (a JSON answer, a CSV), reading
// `stdin_file` if one is given.
inline run_result run_stdout(std::vector<std::string> args, const std::string& stdin_file = {}) {
    args.insert(args.begin(), pingan_bin());
    process p(args, stdin_file);
    auto lines = p.lines(std::chrono::seconds(60));
    return {p.wait(), lines};
}

// Returns: whether a line holds `text`.
inline bool has(const run_result& r, const std::string& text) {
    for (const auto& l : r.lines)
        if (l.find(text) != std::string::npos) return true;
    return false;
}

// Returns: the lines of a JSON Lines answer (an export, --json, one result a
// line), parsed: every line but the tool's messages ("pingan: ...").
inline std::vector<json> json_lines(const run_result& r) {
    std::vector<json> v;
    for (const auto& l : r.lines)
        if (!l.starts_with("pingan: ")) v.push_back(json::parse(l));
    return v;
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
