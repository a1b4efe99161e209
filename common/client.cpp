// Synchronous broker clients.
#include "common/client.hpp"
#include "common/endpoints.hpp"
#include "common/packed_events.hpp"

#include <zmq_addon.hpp>

#include <atomic>
#include <cstring>

namespace pingan {
namespace {

std::string_view sv(const zmq::message_t& m) {
    return {m.data<char>(), m.size()};
}

// The time a request may wait to be queued; the ordinary case is at once.
constexpr std::chrono::seconds send_wait{10};

void send_all(link_watch& link, zmq::socket_t& s, std::initializer_list<std::string_view> head,
              std::span<const std::string> rest) {
    link.writable(send_wait);
    std::size_t total = head.size() + rest.size(), i = 0;
    for (auto f : head)
        s.send(zmq::buffer(f), ++i < total ? zmq::send_flags::sndmore : zmq::send_flags::none);
    for (const auto& f : rest)
        s.send(zmq::buffer(f), ++i < total ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

std::string seconds_text(std::chrono::milliseconds t) {
    auto ms = t.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
}

error refused(std::string_view body) {
    json j;
    if (!parse_json(body, j) && j.is_object() && j.contains("code"))
        return error(errc_from_name(j["code"].get<std::string>()),
                     j.value("message", std::string()));
    return error(errc::bad_command, "broker error: " + std::string(body));
}

} // namespace

link_watch::link_watch(zmq::context_t& ctx, zmq::socket_t& s, std::string endpoint, bool curve)
    : sock_(s), mon_(ctx, zmq::socket_type::pair), endpoint_(std::move(endpoint)), curve_(curve),
      started_(std::chrono::steady_clock::now()) {
    static std::atomic<std::uint64_t> n{0};
    auto addr = "inproc://pingan-link-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) +
                "-" + std::to_string(n++);
    if (zmq_socket_monitor(
            s.handle(), addr.c_str(),
            ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
        throw zmq::error_t();
    mon_.set(zmq::sockopt::linger, 0);
    mon_.connect(addr);
}

link_watch::~link_watch() {
    zmq_socket_monitor(sock_.handle(), nullptr, 0);
}

void link_watch::notice_after(std::chrono::milliseconds after,
                              std::function<void(const std::string&)> say) {
    notice_after_ = after;
    say_ = std::move(say);
}

void link_watch::drain() {
    std::vector<zmq::message_t> f;
    while (true) {
        f.clear();
        if (!zmq::recv_multipart(mon_, std::back_inserter(f), zmq::recv_flags::dontwait)) break;
        if (f.empty() || f[0].size() < 6) continue;
        std::uint16_t ev;
        std::uint32_t value;
        std::memcpy(&ev, f[0].data(), 2);
        std::memcpy(&value, static_cast<const char*>(f[0].data()) + 2, 4);
        switch (ev) {
        case ZMQ_EVENT_CONNECTED:
            tcp_connected_ = true;
            break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            answered_ = true;
            refusal_.reset();
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            refusal_ = error(errc::unauthorized,
                             curve_ ? "the broker at " + endpoint_ +
                                          " refused this client's key (it is not in the broker's "
                                          "access table)"
                                    : "the broker at " + endpoint_ + " requires a CURVE key");
            break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            if (!curve_)
                refusal_ = error(errc::unauthorized,
                                 "the broker at " + endpoint_ + " requires a CURVE key");
            else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
                     value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
                refusal_ =
                    error(errc::unauthorized,
                          "the broker at " + endpoint_ +
                              " does not use CURVE: leave out the client key and server key");
            else
                refusal_ = error(errc::unauthorized,
                                 "the CURVE handshake with the broker at " + endpoint_ +
                                     " failed (is the server key the broker's public key?)");
            break;
        case ZMQ_EVENT_DISCONNECTED:
            // With CURVE, a broker that cannot read our HELLO (a wrong server
            // key) drops the connection before any handshake event.
            if (curve_ && tcp_connected_ && !answered_ && !refusal_)
                refusal_ =
                    error(errc::unauthorized,
                          "the broker at " + endpoint_ +
                              " closed the connection during the CURVE handshake (is the server "
                              "key the broker's public key, and this client's key in its access "
                              "table?)");
            break;
        default:
            break;
        }
    }
    // The latest handshake decides, on every call until one succeeds.
    if (refusal_) throw *refusal_;
}

bool link_watch::wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        drain();
        auto now = std::chrono::steady_clock::now();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        // Wake up in time to say that we are still waiting.
        if (say_ && !answered_) {
            auto notice_at = started_ + notice_after_;
            if (now >= notice_at) {
                say_("waiting for the broker at " + endpoint_ + " (no answer yet)");
                say_ = nullptr;
            } else {
                left = std::min(left, std::chrono::duration_cast<std::chrono::milliseconds>(
                                          notice_at - now + std::chrono::milliseconds(1)));
            }
        }
        zmq::pollitem_t it[] = {{sock_.handle(), 0, ZMQ_POLLIN, 0},
                                {mon_.handle(), 0, ZMQ_POLLIN, 0}};
        try {
            zmq::poll(it, 2, std::max(left, std::chrono::milliseconds(0)));
        } catch (const zmq::error_t& e) {
            // A signal (Ctrl-C in pingan tail) is not an error: the caller decides.
            if (e.num() == EINTR) return false;
            throw;
        }
        if (it[1].revents & ZMQ_POLLIN) drain();
        if (it[0].revents & ZMQ_POLLIN) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
    }
}

void link_watch::writable(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        drain();
        zmq::pollitem_t it[] = {{sock_.handle(), 0, ZMQ_POLLOUT, 0},
                                {mon_.handle(), 0, ZMQ_POLLIN, 0}};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        try {
            zmq::poll(it, 2, std::max(left, std::chrono::milliseconds(0)));
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) throw;
        }
        if (it[0].revents & ZMQ_POLLOUT) return;
        if (it[1].revents & ZMQ_POLLIN) continue; // drain() reads it, and may throw
        if (std::chrono::steady_clock::now() >= deadline)
            throw error(errc::io_error, "the connection to the broker at " + endpoint_ +
                                            " could not take a request within " +
                                            seconds_text(timeout));
    }
}

void apply_curve(zmq::socket_t& s, const curve_client& c) {
    s.set(zmq::sockopt::curve_serverkey, c.server_public);
    s.set(zmq::sockopt::curve_publickey, c.self.public_key);
    s.set(zmq::sockopt::curve_secretkey, c.self.secret_key);
}

ingest_client::ingest_client(zmq::context_t& ctx, const std::string& endpoint,
                             const curve_client* curve)
    : sock_(ctx, zmq::socket_type::dealer),
      link_(std::make_unique<link_watch>(ctx, sock_, endpoint, curve != nullptr)) {
    if (curve) apply_curve(sock_, *curve);
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::sndhwm, 100000);
    sock_.set(zmq::sockopt::rcvhwm, 100000);
    connect_each(sock_, endpoint);
}

void ingest_client::send(std::span<const std::string> frames, bool json, std::string_view tag) {
    send_all(*link_, sock_, {json ? wire::cmd_publish_json : wire::cmd_publish, tag}, frames);
}

std::optional<publish_reply> ingest_client::receive(std::chrono::milliseconds timeout) {
    if (!link_->wait(timeout)) return std::nullopt;
    std::vector<zmq::message_t> f;
    if (!zmq::recv_multipart(sock_, std::back_inserter(f), zmq::recv_flags::dontwait))
        return std::nullopt;
    if (f.size() < 2) throw error(errc::bad_command, "short reply from broker");
    publish_reply r;
    auto cmd = sv(f[0]);
    r.tag = sv(f[1]);
    if (cmd == wire::cmd_error) {
        auto e = refused(f.size() > 2 ? sv(f[2]) : std::string_view{});
        r.refused = true;
        r.code = e.code();
        r.message = e.detail();
        return r;
    }
    for (std::size_t i = 2; i < f.size(); ++i) {
        if (cmd == wire::cmd_result) {
            auto res = wire::decode_result(sv(f[i]));
            if (!res) throw error(errc::bad_command, "malformed result frame");
            r.results.push_back(std::move(*res));
        } else if (cmd == wire::cmd_result_json) {
            json j;
            if (parse_json(sv(f[i]), j)) throw error(errc::bad_command, "malformed JSON result");
            wire::result res;
            if (j["id"].is_string())
                res.id = event_id::parse(j["id"].get<std::string>()).value_or(event_id{});
            if (j.contains("error")) {
                res.what = wire::outcome::rejected;
                res.code = errc_from_name(j["error"].value("code", std::string()));
                res.message = j["error"].value("message", std::string());
            } else {
                res.what =
                    j.value("duplicate", false) ? wire::outcome::duplicate : wire::outcome::stored;
                res.offset = j.value("offset", std::uint64_t{0});
            }
            r.results.push_back(std::move(res));
        } else {
            throw error(errc::bad_command, "unexpected reply " + std::string(cmd));
        }
    }
    return r;
}

publish_reply ingest_client::publish(std::span<const event> events,
                                     std::chrono::milliseconds timeout, int tries) {
    std::vector<std::string> frames;
    frames.reserve(events.size());
    for (const auto& e : events)
        frames.push_back(encode(e));
    auto tag = "p" + std::to_string(next_tag_++);
    for (int attempt = 0; attempt < tries; ++attempt) {
        send(frames, false, tag);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            auto r = receive(left);
            if (!r) break;
            if (r->tag == tag) return std::move(*r);
            // A late reply to an earlier attempt: skip it.
        }
    }
    throw error(errc::io_error, (link_->answered() ? "no reply from the broker at "
                                                   : "no answer from the broker at ") +
                                    link_->endpoint() + " within " + seconds_text(timeout * tries));
}

query_client::query_client(zmq::context_t& ctx, const std::string& endpoint,
                           const curve_client* curve)
    : sock_(ctx, zmq::socket_type::dealer),
      link_(std::make_unique<link_watch>(ctx, sock_, endpoint, curve != nullptr)) {
    if (curve) apply_curve(sock_, *curve);
    sock_.set(zmq::sockopt::linger, 0);
    connect_each(sock_, endpoint);
}

replay_end query_client::replay(const replay_request& r,
                                const std::function<bool(std::uint64_t, std::string_view)>& visit,
                                std::chrono::milliseconds timeout) {
    json p = json::object();
    p["from"] = r.from;
    if (r.to) p["to"] = r.to;
    if (!r.from_time.empty()) p["from_time"] = r.from_time;
    if (!r.to_time.empty()) p["to_time"] = r.to_time;
    if (!r.type.empty()) p["type"] = r.type;
    if (!r.school.empty()) p["school"] = r.school;
    if (!r.district.empty()) p["district"] = r.district;
    if (r.limit) p["limit"] = r.limit;
    p["credit"] = r.credit;
    p["format"] = r.json ? "json" : r.packed ? "packed" : "binary";
    if (!r.purpose.empty()) p["purpose"] = r.purpose;
    auto tag = "r" + std::to_string(next_tag_++);
    auto body = p.dump();
    send_all(*link_, sock_, {wire::cmd_replay, tag, body}, {});
    std::uint64_t received = 0;
    std::vector<zmq::message_t> f;
    while (true) {
        if (!link_->wait(timeout))
            throw error(errc::io_error, "replay: no answer from the broker at " +
                                            link_->endpoint() + " within " + seconds_text(timeout));
        f.clear();
        if (!zmq::recv_multipart(sock_, std::back_inserter(f), zmq::recv_flags::dontwait)) continue;
        if (f.size() < 3 || sv(f[1]) != tag) continue;
        auto cmd = sv(f[0]);
        // One event to the visitor. Returns: false when it stopped the replay.
        auto one = [&](std::uint64_t off, std::string_view bytes) {
            if (!visit(off, bytes)) {
                send_all(*link_, sock_, {wire::cmd_cancel, tag}, {});
                return false;
            }
            // Grant the next window when half of this one is used.
            auto half = r.credit / 2 ? r.credit / 2 : 1;
            if (++received % half == 0) {
                json c = {{"credit", half}};
                auto cb = c.dump();
                send_all(*link_, sock_, {wire::cmd_credit, tag, cb}, {});
            }
            return true;
        };
        if (cmd == wire::cmd_event && f.size() == 3) {
            // Packed: one frame of (offset, length, bytes) entries.
            wire::packed_reader in(sv(f[2]));
            std::uint64_t off = 0;
            std::string_view bytes;
            while (in.next(off, bytes))
                if (!one(off, bytes)) return {off + 1, received + 1, 0};
            if (in.malformed()) throw error(errc::bad_command, "malformed packed EVT frame");
        } else if (cmd == wire::cmd_event && f.size() >= 4 && f.size() % 2 == 0) {
            for (std::size_t i = 2; i + 1 < f.size(); i += 2) {
                auto off = wire::read_u64_le(sv(f[i]));
                if (!off) throw error(errc::bad_command, "malformed EVT offset");
                if (!one(*off, sv(f[i + 1]))) return {*off + 1, received + 1, 0};
            }
        } else if (cmd == wire::cmd_end) {
            json j;
            if (parse_json(sv(f[2]), j)) throw error(errc::bad_command, "malformed END");
            return {j.value("next", std::uint64_t{0}), j.value("count", std::uint64_t{0}),
                    j.value("head", std::uint64_t{0})};
        } else if (cmd == wire::cmd_error) {
            throw refused(sv(f[2]));
        }
    }
}

json query_client::request(std::string_view cmd, const json& params,
                           std::chrono::milliseconds timeout) {
    auto tag = "q" + std::to_string(next_tag_++);
    auto body = params.dump();
    send_all(*link_, sock_, {cmd, tag, body}, {});
    std::vector<zmq::message_t> f;
    while (link_->wait(timeout)) {
        f.clear();
        if (!zmq::recv_multipart(sock_, std::back_inserter(f), zmq::recv_flags::dontwait)) continue;
        if (f.size() < 3 || sv(f[1]) != tag) continue;
        if (sv(f[0]) == wire::cmd_error) throw refused(sv(f[2]));
        json j;
        if (parse_json(sv(f[2]), j)) throw error(errc::bad_command, "malformed reply");
        return j;
    }
    throw error(errc::io_error, std::string(cmd) + ": no answer from the broker at " +
                                    link_->endpoint() + " within " + seconds_text(timeout));
}

json query_client::stats(std::chrono::milliseconds timeout) {
    return request(wire::cmd_stats, json::object(), timeout);
}

json query_client::clock(const json& params, std::chrono::milliseconds timeout) {
    return request(wire::cmd_clock, params, timeout);
}

feed_client::feed_client(zmq::context_t& ctx, const std::string& endpoint,
                         const curve_client* curve)
    : sock_(ctx, zmq::socket_type::sub),
      link_(std::make_unique<link_watch>(ctx, sock_, endpoint, curve != nullptr)) {
    if (curve) apply_curve(sock_, *curve);
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::rcvhwm, 200000);
    connect_each(sock_, endpoint);
}

void feed_client::subscribe(const std::string& prefix) {
    sock_.set(zmq::sockopt::subscribe, prefix);
}

std::optional<feed_client::message> feed_client::receive(std::chrono::milliseconds timeout) {
    if (!link_->wait(timeout)) return std::nullopt;
    std::vector<zmq::message_t> f;
    if (!zmq::recv_multipart(sock_, std::back_inserter(f), zmq::recv_flags::dontwait))
        return std::nullopt;
    if (f.size() != 3) throw error(errc::bad_command, "malformed feed message");
    auto off = wire::read_u64_le(sv(f[1]));
    if (!off) throw error(errc::bad_command, "malformed feed offset");
    return message{std::string(sv(f[0])), *off, std::string(sv(f[2]))};
}

} // namespace pingan
