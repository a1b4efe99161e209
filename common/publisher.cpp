// The outbox publisher: DEALER bridged into Asio, pipelined, resending by id.
#include "publisher.hpp"

#include "codec.hpp"
#include "endpoints.hpp"
#include "prometheus.hpp"

#include <boost/asio/post.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <cstring>

namespace pingan {
namespace {

using namespace std::chrono_literals;

timestamp wall_now() {
    return std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
}

} // namespace

nack_kind classify_nack(errc code) noexcept {
    switch (code) {
    case errc::store_failure:
    case errc::shutting_down:
    case errc::unauthorized:
        return nack_kind::transient;
    default:
        return nack_kind::permanent;
    }
}

publisher::publisher(boost::asio::io_context& ioc, outbox& box, publisher_options opts,
                     std::shared_ptr<spdlog::logger> log)
    : ioc_(ioc), box_(box), opts_(std::move(opts)), log_(std::move(log)), tick_(ioc), retry_(ioc),
      backoff_(opts_.backoff_initial) {
    opts_.max_batch = std::max<std::size_t>(1, opts_.max_batch);
    opts_.max_in_flight = std::max(opts_.max_in_flight, opts_.max_batch);
    stats_.endpoint = opts_.endpoint;
}

publisher::~publisher() {
    stop();
}

void publisher::start() {
    if (running_) return;
    running_ = true;
    auto depth = box_.depth();
    if (depth) log_->info("outbox holds {} unacknowledged events; sending them again", depth);
    open_socket();
    check_timeouts();
    schedule_service(0ms);
}

void publisher::stop() {
    if (!running_) return;
    running_ = false;
    tick_.cancel();
    retry_.cancel();
    close_socket();
}

void publisher::notify() {
    if (running_) schedule_service(0ms);
}

void publisher::open_socket() {
    ++generation_;
    sock_.emplace(ctx_, zmq::socket_type::dealer);
    // Unsent requests are worthless after a close: the outbox keeps the events.
    sock_->set(zmq::sockopt::linger, 0);
    // Queue only on a live connection, so a down broker shows up as EAGAIN
    // rather than a pile of requests sent into the void.
    sock_->set(zmq::sockopt::immediate, 1);
    sock_->set(zmq::sockopt::reconnect_ivl, 100);
    sock_->set(zmq::sockopt::reconnect_ivl_max, 2000);
    sock_->set(zmq::sockopt::heartbeat_ivl, 1000);
    sock_->set(zmq::sockopt::heartbeat_timeout, 3000);
    sock_->set(zmq::sockopt::heartbeat_ttl, 6000);
    if (opts_.curve) {
        sock_->set(zmq::sockopt::curve_serverkey, opts_.curve->server_public);
        sock_->set(zmq::sockopt::curve_publickey, opts_.curve->self.public_key);
        sock_->set(zmq::sockopt::curve_secretkey, opts_.curve->self.secret_key);
    }

    auto addr = "inproc://pingan-publisher-monitor-" +
                std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
                std::to_string(generation_);
    if (zmq_socket_monitor(sock_->handle(), addr.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0)
        throw zmq::error_t();
    monitor_.emplace(ctx_, zmq::socket_type::pair);
    monitor_->set(zmq::sockopt::linger, 0);
    monitor_->connect(addr);
    connect_each(*sock_, opts_.endpoint);

    // The descriptors belong to ZeroMQ: they are released, never closed, by Asio.
    sock_fd_.emplace(ioc_, sock_->get(zmq::sockopt::fd));
    monitor_fd_.emplace(ioc_, monitor_->get(zmq::sockopt::fd));
    sent_up_to_ = 0;
    in_flight_.clear();
    in_flight_events_ = 0;
    connected_ = false;
    blocked_ = false;
    arm(false);
    arm(true);
}

void publisher::close_socket() {
    ++generation_;
    for (auto* fd : {&sock_fd_, &monitor_fd_}) {
        if (*fd) {
            boost::system::error_code ec;
            (*fd)->cancel(ec);
            (*fd)->release();
            fd->reset();
        }
    }
    if (sock_ && monitor_) zmq_socket_monitor(sock_->handle(), nullptr, 0);
    monitor_.reset();
    sock_.reset();
    in_flight_.clear();
    in_flight_events_ = 0;
    sent_up_to_ = 0;
    connected_ = false;
}

// Waits for the next edge on a socket's ZMQ_FD. Because the descriptor is
// edge-triggered, ZMQ_EVENTS is read again after arming: anything that came
// in before the wait began is handled now, not at the next (maybe never) edge.
void publisher::arm(bool monitor) {
    auto& sd = monitor ? monitor_fd_ : sock_fd_;
    if (!sd) return;
    auto gen = generation_;
    sd->async_wait(boost::asio::posix::descriptor_base::wait_read,
                   [this, gen, monitor](const boost::system::error_code& ec) {
                       if (ec || gen != generation_ || !running_) return;
                       try {
                           if (monitor)
                               drain_monitor();
                           else
                               service();
                       } catch (const std::exception& x) {
                           log_->error("publisher: {}", x.what());
                       }
                       if (gen == generation_) arm(monitor);
                   });
    auto& s = monitor ? monitor_ : sock_;
    if (s && (s->get(zmq::sockopt::events) & ZMQ_POLLIN)) {
        if (monitor)
            boost::asio::post(ioc_, [this, gen] {
                if (gen == generation_ && running_) drain_monitor();
            });
        else
            schedule_service(0ms);
    }
}

void publisher::schedule_service(std::chrono::milliseconds delay) {
    auto gen = generation_;
    auto run = [this, gen] {
        if (gen != generation_ || !running_) return;
        try {
            service();
        } catch (const std::exception& x) {
            log_->error("publisher: {}", x.what());
        }
    };
    if (delay == 0ms) {
        boost::asio::post(ioc_, run);
    } else {
        retry_armed_ = true;
        retry_.expires_after(delay);
        retry_.async_wait([this, run](const boost::system::error_code& ec) {
            retry_armed_ = false;
            if (ec) return;
            blocked_ = false;
            run();
        });
    }
}

// Reads every answer that is ready and sends while there is room, until
// neither makes progress. Bounded, so that HTTP handlers get their turn.
void publisher::service() {
    auto gen = generation_;
    for (int round = 0; round < 256; ++round) {
        if (!sock_ || gen != generation_) return;
        bool progress = false;
        if (sock_->get(zmq::sockopt::events) & ZMQ_POLLIN) {
            zmq::multipart_t msg;
            if (msg.recv(*sock_, ZMQ_DONTWAIT)) {
                handle_reply(msg);
                progress = true;
            }
        }
        if (gen != generation_) return;
        if (send_one_batch()) progress = true;
        if (!progress) return;
    }
    schedule_service(0ms);
}

bool publisher::send_one_batch() {
    if (!sock_ || blocked_ || in_flight_events_ >= opts_.max_in_flight) return false;
    auto room = std::min(opts_.max_batch, opts_.max_in_flight - in_flight_events_);
    auto entries = box_.pending(sent_up_to_, room);
    if (entries.empty()) return false;

    auto tag = next_tag_++;
    zmq::multipart_t msg;
    msg.addstr(std::string(wire::cmd_publish));
    msg.addstr(wire::u64_le(tag));
    for (const auto& e : entries)
        msg.addstr(e.bytes);
    if (!msg.send(*sock_, ZMQ_DONTWAIT)) {
        // No connection to the broker (ZMQ_IMMEDIATE): try again when the
        // monitor reports a handshake, or after the backoff at the latest.
        blocked_ = true;
        if (!retry_armed_) schedule_service(std::min(backoff_, 1000ms));
        return false;
    }
    sent_up_to_ = entries.back().seq;
    in_flight_events_ += entries.size();
    in_flight_.emplace(tag, request{std::move(entries), std::chrono::steady_clock::now()});
    return true;
}

void publisher::handle_reply(zmq::multipart_t& msg) {
    if (msg.size() < 2) {
        log_->warn("publisher: ignoring a reply of {} frames", msg.size());
        return;
    }
    auto cmd = msg[0].to_string();
    auto tag = wire::read_u64_le(msg[1].to_string_view());
    if (!tag) return;
    auto it = in_flight_.find(*tag);
    if (it == in_flight_.end()) return; // answer to a request from before a rewind
    request req = std::move(it->second);
    in_flight_.erase(it);
    in_flight_events_ -= req.entries.size();
    connected_ = true;
    stats_.last_answer_at = wall_now();

    if (cmd == wire::cmd_result) {
        std::vector<wire::result> results;
        for (std::size_t i = 2; i < msg.size(); ++i) {
            auto r = wire::decode_result(msg[i].to_string_view());
            if (!r) break;
            results.push_back(std::move(*r));
        }
        if (results.size() != req.entries.size())
            log_->error("publisher: {} results for {} events; the rest will be sent again",
                        results.size(), req.entries.size());
        if (settle(req, results)) {
            resend_later("the broker could not store some events");
            return;
        }
        backoff_ = opts_.backoff_initial;
        if (results.size() != req.entries.size()) {
            sent_up_to_ = 0;
            in_flight_.clear();
            in_flight_events_ = 0;
        }
        return;
    }
    if (cmd == wire::cmd_error) {
        errc code = errc::internal;
        bool readable = false;
        std::string message;
        json j;
        if (msg.size() >= 3 && !parse_json(msg[2].to_string_view(), j) && j.is_object()) {
            code = errc_from_name(j.value("code", ""));
            message = j.value("message", "");
            readable = true;
        }
        ++stats_.nacks[std::string(readable ? errc_name(code) : "unreadable")];
        if (!readable || classify_nack(code) == nack_kind::transient) {
            ++stats_.nacks_retried;
            log_->warn("broker refused a request of {} events ({}: {})", req.entries.size(),
                       readable ? errc_name(code) : "unreadable error", message);
            resend_later("the broker refused a request");
            return;
        }
        backoff_ = opts_.backoff_initial;
        if (req.entries.size() == 1) {
            wire::result r;
            r.what = wire::outcome::rejected;
            r.code = code;
            r.id = req.entries.front().id;
            r.message = message;
            settle(req, {r});
        } else {
            // The refusal may be due to one event of the batch: halve until it is found.
            opts_.max_batch = std::max<std::size_t>(1, req.entries.size() / 2);
            log_->warn("broker refused a batch of {} ({}: {}); sending batches of {}",
                       req.entries.size(), errc_name(code), message, opts_.max_batch);
        }
        // Everything not yet settled goes again, with its same id.
        sent_up_to_ = 0;
        in_flight_.clear();
        in_flight_events_ = 0;
        return;
    }
    log_->warn("publisher: ignoring an unknown reply \"{}\"", cmd);
}

bool publisher::settle(const request& req, const std::vector<wire::result>& results) {
    std::vector<outbox::settlement> answers;
    std::vector<std::size_t> settled; // indexes into results, for the hook
    answers.reserve(results.size());
    bool again = false;
    for (std::size_t i = 0; i < results.size() && i < req.entries.size(); ++i) {
        const auto& r = results[i];
        const auto& e = req.entries[i];
        if (r.id != e.id) {
            log_->error("publisher: result {} names id {} but event {} was sent", i, r.id.str(),
                        e.id.str());
            continue;
        }
        switch (r.what) {
        case wire::outcome::stored:
            ++stats_.stored;
            answers.push_back({e.seq, errc::ok, {}});
            break;
        case wire::outcome::duplicate:
            ++stats_.duplicates;
            answers.push_back({e.seq, errc::ok, {}});
            break;
        case wire::outcome::rejected:
            ++stats_.nacks[std::string(errc_name(r.code))];
            if (classify_nack(r.code) == nack_kind::transient) {
                ++stats_.nacks_retried;
                again = true;
                log_->warn("broker did not store event {}: {}: {}; it stays in the outbox",
                           e.id.str(), errc_name(r.code), r.message);
                continue;
            }
            ++stats_.rejected;
            log_->error("broker rejected event {}: {}: {}; moved to the dead-letter table",
                        e.id.str(), errc_name(r.code), r.message);
            answers.push_back({e.seq, r.code, r.message});
            break;
        }
        settled.push_back(i);
    }
    box_.settle(answers);
    if (hook_)
        for (auto i : settled)
            hook_(req.entries[i], results[i]);
    return again;
}

// Rewinds: every unsettled event is sent again, with its same id, after the
// backoff (which doubles while the broker keeps refusing). Replies to requests
// still in flight are ignored; their events come back as duplicates.
void publisher::resend_later(const char* why) {
    log_->warn("{}; sending the unsettled events again in {} ms", why, backoff_.count());
    blocked_ = true;
    schedule_service(backoff_);
    backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
    sent_up_to_ = 0;
    in_flight_.clear();
    in_flight_events_ = 0;
}

void publisher::check_timeouts() {
    if (!running_) return;
    auto now = std::chrono::steady_clock::now();
    if (!in_flight_.empty()) {
        auto oldest = std::min_element(
            in_flight_.begin(), in_flight_.end(),
            [](const auto& a, const auto& b) { return a.second.sent_at < b.second.sent_at; });
        if (now - oldest->second.sent_at > opts_.resend_timeout)
            reconnect_later("no answer from the broker within " +
                            std::to_string(opts_.resend_timeout.count()) + " ms");
    }
    tick_.expires_after(std::min<std::chrono::milliseconds>(opts_.resend_timeout / 4, 250ms));
    tick_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) check_timeouts();
    });
}

void publisher::reconnect_later(const std::string& why) {
    log_->warn("{}; reconnecting in {} ms and sending {} events again", why, backoff_.count(),
               in_flight_events_);
    close_socket();
    ++stats_.reconnects;
    auto delay = backoff_;
    backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
    retry_.cancel();
    retry_armed_ = true;
    retry_.expires_after(delay);
    retry_.async_wait([this](const boost::system::error_code& ec) {
        retry_armed_ = false;
        if (ec || !running_) return;
        try {
            open_socket();
            service();
        } catch (const std::exception& x) {
            // Out of descriptors (EMFILE) or memory: a half-made socket is
            // closed and the next attempt is made after the back-off.
            log_->error("publisher: {}", x.what());
            reconnect_later("could not open a socket to the broker");
        }
    });
}

void publisher::drain_monitor() {
    for (int i = 0; i < 64 && monitor_; ++i) {
        if (!(monitor_->get(zmq::sockopt::events) & ZMQ_POLLIN)) return;
        zmq::multipart_t msg;
        if (!msg.recv(*monitor_, ZMQ_DONTWAIT)) return;
        if (msg.empty() || msg[0].size() < 2) continue;
        std::uint16_t what;
        std::memcpy(&what, msg[0].data(), 2);
        if (what == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            if (!connected_) log_->info("connected to the broker at {}", opts_.endpoint);
            connected_ = true;
            blocked_ = false;
            schedule_service(0ms);
        } else if (what == ZMQ_EVENT_DISCONNECTED) {
            if (connected_) log_->warn("lost the broker at {}", opts_.endpoint);
            connected_ = false;
        }
    }
    // Still more after a full round: continue later, letting others run.
    boost::asio::post(ioc_, [this, gen = generation_] {
        if (gen == generation_ && running_) drain_monitor();
    });
}

publisher_health publisher::health() const {
    auto h = stats_;
    h.connected = connected_;
    h.depth = box_.depth();
    h.in_flight = in_flight_events_;
    h.dead_letters = box_.dead_count();
    return h;
}

} // namespace pingan

namespace pingan {

void publisher_metrics(prom::writer& w, std::string_view prefix, const publisher_health& h) {
    auto name = [&](std::string_view what) { return std::string(prefix) + std::string(what); };
    w.gauge(name("_outbox_events"), "Events in the outbox not yet settled by the broker.",
            static_cast<double>(h.depth));
    w.gauge(name("_in_flight_events"), "Events sent to the broker and not yet answered.",
            static_cast<double>(h.in_flight));
    w.gauge(name("_dead_letters"),
            "Events the broker refused for good, kept in the outbox's dead-letter table.",
            static_cast<double>(h.dead_letters));
    std::vector<prom::sample> acks{{{{"outcome", "stored"}}, static_cast<double>(h.stored)},
                                   {{{"outcome", "duplicate"}}, static_cast<double>(h.duplicates)}};
    w.family(name("_acks_total"), "counter", "Events the broker acknowledged.", acks);
    std::vector<prom::sample> nacks;
    for (const auto& [code, n] : h.nacks)
        nacks.push_back({{{"code", code}}, static_cast<double>(n)});
    w.family(name("_nacks_total"), "counter",
             "Refusals from the broker, by error code (transient ones are resent).", nacks);
    w.gauge(name("_broker_connected"), "1 while a session with the broker's ingest is up.",
            h.connected ? 1 : 0);
    w.counter(name("_reconnects_total"), "New connections to the broker after a failure.",
              static_cast<double>(h.reconnects));
}

} // namespace pingan
