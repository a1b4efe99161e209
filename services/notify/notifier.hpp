// The heart of pingan-notify: from a page in the log to deliveries, retries,
// receipts and acknowledgement links.
//
// Every page is recorded in notify's LMDB before anything is sent. Each
// receiver the directory names gets the page through its channel; a failure
// is retried with exponential backoff and jitter until `give_up_after` has
// passed since the page arrived. Every attempt's outcome is recorded in the
// LMDB first and then published as a receipt (`notification.delivered` or
// `notification.failed`, ids only, never the text) through the durable
// outbox, with an id derived from the page, receiver and attempt, so a
// receipt re-sent after a crash is stored once. A page that reached nobody
// ends with a `notification.failed` marked `final`, which the escalation
// rules can take to the next tier. Runs on the io_context thread.
#pragma once

#include "channels.hpp"
#include "directory.hpp"
#include "state.hpp"

#include "common/clock.hpp"
#include "common/outbox.hpp"
#include "common/publisher.hpp"

#include <spdlog/logger.h>

#include <chrono>
#include <map>
#include <memory>

namespace pingan::notify {

struct notifier_options {
    std::chrono::milliseconds give_up_after{std::chrono::minutes(10)};
    std::chrono::milliseconds retry_initial{std::chrono::seconds(2)};
    std::chrono::milliseconds retry_max{std::chrono::minutes(2)};
    std::chrono::milliseconds ack_ttl{std::chrono::hours(72)};
    std::string ack_base; // "http://127.0.0.1:8091": links are <ack_base>/ack/<token>
    // The key link tokens derive from (--link-key): a token is never stored,
    // only its hash, so a reader of the state DB holds no working link.
    std::string link_key;
    bool metrics = false; // serve GET /metrics
    std::string source = "pingan-notify/default";
};

class notifier {
  public:
    notifier(net::io_context& ioc, state& st, outbox& box, publisher& pub, channels& ch,
             const clock& now, notifier_options o, std::shared_ptr<spdlog::logger> log);

    void set_directory(std::shared_ptr<const directory> d) { dir_ = std::move(d); }
    std::shared_ptr<const directory> current_directory() const { return dir_; }
    void set_ack_base(std::string base) { opts_.ack_base = std::move(base); }
    // Counts a directory reload (for /health and /metrics).
    void note_reload(bool ok) { ++(ok ? m_.reloads : m_.reloads_refused); }

    // Takes up the pages a previous run left open: re-sends receipts whose
    // outcome was recorded, and delivers what is still pending.
    void resume();
    void on_page(std::uint64_t offset, std::string bytes);
    void on_progress(std::uint64_t position, std::uint64_t head);
    void stop();

    // GET /health, GET /metrics, GET and POST /ack/<token>.
    svc::response handle(const svc::request& req);

  private:
    enum class tstate { pending, delivered, gave_up };
    struct target {
        std::string receiver;
        std::uint32_t attempts = 0; // outcomes recorded
        tstate st = tstate::pending;
        bool last_ok = false;
        std::string last_error, last_channel;
        std::uint64_t last_latency_ms = 0;
        std::uint32_t receipts = 0; // attempts whose receipt is in the outbox
        std::string token;          // its acknowledgement token (derived, never stored)
    };
    struct page {
        std::uint64_t offset = 0;
        event ev;
        std::int64_t first_ms = 0;   // wall time the page was taken
        std::int64_t expires_ms = 0; // its acknowledgement links stop working
        bool final_sent = false;
        std::vector<target> targets;
    };

    json page_json(const page& p) const;
    bool page_from_json(const json& j, page& p) const;
    void attempt(std::uint64_t offset, std::size_t i);
    void on_outcome(std::uint64_t offset, std::size_t i, std::uint32_t n, std::string channel,
                    std::uint64_t latency_ms, outcome o);
    void emit_receipt(page& p, target& t);
    void settle_if_done(std::uint64_t offset);
    void emit_final(page& p, const std::string& why);
    event receipt_base(const page& p, std::string_view tag) const;
    delivery make_delivery(const page& p, const target& t, const receiver& r,
                           std::uint32_t attempt) const;
    svc::response ack(const svc::request& req, std::string_view token);
    std::string link_token(const page& p, const std::string& receiver) const;
    std::string metrics_text() const;
    static std::int64_t wall_ms();

    net::io_context& ioc_;
    state& st_;
    outbox& box_;
    publisher& pub_;
    channels& ch_;
    const clock& now_;
    notifier_options opts_;
    std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<const directory> dir_;
    std::map<std::uint64_t, page> pages_;
    std::map<std::pair<std::uint64_t, std::size_t>, std::unique_ptr<net::steady_timer>> timers_;
    std::uint64_t position_ = 0, head_ = 0;
    std::int64_t position_saved_ms_ = 0;
    bool stopping_ = false;

    struct counters {
        std::map<std::string, std::uint64_t> deliveries, failures, retries;
        std::uint64_t pages = 0, final_failures = 0, acks = 0, reloads = 0, reloads_refused = 0;
    } m_;
};

// The idempotency key of a page to one receiver: the same for every attempt.
std::string idempotency_key(const event_id& page, std::string_view receiver);

} // namespace pingan::notify
