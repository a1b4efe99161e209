// A minimal ingest ROUTER speaking the wire protocol, for publisher tests that
// need to control the broker's answers (drop them, reject, go away). The real
// broker is exercised by the end-to-end tests.
#pragma once

#include "common/codec.hpp"
#include "common/wire.hpp"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace pingan::test {

class fake_broker {
  public:
    // Binds to `endpoint` ("tcp://127.0.0.1:*" picks a port).
    explicit fake_broker(const std::string& endpoint = "tcp://127.0.0.1:*") {
        sock_.set(zmq::sockopt::linger, 0);
        sock_.bind(endpoint);
        endpoint_ = sock_.get(zmq::sockopt::last_endpoint);
        thread_ = std::thread([this] { loop(); });
    }
    ~fake_broker() {
        stop_ = true;
        thread_.join();
    }

    const std::string& endpoint() const noexcept { return endpoint_; }
    // The next `n` requests are stored and not answered (a lost reply).
    void drop_next(int n) { drop_ = n; }
    // Events from this school are rejected with unknown_school.
    void reject_school(std::string s) {
        std::lock_guard l(m_);
        reject_ = std::move(s);
    }
    // The next `n` events are refused with `code` and not stored (a nack).
    void nack_next(int n, errc code) {
        std::lock_guard l(m_);
        nack_ = n;
        nack_code_ = code;
    }
    std::size_t stored() const {
        std::lock_guard l(m_);
        return by_id_.size();
    }
    std::size_t received() const { return received_; }
    std::size_t duplicates() const { return duplicates_; }
    std::size_t requests() const { return requests_; }

  private:
    void loop() {
        while (!stop_) {
            zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::chrono::milliseconds(20));
            if (!(item.revents & ZMQ_POLLIN)) continue;
            zmq::multipart_t msg(sock_);
            ++requests_;
            zmq::multipart_t reply;
            reply.add(msg.pop()); // routing id
            reply.addstr(std::string(wire::cmd_result));
            msg.pop();            // command
            reply.add(msg.pop()); // tag
            std::lock_guard l(m_);
            while (!msg.empty()) {
                auto bytes = msg.popstr();
                ++received_;
                event e;
                wire::result r;
                if (auto p = decode(bytes, e)) {
                    r.what = wire::outcome::rejected;
                    r.code = p.code;
                    r.message = p.detail;
                } else if (e.school == reject_) {
                    r.what = wire::outcome::rejected;
                    r.code = errc::unknown_school;
                    r.id = e.id;
                    r.message = "school is not in the registry";
                } else if (nack_ > 0) {
                    --nack_;
                    r.what = wire::outcome::rejected;
                    r.code = nack_code_;
                    r.id = e.id;
                    r.message = "not stored: refused by the test";
                } else if (auto it = by_id_.find(e.id); it != by_id_.end()) {
                    r.what = wire::outcome::duplicate;
                    r.id = e.id;
                    r.offset = it->second;
                    ++duplicates_;
                } else {
                    r.id = e.id;
                    r.offset = by_id_.size() + 1;
                    by_id_.emplace(e.id, r.offset);
                }
                reply.addstr(wire::encode_result(r));
            }
            // A dropped answer: the events are stored, the publisher never hears.
            if (drop_ > 0) {
                --drop_;
                continue;
            }
            reply.send(sock_);
        }
    }

    zmq::context_t ctx_{1};
    zmq::socket_t sock_{ctx_, zmq::socket_type::router};
    std::string endpoint_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<int> drop_{0};
    std::atomic<std::size_t> received_{0}, duplicates_{0}, requests_{0};
    mutable std::mutex m_;
    std::string reject_;
    int nack_ = 0;
    errc nack_code_ = errc::ok;
    std::map<event_id, std::uint64_t> by_id_;
};

} // namespace pingan::test
