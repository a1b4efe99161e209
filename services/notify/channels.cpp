// Webhook, command and file deliveries.
#include "channels.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

namespace pingan::notify {
namespace {

namespace beast = svc::beast;
namespace http = svc::http;
using tcp = svc::tcp;

// One webhook POST: resolve, connect, write, read, all under one deadline.
class webhook_call : public std::enable_shared_from_this<webhook_call> {
  public:
    webhook_call(net::io_context& ioc, http_url u, http::request<http::string_body> req,
                 std::chrono::milliseconds timeout, done_fn done)
        : resolver_(ioc), stream_(ioc), url_(std::move(u)), req_(std::move(req)), timeout_(timeout),
          done_(std::move(done)) {}

    void run() {
        stream_.expires_after(timeout_);
        resolver_.async_resolve(
            url_.host, url_.port, [self = shared_from_this()](beast::error_code ec, auto results) {
                if (ec) return self->finish(false, "resolve: " + ec.message());
                self->stream_.async_connect(
                    results, [self](beast::error_code ec, const auto&) { self->on_connect(ec); });
            });
    }

  private:
    void on_connect(beast::error_code ec) {
        if (ec) return finish(false, what("connect", ec));
        http::async_write(
            stream_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
                if (ec) return self->finish(false, self->what("write", ec));
                http::async_read(self->stream_, self->buf_, self->res_,
                                 [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
            });
    }
    void on_read(beast::error_code ec) {
        if (ec) return finish(false, what("read", ec));
        auto code = res_.result_int();
        beast::error_code ignore;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignore);
        if (code >= 200 && code < 300) return finish(true, {});
        finish(false, "HTTP " + std::to_string(code));
    }
    std::string what(const char* step, beast::error_code ec) const {
        if (ec == beast::error::timeout)
            return "timeout after " + std::to_string(timeout_.count()) + " ms (" + step + ")";
        return std::string(step) + ": " + ec.message();
    }
    void finish(bool ok, std::string error) {
        if (!done_) return;
        auto d = std::move(done_);
        done_ = nullptr;
        d(outcome{ok, std::move(error)});
    }

    tcp::resolver resolver_;
    beast::tcp_stream stream_;
    http_url url_;
    http::request<http::string_body> req_;
    std::chrono::milliseconds timeout_;
    done_fn done_;
    beast::flat_buffer buf_;
    http::response<http::string_body> res_;
};

} // namespace

std::string hex(const unsigned char* p, std::size_t n) {
    std::string s(2 * n + 1, '\0');
    sodium_bin2hex(s.data(), s.size(), p, n);
    s.pop_back(); // the terminating NUL
    return s;
}

std::string sign_body(std::string_view secret, std::string_view body) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()),
                                secret.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(body.data()),
                                  body.size());
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_final(&st, mac);
    return "sha256=" + hex(mac, sizeof mac);
}

channels::channels(net::io_context& ioc, std::chrono::milliseconds webhook_timeout,
                   std::chrono::milliseconds command_timeout)
    : ioc_(ioc), webhook_timeout_(webhook_timeout), command_timeout_(command_timeout) {}

channels::~channels() {
    stop();
}

void channels::stop() {
    stopping_ = true;
    {
        std::lock_guard lock(mu_);
        for (auto pid : children_)
            ::kill(-pid, SIGKILL); // the command's whole process group
    }
    for (auto& r : runners_)
        if (r.thread.joinable()) r.thread.join();
    runners_.clear();
}

void channels::deliver(const receiver& r, const delivery& d, done_fn done) {
    switch (r.channel) {
    case channel_kind::webhook:
        return webhook(r, d, std::move(done));
    case channel_kind::command:
        return command(r, d, std::move(done));
    case channel_kind::file:
        return file(r, d, std::move(done));
    }
}

void channels::webhook(const receiver& r, const delivery& d, done_fn done) {
    auto u = parse_http_url(r.url);
    if (!u) return net::post(ioc_, [done] { done({false, "bad url"}); });
    http::request<http::string_body> req{http::verb::post, u->target, 11};
    req.set(http::field::host, u->host + ":" + u->port);
    req.set(http::field::content_type, "application/json; charset=utf-8");
    req.set(http::field::user_agent, "pingan-notify");
    req.set("Idempotency-Key", d.idempotency_key);
    req.set("X-Pingan-Signature", sign_body(r.secret, d.json_body));
    req.keep_alive(false);
    req.body() = d.json_body;
    req.prepare_payload();
    std::make_shared<webhook_call>(ioc_, *u, std::move(req), webhook_timeout_, std::move(done))
        ->run();
}

void channels::command(const receiver& r, const delivery& d, done_fn done) {
    if (stopping_) return;
    std::vector<std::string> argv = r.command;
    argv.push_back(r.id);
    argv.push_back(r.address);
    // A minimal environment: notify's own (its keys' paths, whatever its
    // service manager set) is none of a gateway's business.
    std::vector<std::string> env_strings{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"};
    env_strings.push_back("PINGAN_IDEMPOTENCY_KEY=" + d.idempotency_key);
    env_strings.push_back("PINGAN_ACK_URL=" + d.ack_url);
    auto message = d.message;
    auto timeout = command_timeout_;
    // The child is waited for on its own thread, so that a gateway that hangs
    // delays only its own page; the outcome goes back to the io_context.
    std::erase_if(runners_, [](runner& r) {
        if (!r.done->load()) return false;
        r.thread.join();
        return true;
    });
    auto finished = std::make_shared<std::atomic<bool>>(false);
    auto t = std::thread([this, argv, env_strings, message, timeout, done, finished]() mutable {
        auto report = [&](bool ok, std::string e) {
            net::post(ioc_, [done, ok, e] { done({ok, e}); });
        };
        struct mark_done {
            std::atomic<bool>& f;
            ~mark_done() { f = true; }
        } mark{*finished};
        int in[2];
        if (::pipe2(in, O_CLOEXEC) != 0) return report(false, "pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        std::vector<char*> args, envp;
        for (auto& a : argv)
            args.push_back(a.data());
        args.push_back(nullptr);
        for (auto& e : env_strings)
            envp.push_back(e.data());
        envp.push_back(nullptr);
        // Its own process group, so that a timeout ends what it started too.
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attr, 0);
        pid_t pid = -1;
        int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), envp.data());
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        if (rc != 0) {
            ::close(in[1]);
            return report(false, std::string("cannot start ") + argv[0] + ": " + strerror(rc));
        }
        {
            std::lock_guard lock(mu_);
            children_.insert(pid);
        }
        std::string_view rest = message;
        while (!rest.empty()) {
            auto n = ::write(in[1], rest.data(), rest.size());
            if (n <= 0) break;
            rest.remove_prefix(static_cast<std::size_t>(n));
        }
        ::close(in[1]);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        int st = 0;
        bool timed_out = false;
        while (true) {
            auto w = ::waitpid(pid, &st, WNOHANG);
            if (w == pid) break;
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(-pid, SIGKILL); // the group: the command and all it started
                ::waitpid(pid, &st, 0);
                timed_out = true;
                break;
            }
            ::usleep(10000);
        }
        {
            std::lock_guard lock(mu_);
            children_.erase(pid);
        }
        if (stopping_) return;
        if (timed_out)
            return report(false, "timeout after " + std::to_string(timeout.count()) + " ms");
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return report(true, {});
        if (WIFEXITED(st)) return report(false, "exit status " + std::to_string(WEXITSTATUS(st)));
        report(false, "killed by signal " + std::to_string(WTERMSIG(st)));
    });
    runners_.push_back({std::move(t), std::move(finished)});
}

void channels::file(const receiver& r, const delivery& d, done_fn done) {
    outcome o{true, {}};
    int fd = r.path == "-" ? 1 : ::open(r.path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0640);
    if (fd < 0) {
        o = {false, r.path + ": " + strerror(errno)};
    } else {
        auto text = d.line + "\n";
        if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            o = {false, r.path + ": write failed"};
        if (fd != 1) ::close(fd);
    }
    net::post(ioc_, [done, o] { done(o); });
}

} // namespace pingan::notify
