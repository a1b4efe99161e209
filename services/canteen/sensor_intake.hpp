// The canteen sensors' transports: UDP datagrams, TCP line streams and files,
// all speaking line_protocol.hpp and feeding one `sensors` decision object.
//
// Readings are committed to the outbox in batches, one transaction per batch:
// UDP lines are gathered until the io_context has nothing else to do; TCP
// lines are committed before their "ok" answers are written, so an "ok"
// means the reading is durable.
#pragma once

#include "handle_request.hpp"
#include "services/common/net.hpp"
#include "services/common/service.hpp"

#include <array>
#include <memory>
#include <vector>

namespace pingan::svc::canteen {

class sensor_intake {
  public:
    sensor_intake(service_host& host, sensors& s) : host_(host), sensors_(s) {}

    // Decides one line; queues its events. Returns: the problem, or ok.
    problem take_line(std::string_view line, std::vector<event>& out, std::string* first_id);

    // Binds a UDP socket and starts receiving. Returns: the bound endpoint.
    udp::endpoint serve_udp(const udp::endpoint& at);
    // Binds a TCP listener and starts accepting, at most `max_connections`
    // at once. Returns: the bound endpoint.
    tcp::endpoint serve_tcp(const tcp::endpoint& at, std::size_t max_connections = 1000);
    // Reads a whole file of lines. Returns: lines accepted; problems are logged.
    std::size_t read_file(const std::string& path);
    void stop();

    std::uint64_t accepted() const noexcept { return accepted_; }
    std::uint64_t refused() const noexcept { return refused_; }

  private:
    void receive();
    void queue(std::vector<event>&& events);
    void flush();

    service_host& host_;
    sensors& sensors_;
    std::unique_ptr<udp::socket> udp_;
    std::shared_ptr<listener> tcp_;
    std::array<char, 65536> datagram_{};
    udp::endpoint sender_;
    std::vector<event> pending_;
    bool flush_posted_ = false;
    std::uint64_t accepted_ = 0, refused_ = 0;
};

} // namespace pingan::svc::canteen
