// The three ways a page leaves pingan-notify: a webhook (HTTP POST of JSON,
// signed with HMAC-SHA256 over the body), a configured command (an SMS or
// mail gateway: the message on stdin, the receiver in its arguments, exit
// status 0 = delivered) and a file (one readable line per page).
//
// Each delivery ends in exactly one call of its `done` on the io_context
// thread, with the outcome; a timeout is a failure like any other.
#pragma once

#include "directory.hpp"
#include "services/common/net.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace pingan::notify {

namespace net = svc::net;

struct delivery {
    std::string idempotency_key; // the same for every attempt of one page to one receiver
    std::string json_body;       // what a webhook gets
    std::string message;         // what a command gets on stdin
    std::string line;            // what a file gets
    std::string ack_url;
};

struct outcome {
    bool ok = false;
    std::string error; // short, without the page's text
};

using done_fn = std::function<void(outcome)>;

// Lowercase hex of `n` bytes.
std::string hex(const unsigned char* p, std::size_t n);

// Returns: "sha256=" and the hex HMAC-SHA256 of `body` under `secret`.
std::string sign_body(std::string_view secret, std::string_view body);

class channels {
  public:
    channels(net::io_context& ioc, std::chrono::milliseconds webhook_timeout,
             std::chrono::milliseconds command_timeout);
    ~channels();
    channels(const channels&) = delete;
    channels& operator=(const channels&) = delete;

    void deliver(const receiver& r, const delivery& d, done_fn done);
    // Ends running commands (SIGKILL) and waits for their threads.
    void stop();

  private:
    void webhook(const receiver& r, const delivery& d, done_fn done);
    void command(const receiver& r, const delivery& d, done_fn done);
    void file(const receiver& r, const delivery& d, done_fn done);

    net::io_context& ioc_;
    std::chrono::milliseconds webhook_timeout_, command_timeout_;
    std::mutex mu_;
    std::set<pid_t> children_;
    struct runner {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    std::vector<runner> runners_; // command threads; finished ones are joined on the next run
    std::atomic<bool> stopping_{false};
};

} // namespace pingan::notify
