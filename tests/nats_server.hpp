// One nats-server with JetStream on an ephemeral port of 127.0.0.1, for the
// tests of programs that read the broker's replicated log (notify, the
// console). tests/jetstream.cpp has its own nodes and clusters.
#pragma once

#include "pingan_run.hpp"
#include "process.hpp"

#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <nats/nats.h>

#include <cstdint>
#include <string>

namespace pingan::test {

struct nats_server {
    unsigned short port = unused_port();
    process proc;

    explicit nats_server(const std::string& dir)
        : proc({"/usr/sbin/nats-server", "-js", "-a", "127.0.0.1", "-p", std::to_string(port),
                "-sd", dir},
               std::string(), dir + ".log") {
        REQUIRE(eventually([&] {
            boost::asio::io_context ioc;
            boost::asio::ip::tcp::socket s(ioc);
            boost::system::error_code ec;
            s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
            return !ec;
        }));
    }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port); }

    // Removes every record below `keep` from `stream`, as a limit or a purge would.
    void purge_below(const std::string& stream, std::uint64_t keep) const {
        natsConnection* nc = nullptr;
        jsCtx* js = nullptr;
        REQUIRE(natsConnection_ConnectTo(&nc, url().c_str()) == NATS_OK);
        REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
        jsOptions o;
        jsOptions_Init(&o);
        o.Stream.Purge.Sequence = keep;
        CHECK(js_PurgeStream(js, stream.c_str(), &o, nullptr) == NATS_OK);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
    }

    // A TCP port nobody listens on now (the kernel's choice).
    static unsigned short unused_port() {
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
        return a.local_endpoint().port();
    }
};

} // namespace pingan::test
