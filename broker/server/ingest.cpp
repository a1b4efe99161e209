// The ingest thread: publish requests in, one reply per request after commit.
//
// A request is admitted event by event (admit.hpp); refused events get their
// nack in the reply, the rest go to the writer. The reply leaves when the last
// of the request's events is committed, so "stored" always means "on disk".
// While more than max_inflight events wait for the writer, the socket is not
// read: ZeroMQ's queues then push back on publishers instead of the broker
// buffering without bound.
#include "broker/server/broker_impl.hpp"
#include "broker/server/day_log.hpp"
#include "broker/server/metrics.hpp"

#include "common/wire.hpp"

#include <spdlog/spdlog.h>

#include <list>

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

} // namespace

void broker::impl::run_ingest() {
    std::list<request> requests; // stable addresses: the writer holds pointers
    std::vector<prepared_event> batch;
    std::vector<owner_tag> owners;
    std::vector<completion> done;
    std::size_t inflight = 0;
    std::vector<zmq::message_t> frames;

    auto send_frames = [&](request& r, std::string_view cmd, std::vector<std::string>& frames) {
        // Not sent: the publisher went away or stopped reading; it will resend
        // and be answered "duplicate" with the offsets.
        if (send_reply(ingest_sock, r.routing.to_string_view(), r.delimiter, cmd, r.tag, frames) !=
            reply_result::sent)
            spdlog::debug("reply not delivered");
    };

    auto reply = [&](request& r) {
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
    };

    auto refuse = [&](request& r, errc code, const std::string& message) {
        broker_metrics::get().refused(code);
        day_log::refused("request", code, r.client, message);
        std::vector<std::string> out{wire::error_json(code, message)};
        send_frames(r, wire::cmd_error, out);
    };

    auto handle = [&](std::vector<zmq::message_t>& f) {
        if (f.size() < 2) return; // a ROUTER always gives the routing id; nothing to answer
        auto& r = requests.emplace_back();
        r.self = std::prev(requests.end());
        r.routing = std::move(f[0]);
        std::size_t pos = 1;
        if (f[pos].size() == 0 && f.size() > 2) {
            r.delimiter = true;
            ++pos;
        }
        r.client = actor_of(f[pos]);
        auto cmd = sv(f[pos++]);
        if (pos < f.size()) r.tag = sv(f[pos++]);
        auto finish_now = [&] { requests.pop_back(); };
        if (r.tag.size() > wire::max_tag) {
            r.tag.resize(wire::max_tag);
            refuse(r, errc::bad_command, "tag is longer than 64 bytes");
            return finish_now();
        }
        if (cmd != wire::cmd_publish && cmd != wire::cmd_publish_json) {
            refuse(r, errc::bad_command,
                   "unknown command \"" + std::string(cmd.substr(0, 32)) +
                       "\"; expected PUB or PUBJ");
            return finish_now();
        }
        r.json = cmd == wire::cmd_publish_json;
        std::size_t n = f.size() - pos;
        if (n > opts.max_batch) {
            refuse(r, errc::batch_too_large,
                   std::to_string(n) + " events in one request; the limit is " +
                       std::to_string(opts.max_batch));
            return finish_now();
        }
        std::size_t bytes = 0;
        for (std::size_t i = pos; i < f.size(); ++i)
            bytes += f[i].size();
        if (bytes > opts.max_message_bytes) {
            refuse(r, errc::message_too_large,
                   "request is " + std::to_string(bytes) + " bytes; the limit is " +
                       std::to_string(opts.max_message_bytes));
            return finish_now();
        }
        auto actor = actor_of(f[pos - 1]);
        // The key is checked on every request against the table in force, so
        // a key revoked by a reload is refused on a connection already open.
        auto who_is = who(f[pos - 1]);
        if (opts.security && !who_is) {
            refuse(r, errc::unauthorized, revoked_text(f[pos - 1]));
            return finish_now();
        }
        auto now = clk.now();
        r.results.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            event e;
            auto p = admit(sv(f[pos + i]), r.json, reg, actor, now, opts.limits, e);
            if (!p && who_is) p = may_publish(*who_is, e); // least privilege, per event
            auto& res = r.results[i];
            res.id = e.id;
            if (p) {
                res.what = wire::outcome::rejected;
                res.code = p.code;
                res.message = std::move(p.detail);
                continue;
            }
            batch.push_back(prepare(std::move(e)));
            owners.push_back({&r, static_cast<std::uint32_t>(i)});
            ++r.pending;
        }
        if (r.pending == 0) {
            reply(r);
            return finish_now();
        }
        inflight += r.pending;
    };

    zmq::pollitem_t items[] = {{wake_rx.handle(), 0, ZMQ_POLLIN, 0},
                               {ingest_sock.handle(), 0, ZMQ_POLLIN, 0}};
    bool draining = false;
    while (true) {
        if (stopping && !draining) {
            draining = true;
            spdlog::info("stopping: no new requests; {} events in flight", inflight);
        }
        bool read_ingest = !draining && inflight < opts.max_inflight;
        broker_metrics::get().queue_depth(inflight);
        zmq::poll(items, read_ingest ? 2 : 1, std::chrono::milliseconds(draining ? 20 : 200));

        if (items[0].revents & ZMQ_POLLIN) {
            zmq::message_t m;
            while (wake_rx.recv(m, zmq::recv_flags::dontwait)) {
            }
        }
        pipe.take_completions(done);
        for (auto& c : done) {
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
            --inflight;
            if (--r->pending == 0) {
                reply(*r);
                requests.erase(r->self);
            }
        }
        done.clear();

        if (read_ingest && (items[1].revents & ZMQ_POLLIN)) {
            // Take everything waiting, so one commit serves many publishers.
            for (int k = 0; k < 4096 && inflight < opts.max_inflight; ++k) {
                frames.clear();
                auto got = zmq::recv_multipart(ingest_sock, std::back_inserter(frames),
                                               zmq::recv_flags::dontwait);
                if (!got) break;
                handle(frames);
            }
            if (!batch.empty()) pipe.push(batch, owners);
        }
        if (draining && inflight == 0) break;
    }
    ingest_done = true;
    ingest_finished();
    spdlog::info("ingest stopped");
}

} // namespace pingan
