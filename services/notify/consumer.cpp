// The page feed thread.
#include "consumer.hpp"

#include "common/client.hpp"
#include "common/codec.hpp"
#include "common/event.hpp"

namespace pingan::notify {

namespace net = svc::net;

consumer::consumer(svc::net::io_context& ioc, consumer_options o,
                   std::shared_ptr<spdlog::logger> log, page_fn on_page, progress_fn on_progress)
    : ioc_(ioc), opts_(std::move(o)), log_(std::move(log)), on_page_(std::move(on_page)),
      on_progress_(std::move(on_progress)) {}

consumer::~consumer() {
    stop();
}

void consumer::start(std::uint64_t position) {
    thread_ = std::thread([this, position] { run(position); });
}

void consumer::stop() {
    stop_ = true;
    ctx_.shutdown();
    if (thread_.joinable()) thread_.join();
}

void consumer::post_page(std::uint64_t offset, std::string_view bytes) {
    net::post(ioc_,
              [this, offset, b = std::string(bytes)]() mutable { on_page_(offset, std::move(b)); });
}

void consumer::pause() {
    for (int i = 0; i < 10 && !stop_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void consumer::run(std::uint64_t last) {
    if (opts_.jetstream) return run_stream(last);
    const std::string type(notification_requested::type);
    const curve_client* curve = opts_.curve ? &*opts_.curve : nullptr;
    bool warned = false;
    while (!stop_) {
        try {
            feed_client feed(ctx_, opts_.feed, curve);
            feed.subscribe("t/" + type + "/");
            query_client q(ctx_, opts_.query, curve);
            auto page = [&](std::uint64_t off, std::string_view bytes) {
                if (off > last) {
                    post_page(off, bytes);
                    last = off;
                }
                return !stop_.load();
            };
            // Pages after `last` up to `to` (0: the head); moves `last` past
            // everything examined.
            auto catch_up = [&](std::uint64_t to) {
                replay_request r;
                r.from = last + 1;
                r.to = to;
                r.type = type;
                auto end = q.replay(r, page, std::chrono::seconds(5));
                if (end.next > 0) last = std::max(last, end.next - 1);
                auto pos = last, head = end.head;
                net::post(ioc_, [this, pos, head] { on_progress_(pos, head); });
            };
            catch_up(0);
            if (warned) log_->info("broker reachable again; caught up to offset {}", last);
            warned = false;
            auto idle_since = std::chrono::steady_clock::now();
            while (!stop_) {
                auto m = feed.receive(std::chrono::milliseconds(100));
                if (!m) {
                    if (std::chrono::steady_clock::now() - idle_since > std::chrono::seconds(1)) {
                        catch_up(0);
                        idle_since = std::chrono::steady_clock::now();
                    }
                    continue;
                }
                if (m->offset <= last) continue; // already taken by a replay
                if (m->offset > last + 1) catch_up(m->offset - 1);
                page(m->offset, m->bytes);
            }
        } catch (const std::exception& x) {
            if (stop_) break;
            if (!warned) log_->warn("feed: {}; retrying", x.what());
            warned = true;
            pause();
        }
    }
}

void consumer::run_stream(std::uint64_t last) {
    auto src = *opts_.jetstream;
    src.follow = true;
    bool warned = false, gap = false;
    while (!stop_) {
        try {
            if (gap) {
                last = pages_from_broker(last);
                log_->info("read the records missing from the stream from the broker, up to "
                           "offset {}; reading the stream on from there",
                           last);
                gap = false;
            }
            src.from = last + 1;
            read_jetstream(
                src,
                [&](std::uint64_t off, std::string_view bytes) {
                    if (warned)
                        log_->info("stream {} readable again at offset {}", src.stream, off);
                    warned = false;
                    event_head h;
                    if (peek(bytes, h) && h.type == notification_requested::type)
                        post_page(off, bytes);
                    last = off;
                    return !stop_.load();
                },
                [&] {
                    // Nothing waiting: everything the stream holds was read.
                    auto pos = last;
                    net::post(ioc_, [this, pos] { on_progress_(pos, pos); });
                    return !stop_.load();
                });
        } catch (const std::exception& x) {
            if (stop_) break;
            const auto* e = dynamic_cast<const error*>(&x);
            gap = e && e->code() == errc::not_found;
            if (gap)
                log_->error("{}: reading them from the broker at {}", x.what(), opts_.query);
            else if (!warned)
                log_->warn("stream: {}; retrying", x.what());
            warned = !gap;
            if (!gap) pause();
        }
    }
}

std::uint64_t consumer::pages_from_broker(std::uint64_t last) {
    const curve_client* curve = opts_.curve ? &*opts_.curve : nullptr;
    query_client q(ctx_, opts_.query, curve);
    replay_request r;
    r.from = last + 1;
    r.type = std::string(notification_requested::type);
    auto end = q.replay(
        r,
        [&](std::uint64_t off, std::string_view bytes) {
            post_page(off, bytes);
            return !stop_.load();
        },
        std::chrono::seconds(5));
    if (end.next > 0) last = std::max(last, end.next - 1);
    auto pos = last, head = end.head;
    net::post(ioc_, [this, pos, head] { on_progress_(pos, head); });
    return last;
}

} // namespace pingan::notify
