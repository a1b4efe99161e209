// The asynchronous publisher: sends a service's outbox to the broker's ingest
// socket and settles each event by the broker's answer.
//
// It runs on the service's io_context. The DEALER socket is bridged into Asio
// through ZMQ_FD, which is edge-triggered: after every wake-up, and after every
// send, the socket is drained until ZMQ_EVENTS says nothing is readable. Many
// requests are in flight at once (up to max_in_flight events). A request the
// broker has not answered within resend_timeout means the connection is
// suspect: the socket is closed (linger 0), a new one is made after an
// exponential backoff, and every unsettled event is sent again with its same
// id; the broker answers "duplicate" for those it already stored. A socket
// monitor reports whether the broker is connected, for the health endpoint.
//
// A nack (an event the broker refused) is settled by classify_nack: a permanent
// one moves the event to the outbox's dead-letter table; a transient one leaves
// it in the outbox, and everything unsettled is sent again after the same
// exponential backoff.
#pragma once

#include "outbox.hpp"
#include "time.hpp"
#include "wire.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/curve.hpp"

namespace pingan {

// What a publisher does with an event the broker refused (docs/protocol.md,
// "Error codes").
enum class nack_kind {
    transient, // nothing was stored and a resend may succeed: keep it, resend after a backoff
    permanent, // resending fails the same way: move it to the dead-letter table
};

// Transient: store_failure (the broker's write failed), shutting_down (the
// broker is stopping) and unauthorized (the broker does not know this client
// yet; registering its key cures it). Every other code is permanent: the event
// itself is wrong (bad input, forbidden, unknown school…), or the broker failed
// on this one event (internal: resending it would loop forever), or the code is
// one this build does not know. A pure function of the code.
nack_kind classify_nack(errc code) noexcept;

struct publisher_options {
    std::string endpoint;             // the broker's ingest, "tcp://127.0.0.1:7401"
    std::size_t max_batch = 64;       // events per PUB request
    std::size_t max_in_flight = 1024; // events sent and not yet answered
    std::chrono::milliseconds resend_timeout{5000};
    std::chrono::milliseconds backoff_initial{100};
    std::chrono::milliseconds backoff_max{5000};
    std::optional<curve_client> curve{}; // CURVE to a secured broker
};

// A snapshot for the health endpoint.
struct publisher_health {
    bool connected = false; // a ZeroMQ session with the broker is up
    std::string endpoint;
    std::size_t depth = 0;     // unsettled events in the outbox
    std::size_t in_flight = 0; // events sent on this connection, not yet answered
    std::size_t dead_letters = 0;
    std::uint64_t stored = 0, duplicates = 0, rejected = 0, reconnects = 0;
    std::uint64_t nacks_retried = 0; // transient nacks: the event stayed and is sent again
    std::map<std::string, std::uint64_t> nacks; // every nack, by code name ("forbidden", ...)
    std::optional<timestamp> last_answer_at;
};

namespace prom {
class writer;
}

// Writes a publisher's health as metrics named `<prefix>_outbox_events`,
// `<prefix>_in_flight_events`, `<prefix>_dead_letters`, `<prefix>_acks_total{outcome}`,
// `<prefix>_nacks_total{code}`, `<prefix>_broker_connected` and
// `<prefix>_reconnects_total`: the same names in every program that publishes.
void publisher_metrics(prom::writer& w, std::string_view prefix, const publisher_health& h);

class publisher {
  public:
    // Called once per settled event, after the outbox recorded it.
    using result_hook = std::function<void(const outbox::entry&, const wire::result&)>;

    publisher(boost::asio::io_context& ioc, outbox& box, publisher_options opts,
              std::shared_ptr<spdlog::logger> log);
    ~publisher();
    publisher(const publisher&) = delete;
    publisher& operator=(const publisher&) = delete;

    // Connects and sends whatever the outbox holds.
    void start();
    // Closes the socket at once (linger 0); unsettled events stay in the outbox.
    void stop();
    // Tells the publisher that the outbox has new entries.
    void notify();

    publisher_health health() const;
    void on_result(result_hook hook) { hook_ = std::move(hook); }

  private:
    struct request {
        std::vector<outbox::entry> entries;
        std::chrono::steady_clock::time_point sent_at;
    };

    void open_socket();
    void close_socket();
    void arm(bool monitor);
    void service();
    void drain_monitor();
    bool send_one_batch();
    void handle_reply(zmq::multipart_t& msg);
    // Returns: whether some event got a transient nack and must be sent again.
    bool settle(const request& req, const std::vector<wire::result>& results);
    void resend_later(const char* why);
    void check_timeouts();
    void reconnect_later(const std::string& why);
    void schedule_service(std::chrono::milliseconds delay);

    boost::asio::io_context& ioc_;
    outbox& box_;
    publisher_options opts_;
    std::shared_ptr<spdlog::logger> log_;
    result_hook hook_;

    zmq::context_t ctx_{1};
    std::optional<zmq::socket_t> sock_, monitor_;
    std::optional<boost::asio::posix::stream_descriptor> sock_fd_, monitor_fd_;
    boost::asio::steady_timer tick_, retry_;
    std::uint64_t generation_ = 0; // bumps on every new socket; stale handlers see a change
    std::uint64_t next_tag_ = 1;
    std::uint64_t sent_up_to_ = 0; // highest outbox seq sent on this socket
    std::map<std::uint64_t, request> in_flight_;
    std::size_t in_flight_events_ = 0;
    bool running_ = false, connected_ = false, blocked_ = false, retry_armed_ = false;
    std::chrono::milliseconds backoff_;
    publisher_health stats_;
};

} // namespace pingan
