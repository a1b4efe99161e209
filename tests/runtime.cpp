// Tests of common/runtime.hpp: settings from flags and YAML, logging, stop steps.
#include "common/runtime.hpp"
#include "temp_dir.hpp"

#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>
#include <spdlog/sinks/null_sink.h>

#include <filesystem>
#include <fstream>

using namespace pingan;

namespace {

int parse(CLI::App& app, std::vector<std::string> args) {
    std::vector<char*> argv{const_cast<char*>("test")};
    for (auto& a : args)
        argv.push_back(a.data());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
        return 0;
    } catch (const CLI::ParseError& e) {
        return e.get_exit_code();
    }
}

} // namespace

TEST_CASE("a YAML file sets service options and a flag wins over it", "[runtime]") {
    test::temp_dir dir;
    {
        std::ofstream f(dir / "svc.yaml");
        f << "broker: tcp://10.0.0.1:9000\nhttp: 127.0.0.1:9999\ndevice: kiosk-7\n"
             "resend-timeout: 2s\nmax-in-flight: 64\n";
    }
    service_config c;
    CLI::App app;
    add_service_options(app, c);
    REQUIRE(parse(app, {"--config", dir / "svc.yaml", "--http", "127.0.0.1:0"}) == 0);
    CHECK(c.broker == "tcp://10.0.0.1:9000");
    CHECK(c.http == "127.0.0.1:0");
    CHECK(c.device == "kiosk-7");
    CHECK(c.resend_timeout == std::chrono::milliseconds(2000));
    CHECK(c.max_in_flight == 64);
}

TEST_CASE("paths in a YAML file are relative to its folder, flags to the working directory",
          "[runtime]") {
    test::temp_dir dir;
    std::filesystem::create_directories(dir / "etc");
    {
        std::ofstream f(dir / "etc/svc.yaml");
        f << "data: ../state/outbox\nregistry: /srv/pingan/schools.csv\nkey: keys/svc.key\n"
             "server-key: z85:rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n";
    }
    service_config c;
    CLI::App app;
    add_service_options(app, c);
    REQUIRE(parse(app, {"--config", dir / "etc/svc.yaml"}) == 0);
    CHECK(c.data_dir == dir / "state/outbox");
    CHECK(c.registry == "/srv/pingan/schools.csv");
    CHECK(c.key == dir / "etc/keys/svc.key");
    CHECK(c.server_key == "z85:rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");

    service_config c2;
    CLI::App app2;
    add_service_options(app2, c2);
    REQUIRE(parse(app2, {"--config", dir / "etc/svc.yaml", "--data", "var/here"}) == 0);
    CHECK(c2.data_dir == "var/here");
}

TEST_CASE("every file option of the services, notify and the console is relative to the "
          "YAML file's folder",
          "[runtime]") {
    // The wellbeing service's pseudonym keys, the canteen's sensor files,
    // notify's link key, the console's photo token and CA: once read from
    // the working directory.
    test::temp_dir dir;
    std::filesystem::create_directories(dir / "etc");
    {
        std::ofstream f(dir / "etc/svc.yaml");
        f << "keys: ../var/keys/p.keys\nmake-keys: new.keys\nfile: [a.log, /srv/b.log]\n"
             "link-key: secrets/link.key\nphoto-ca: ca.pem\nphoto-token-file: token\n";
    }
    service_config c;
    CLI::App app;
    add_service_options(app, c);
    std::string keys, make_keys, link_key, photo_ca, photo_token;
    std::vector<std::string> files;
    app.add_option("--keys", keys);
    app.add_option("--make-keys", make_keys);
    app.add_option("--file", files);
    app.add_option("--link-key", link_key);
    app.add_option("--photo-ca", photo_ca);
    app.add_option("--photo-token-file", photo_token);
    REQUIRE(parse(app, {"--config", dir / "etc/svc.yaml"}) == 0);
    CHECK(keys == dir / "var/keys/p.keys");
    CHECK(make_keys == dir / "etc/new.keys");
    CHECK(files == std::vector<std::string>{dir / "etc/a.log", "/srv/b.log"});
    CHECK(link_key == dir / "etc/secrets/link.key");
    CHECK(photo_ca == dir / "etc/ca.pem");
    CHECK(photo_token == dir / "etc/token");
}

TEST_CASE("an unknown key or bad value in the YAML file is an error", "[runtime]") {
    test::temp_dir dir;
    {
        std::ofstream f(dir / "bad.yaml");
        f << "brokr: tcp://10.0.0.1:9000\n";
        std::ofstream g(dir / "bad2.yaml");
        g << "resend-timeout: soon\n";
    }
    service_config c;
    CLI::App app;
    add_service_options(app, c);
    CHECK(parse(app, {"--config", dir / "bad.yaml"}) != 0);
    service_config c2;
    CLI::App app2;
    add_service_options(app2, c2);
    CHECK(parse(app2, {"--config", dir / "bad2.yaml"}) != 0);
}

TEST_CASE("stop runs the stop steps in order and ends run", "[runtime]") {
    service_runtime rt(
        std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>()));
    std::vector<int> order;
    rt.on_stop([&] { order.push_back(1); });
    rt.on_stop([&] { order.push_back(2); });
    net::post(rt.io(), [&] { rt.stop(); });
    CHECK(rt.run() == 0);
    CHECK(order == std::vector<int>{1, 2});
}

TEST_CASE("an unknown log level is a configuration error", "[runtime]") {
    CHECK_THROWS_AS(make_logger("x", "loud"), pingan::error);
    CHECK(make_logger("x", "warn")->level() == spdlog::level::warn);
}
