// The ingest thread: publish requests in, one reply per request after commit.
//
// A request is admitted event by event (admit.hpp); refused events get their
// nack in the reply, the rest go to the writer. The reply leaves when the last
// of the request's events is committed, so "stored" always means "on disk".
// While more than max_inflight events wait for the writer, the socket is not
// read: ZeroMQ's queues then push back on publishers instead of the broker
// buffering without bound.
//
// With broker_options::commit_on_ingest this thread also commits: each turn
// of its loop reads what arrived, commits it (writer.hpp) and answers, with
// no hand-off to another thread.
#include "broker/server/broker_impl.hpp"
#include "broker/server/day_log.hpp"
#include "broker/server/metrics.hpp"
#include "broker/server/writer.hpp"

#include "common/wire.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <list>
#include <span>

namespace pingan {
namespace {

struct request {
    zmq::message_t routing;
    bool delimiter = false; // a REQ peer's empty frame, echoed back
    std::string tag;
    bool json = false;
    std::string client; // the publisher's identity, for the log
    std::vector<wire::result> results;
    std::size_t pending = 0;
    std::list<request>::iterator self;
};

std::string_view sv(const zmq::message_t& m) {
    return {m.data<char>(), m.size()};
}

// The authenticated identity (ZAP User-Id) of a message's sender, if any.
std::string actor_of(zmq::message_t& m) {
    const char* uid = zmq_msg_gets(m.handle(), "User-Id");
    if (uid && *uid) return uid;
    return "anonymous";
}

// The ingest thread's state, and one member function per job: read
// requests, check and admit them, hand their events to the writer, and
// answer each request once all its events are settled.
class ingest_loop {
  public:
    // `w`: the writer this thread runs in its turns (commit_on_ingest), or null.
    ingest_loop(broker::impl& b, writer* w) : b_(b), w_(w) {}

    void run() {
        zmq::pollitem_t items[] = {{b_.wake_rx.handle(), 0, ZMQ_POLLIN, 0},
                                   {b_.ingest_sock.handle(), 0, ZMQ_POLLIN, 0}};
        bool draining = false;
        while (true) {
            if (b_.stopping && !draining) {
                draining = true;
                spdlog::info("stopping: no new requests; {} events in flight", inflight_);
            }
            bool read_ingest = !draining && inflight_ < b_.opts.max_inflight;
            broker_metrics::get().queue_depth(inflight_);
            zmq::poll(items, read_ingest ? 2 : 1, poll_time(draining));
            if (items[0].revents & ZMQ_POLLIN) {
                zmq::message_t m;
                while (b_.wake_rx.recv(m, zmq::recv_flags::dontwait)) {
                }
            }
            settle_completions();
            if (read_ingest && (items[1].revents & ZMQ_POLLIN)) read_requests();
            if (w_) {
                w_->turn();
                settle_completions();
            }
            if (draining && inflight_ == 0) break;
        }
    }

  private:
    // How long to wait for requests: with the writer in this thread's turns,
    // no longer than until its next turn is due.
    std::chrono::milliseconds poll_time(bool draining) const {
        std::chrono::milliseconds limit(draining ? 20 : 200);
        if (!w_) return limit;
        auto now = std::chrono::steady_clock::now();
        auto left = std::chrono::ceil<std::chrono::milliseconds>(w_->wake_time(now) - now);
        return std::clamp(left, std::chrono::milliseconds(0), limit);
    }

    // The writer's results: each goes into its request's reply, which leaves
    // with its last one.
    void settle_completions() {
        b_.pipe.take_completions(done_);
        for (auto& c : done_) {
            auto* r = static_cast<request*>(c.owner.request);
            if (!r) continue; // the broker's own record (an access log), nobody to answer
            auto& res = r->results[c.owner.index];
            if (c.failure != errc::ok) {
                res.what = wire::outcome::rejected;
                res.code = c.failure;
                res.message = c.message;
            } else {
                res.what = c.result.what;
                res.offset = c.result.offset;
            }
            --inflight_;
            if (--r->pending == 0) {
                reply(*r);
                requests_.erase(r->self);
            }
        }
        done_.clear();
    }

    // Takes everything waiting, so that one commit serves many publishers.
    void read_requests() {
        for (int k = 0; k < 4096 && inflight_ < b_.opts.max_inflight; ++k) {
            frames_.clear();
            auto got = zmq::recv_multipart(b_.ingest_sock, std::back_inserter(frames_),
                                           zmq::recv_flags::dontwait);
            if (!got) break;
            handle(frames_);
        }
        if (batch_.empty()) return;
        if (w_)
            w_->add(batch_, owners_);
        else
            b_.pipe.push(batch_, owners_);
    }

    // One request: [routing, (delimiter), command, tag, events...].
    void handle(std::vector<zmq::message_t>& f) {
        if (f.size() < 2) return; // a ROUTER always gives the routing id; nothing to answer
        auto& r = requests_.emplace_back();
        r.self = std::prev(requests_.end());
        r.routing = std::move(f[0]);
        std::size_t pos = 1;
        if (f[pos].size() == 0 && f.size() > 2) {
            r.delimiter = true;
            ++pos;
        }
        auto& command = f[pos];
        r.client = actor_of(command);
        auto cmd = sv(f[pos++]);
        if (pos < f.size()) r.tag = sv(f[pos++]);
        r.json = cmd == wire::cmd_publish_json;
        std::span events(f.begin() + static_cast<std::ptrdiff_t>(pos), f.end());
        if (auto refusal = check(r, cmd, events, command)) {
            refuse(r, refusal.code, refusal.detail);
            requests_.pop_back();
            return;
        }
        admit_events(r, events, command);
        if (r.pending == 0) {
            reply(r);
            requests_.pop_back();
            return;
        }
        inflight_ += r.pending;
    }

    // What refuses a whole request: its tag, command, size, or a key revoked
    // since the handshake (checked on every request against the table in
    // force).
    problem check(request& r, std::string_view cmd, std::span<zmq::message_t> events,
                  zmq::message_t& command) {
        if (r.tag.size() > wire::max_tag) {
            r.tag.resize(wire::max_tag);
            return {errc::bad_command, "tag is longer than 64 bytes"};
        }
        if (cmd != wire::cmd_publish && cmd != wire::cmd_publish_json)
            return {errc::bad_command, "unknown command \"" + std::string(cmd.substr(0, 32)) +
                                           "\"; expected PUB or PUBJ"};
        if (events.size() > b_.opts.max_batch)
            return {errc::batch_too_large, std::to_string(events.size()) +
                                               " events in one request; the limit is " +
                                               std::to_string(b_.opts.max_batch)};
        std::size_t bytes = 0;
        for (const auto& e : events)
            bytes += e.size();
        if (bytes > b_.opts.max_message_bytes)
            return {errc::message_too_large, "request is " + std::to_string(bytes) +
                                                 " bytes; the limit is " +
                                                 std::to_string(b_.opts.max_message_bytes)};
        who_ = b_.who(command);
        if (b_.opts.security && !who_) return {errc::unauthorized, b_.revoked_text(command)};
        return {};
    }

    // Admission event by event (admit.hpp) and least privilege per event:
    // a refused event gets its nack in the reply, the rest go to the writer.
    void admit_events(request& r, std::span<zmq::message_t> events, zmq::message_t& command) {
        auto actor = actor_of(command);
        auto now = b_.clk.now();
        r.results.resize(events.size());
        for (std::size_t i = 0; i < events.size(); ++i) {
            event e;
            auto p = admit(sv(events[i]), r.json, b_.reg, actor, now, b_.opts.limits, e);
            if (!p && who_) p = may_publish(*who_, e);
            auto& res = r.results[i];
            res.id = e.id;
            if (p) {
                res.what = wire::outcome::rejected;
                res.code = p.code;
                res.message = std::move(p.detail);
                continue;
            }
            batch_.push_back(prepare(std::move(e)));
            owners_.push_back({&r, static_cast<std::uint32_t>(i)});
            ++r.pending;
        }
    }

    void reply(request& r) {
        broker_metrics::get().answered(r.results);
        std::size_t refused = 0;
        const wire::result* first = nullptr;
        for (const auto& x : r.results)
            if (x.what == wire::outcome::rejected && ++refused == 1) first = &x;
        if (first)
            day_log::refused("events", first->code, r.client, first->message, refused,
                             r.results.size(), first->id.str());
        std::vector<std::string> out;
        out.reserve(r.results.size());
        for (std::size_t i = 0; i < r.results.size(); ++i)
            out.push_back(r.json ? wire::result_json(r.results[i], i)
                                 : wire::encode_result(r.results[i]));
        send_frames(r, r.json ? wire::cmd_result_json : wire::cmd_result, out);
    }

    void refuse(request& r, errc code, const std::string& message) {
        broker_metrics::get().refused(code);
        day_log::refused("request", code, r.client, message);
        std::vector<std::string> out{wire::error_json(code, message)};
        send_frames(r, wire::cmd_error, out);
    }

    void send_frames(request& r, std::string_view cmd, std::vector<std::string>& frames) {
        // Not sent: the publisher went away or stopped reading; it will resend
        // and be answered "duplicate" with the offsets.
        if (send_reply(b_.ingest_sock, r.routing.to_string_view(), r.delimiter, cmd, r.tag,
                       frames) != reply_result::sent)
            spdlog::debug("reply not delivered");
    }

    broker::impl& b_;
    writer* w_;
    std::list<request> requests_; // stable addresses: the writer holds pointers
    std::vector<prepared_event> batch_;
    std::vector<owner_tag> owners_;
    std::vector<completion> done_;
    std::size_t inflight_ = 0;
    std::vector<zmq::message_t> frames_;
    std::shared_ptr<const principal> who_; // the current request's client (security on)
};

} // namespace

void broker::impl::run_ingest() {
    if (!opts.commit_on_ingest) {
        ingest_loop(*this, nullptr).run();
        ingest_done = true;
        ingest_finished();
        spdlog::info("ingest stopped");
        return;
    }
    writer w(*this);
    ingest_loop(*this, &w).run();
    ingest_done = true;
    ingest_finished();
    spdlog::info("ingest stopped");
    // What is still queued (the last checkpoint), until the pipeline closes.
    w.run();
}

} // namespace pingan
