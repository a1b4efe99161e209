// The frame of a school service's main(): its name and defaults, the flags
// every service has (add_service_options, add_intake_options, --version), the
// runtime and host, and one way to end on an error.
//
//   int main(int argc, char** argv) {
//       svc::service_program p{"pingan-drill", "var/drill", "127.0.0.1:8082", "..."};
//       if (auto done = p.parse(argc, argv)) return *done;
//       return p.run([](service_runtime& rt, svc::service_host& host) {
//           host.route_post("/drill/record", svc::drill::record);
//           host.start();
//           return rt.run();
//       });
//   }
#pragma once

#include "common/version.hpp"
#include "service.hpp"

#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

namespace pingan::svc {

class service_program {
  public:
    service_program(std::string name, std::string data_dir, std::string http,
                    const std::string& about)
        : app_(about) {
        cfg_.name = std::move(name);
        cfg_.data_dir = std::move(data_dir);
        cfg_.http = std::move(http);
        app_.set_version_flag("--version", version_line(cfg_.name));
        add_service_options(app_, cfg_);
        add_intake_options(app_, sec_);
    }

    // For the service's own flags, before parse().
    CLI::App& app() noexcept { return app_; }
    service_config& config() noexcept { return cfg_; }

    // Parses the command line.
    // Returns: the exit status if the program ends here (--help, --version, a
    // bad flag, with CLI11's message), else nothing.
    std::optional<int> parse(int argc, char** argv) {
        try {
            app_.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            return app_.exit(e);
        }
        return std::nullopt;
    }

    // "NAME: what" on stderr, exit status 2.
    [[noreturn]] void fail(const std::string& what) const {
        std::cerr << cfg_.name << ": " << what << "\n";
        std::exit(2);
    }

    // Runs `f()`; any exception ends the program as fail() does.
    template <class F> decltype(auto) guard(F&& f) const {
        try {
            return f();
        } catch (const std::exception& x) {
            fail(x.what());
        }
    }

    // Makes the runtime and the host (outbox, registry, credentials, TLS) and
    // returns `body(runtime, host)`: the service's routes, host.start() and
    // runtime.run(). Any exception ends the program as fail() does.
    template <class Body> int run(Body&& body) const {
        return guard([&] {
            service_runtime rt(make_logger(cfg_.name, cfg_.log_level));
            service_host host(rt, cfg_, sec_);
            return body(rt, host);
        });
    }

  private:
    service_config cfg_;
    intake_options sec_;
    CLI::App app_;
};

} // namespace pingan::svc
