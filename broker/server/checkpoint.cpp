// Signed checkpoints of the broker's head (common/signing.hpp).
//
// The broker signs its durable head as it starts; a thread of its own signs
// it every interval and,
// once ingest has drained at a clean stop, one last time; it writes each
// checkpoint as a file into the directory another party keeps and hands the
// audit.checkpoint event to the writer like any other. The writer never signs.
// An idle broker signs nothing new: when the head is the last checkpoint's
// own event, there is nothing more to vouch for. CHECKPOINT {"now": true}
// (query.cpp) wakes the thread to sign the head at once, trigger "request".
#include "broker/server/broker_impl.hpp"

#include "common/event_id.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace pingan {
namespace {

// The checkpoint as a file in `dir`: written beside, then renamed, so that
// the other party never reads half a file.
void write_checkpoint_file(const std::string& dir, const checkpoint& c) {
    char name[64];
    std::snprintf(name, sizeof name, "checkpoint-%020llu.json",
                  static_cast<unsigned long long>(c.offset));
    auto path = std::filesystem::path(dir) / name;
    auto tmp = path;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << to_json(c).dump() << "\n";
        out.flush();
        if (!out) throw error(errc::io_error, "cannot write " + tmp.string());
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw error(errc::io_error, "cannot rename " + tmp.string() + ": " + ec.message());
}

} // namespace

void broker::impl::make_checkpoint(const char* trigger) {
    const auto& cfg = *opts.checkpoints;
    try {
        auto head = st.head();
        if (!head) return;
        if (auto rec = st.get(head)) {
            event last;
            if (!decode(*rec, last))
                if (auto* b = std::get_if<audit_checkpoint>(&last.body)) {
                    // Nothing new since then; the answer to CHECKPOINT after a restart.
                    std::lock_guard lock(checkpoint_m);
                    if (!latest_checkpoint)
                        latest_checkpoint = checkpoint{b->offset, b->hash, b->signed_at,
                                                       b->public_key, b->signature};
                    return;
                }
        }
        auto hash = st.hash_at(head);
        if (!hash) throw error(errc::store_failure, "record " + std::to_string(head) + " missing");
        auto now = clk.now();
        auto c = sign_checkpoint(cfg.key, head, hex(*hash), now);
        {
            std::lock_guard lock(checkpoint_m);
            latest_checkpoint = c;
        }
        if (!cfg.dir.empty()) {
            try {
                write_checkpoint_file(cfg.dir, c);
            } catch (const error& e) {
                spdlog::error("checkpoint at offset {}: {}; it is still stored in the log", head,
                              e.detail());
            }
        }
        event e;
        e.id = new_event_id(now);
        e.source = "pingan-broker/checkpoint";
        e.actor = "pingan-broker";
        e.occurred_at = now;
        e.status = status::system;
        e.scope = scope::restricted;
        audit_checkpoint b;
        b.offset = c.offset;
        b.hash = c.hash;
        b.signed_at = c.time;
        b.public_key = c.public_key;
        b.signature = c.signature;
        b.trigger = trigger;
        e.body = std::move(b);
        std::vector<prepared_event> one;
        one.push_back(prepare(std::move(e)));
        std::vector<owner_tag> owner{{nullptr, 0}};
        pipe.push(one, owner);
        spdlog::info("checkpoint ({}): offset {} hash {} signed", trigger, c.offset, c.hash);
    } catch (const std::exception& x) {
        spdlog::error("checkpoint ({}) not made: {}", trigger, x.what());
    }
}

void broker::impl::run_checkpoints() {
    std::unique_lock lock(checkpoint_m);
    while (!checkpoint_final) {
        bool asked = false;
        if (!checkpoint_cv.wait_for(lock, opts.checkpoints->interval, [&] {
                return checkpoint_final || checkpoint_requests > checkpoint_served;
            })) {
            // The interval passed.
        } else if (checkpoint_final) {
            break;
        } else {
            asked = true;
        }
        // Every request waiting now is answered by this one signature.
        auto serving = checkpoint_requests;
        lock.unlock();
        make_checkpoint(asked ? "request" : "interval");
        lock.lock();
        checkpoint_served = std::max(checkpoint_served, serving);
        checkpoint_cv.notify_all();
    }
    lock.unlock();
    make_checkpoint("shutdown");
    lock.lock();
    checkpoint_served = checkpoint_requests; // they get the shutdown's checkpoint
    lock.unlock();
    checkpoint_cv.notify_all();
    pipe.close();
}

bool broker::impl::request_checkpoint(std::chrono::milliseconds limit,
                                      std::optional<checkpoint>& latest) {
    std::unique_lock lock(checkpoint_m);
    if (checkpoint_final) return false;
    auto mine = ++checkpoint_requests;
    checkpoint_cv.notify_all();
    if (!checkpoint_cv.wait_for(lock, limit, [&] { return checkpoint_served >= mine; }))
        return false;
    latest = latest_checkpoint;
    return true;
}

void broker::impl::ingest_finished() {
    if (!opts.checkpoints) {
        pipe.close();
        return;
    }
    {
        std::lock_guard lock(checkpoint_m);
        checkpoint_final = true;
    }
    checkpoint_cv.notify_all();
}

} // namespace pingan
