// The follower and the actor threads.
#include "broker_link.hpp"

#include "common/privacy.hpp"
#include "common/time.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace pingan::console {

follower::follower(boost::asio::io_context& ioc, zmq::context_t& ctx, const broker_endpoints& ep,
                   std::function<void(event)> deliver, std::function<void()> caught_up)
    : ioc_(ioc), ctx_(ctx), ep_(ep), deliver_(std::move(deliver)),
      caught_up_(std::move(caught_up)) {}

follower::~follower() {
    stop();
}

void follower::start() {
    thread_ = std::thread([this] { run(); });
}

void follower::stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

void follower::pass_on(std::uint64_t off, std::string_view bytes, bool redact) {
    event e;
    if (auto p = decode(bytes, e)) {
        spdlog::warn("offset {} undecodable: {}", off, p.text());
        return;
    }
    if (redact && carries_minors_details(e.type())) redact_minors(e);
    e.offset = off;
    boost::asio::post(ioc_, [this, e = std::move(e)]() mutable { deliver_(std::move(e)); });
}

void follower::run_stream() {
    auto src = *ep_.stream;
    src.follow = true;
    std::uint64_t last = 0;
    bool caught = false;
    auto take = [&](std::uint64_t off, std::string_view bytes) {
        if (off <= last) return !stop_;
        // Sealed in the stream, and the keys are the brokers' alone.
        pass_on(off, bytes, true);
        last = off;
        return !stop_.load();
    };
    // Records removed from the stream (a gap): from the broker's replay, up to its head.
    auto from_broker = [&] {
        const curve_client* c = ep_.curve ? &*ep_.curve : nullptr;
        query_client q(ctx_, ep_.query, c);
        replay_request r;
        r.from = last + 1;
        auto end = q.replay(r, take, std::chrono::seconds(3));
        if (end.next > last + 1) last = end.next - 1;
    };
    bool gap = false;
    while (!stop_) {
        try {
            if (gap) from_broker();
            gap = false;
            src.from = last + 1;
            read_jetstream(src, take, [&] {
                if (!caught) {
                    caught = true;
                    spdlog::info("caught up at offset {} of stream {}", last, src.stream);
                    boost::asio::post(ioc_, caught_up_);
                }
                return !stop_.load();
            });
        } catch (const std::exception& x) {
            const auto* e = dynamic_cast<const error*>(&x);
            gap = gap || (e && e->code() == errc::not_found);
            if (gap)
                spdlog::error("{}: reading them from the broker at {}", x.what(), ep_.query);
            else
                spdlog::warn("stream {}: {}", src.stream, x.what());
            for (int i = 0; i < 10 && !stop_; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

void follower::run() {
    if (ep_.stream) return run_stream();
    const curve_client* c = ep_.curve ? &*ep_.curve : nullptr;
    // Subscribe first, so that nothing falls between the replay and the feed.
    feed_client feed(ctx_, ep_.feed, c);
    feed.subscribe("t/");
    auto q = std::make_unique<query_client>(ctx_, ep_.query, c);
    std::uint64_t last = 0;
    bool caught = false;
    auto show = [&](std::uint64_t off, std::string_view bytes) {
        if (off <= last) return !stop_;
        pass_on(off, bytes, false);
        last = off;
        return !stop_.load();
    };
    // Replays from last + 1 up to `to` (0: the head). Returns: false if the
    // broker did not answer (the next attempt starts again where this stopped).
    auto backfill = [&](std::uint64_t to) {
        try {
            replay_request r;
            r.from = last + 1;
            r.to = to;
            auto end = q->replay(r, show, std::chrono::seconds(3));
            if (!to && end.next > last + 1) last = end.next - 1;
            return true;
        } catch (const std::exception& x) {
            spdlog::warn("replay from {}: {}", last + 1, x.what());
            q = std::make_unique<query_client>(ctx_, ep_.query, c); // drop stale replies
            return false;
        }
    };
    auto quiet_since = std::chrono::steady_clock::now();
    // One turn: catch up if needed, then take one feed message.
    auto step = [&] {
        if (!caught) {
            if (!backfill(0)) {
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
                return;
            }
            caught = true;
            spdlog::info("caught up at offset {}", last);
            boost::asio::post(ioc_, caught_up_);
            quiet_since = std::chrono::steady_clock::now();
        }
        auto m = feed.receive(std::chrono::milliseconds(200));
        if (!m) {
            // A quiet feed may be a restarted broker whose first events were
            // published before the feed reconnected: ask for anything newer.
            if (std::chrono::steady_clock::now() - quiet_since > std::chrono::seconds(2)) {
                backfill(0);
                quiet_since = std::chrono::steady_clock::now();
            }
            return;
        }
        quiet_since = std::chrono::steady_clock::now();
        if (m->offset <= last) return;
        if (m->offset > last + 1 && !backfill(m->offset - 1)) {
            caught = false; // the broker went away: start again from last + 1
            return;
        }
        if (m->offset == last + 1) show(m->offset, m->bytes);
    };
    while (!stop_) {
        try {
            step();
        } catch (const std::exception& x) {
            // A link error (a refused handshake, a broker gone mid-handshake)
            // must not end the console: say so and try again.
            spdlog::warn("broker link: {}", x.what());
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
    }
}

actor::actor(boost::asio::io_context& ioc, zmq::context_t& ctx, const broker_endpoints& ep)
    : ioc_(ioc), ctx_(ctx), ep_(ep) {}

actor::~actor() {
    stop();
}

void actor::start() {
    thread_ = std::thread([this] { run(); });
}

void actor::stop() {
    {
        std::lock_guard l(m_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void actor::publish(event e, std::function<void(publish_outcome)> done) {
    {
        std::lock_guard l(m_);
        jobs_.emplace_back(std::move(e), std::move(done));
    }
    cv_.notify_all();
}

void actor::read_clock(std::function<void(timestamp)> done) {
    {
        std::lock_guard l(m_);
        clock_jobs_.push_back(std::move(done));
    }
    cv_.notify_all();
}

void actor::run() {
    const curve_client* c = ep_.curve ? &*ep_.curve : nullptr;
    std::unique_ptr<ingest_client> in;
    // One query connection for every clock read, made again only after a
    // failure (when a late reply could otherwise answer the next question).
    std::unique_ptr<query_client> q;
    // The broker's time: acts happen on its time line (a manual or scaled
    // clock in tests and simulations is not this machine's). A broker with a
    // system clock may refuse CLOCK: then this machine's time is its time.
    auto broker_now = [&] {
        auto now = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
        try {
            if (!q) q = std::make_unique<query_client>(ctx_, ep_.query, c);
            if (auto t = parse_utc(
                    q->clock(json::object(), std::chrono::seconds(1))["now"].get<std::string>()))
                now = *t;
        } catch (const std::exception&) {
            q.reset();
        }
        return now;
    };
    for (;;) {
        std::pair<event, std::function<void(publish_outcome)>> job;
        std::function<void(timestamp)> clock_job;
        {
            std::unique_lock l(m_);
            cv_.wait(l, [&] { return stop_ || !jobs_.empty() || !clock_jobs_.empty(); });
            if (stop_) return;
            if (!clock_jobs_.empty()) {
                clock_job = std::move(clock_jobs_.front());
                clock_jobs_.pop_front();
            } else {
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
        }
        if (clock_job) {
            auto now = broker_now();
            boost::asio::post(ioc_, [clock_job = std::move(clock_job), now] { clock_job(now); });
            continue;
        }
        auto& e = job.first;
        publish_outcome out;
        try {
            auto now = broker_now();
            e.id = new_event_id(now);
            e.occurred_at = now;
            if (!in) in = std::make_unique<ingest_client>(ctx_, ep_.ingest, c);
            std::vector<event> batch{e};
            auto r = in->publish(batch, std::chrono::seconds(2), 3);
            if (r.refused || r.results.empty()) {
                out.error = r.message.empty() ? "refused" : r.message;
            } else if (r.results[0].what == wire::outcome::rejected) {
                out.error = r.results[0].message;
            } else {
                out.ok = true;
                out.offset = r.results[0].offset;
            }
        } catch (const std::exception& x) {
            in.reset(); // a fresh connection for the next try
            out.error = std::string("the broker did not answer: ") + x.what();
        }
        boost::asio::post(ioc_, [done = std::move(job.second), out] { done(out); });
    }
}

} // namespace pingan::console
