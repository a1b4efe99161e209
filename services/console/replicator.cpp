// The photo replicator: a durable queue of wanted photos, worked by one thread.
#include "replicator.hpp"

#include "common/errc.hpp"
#include "common/time.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>

namespace pingan::console {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

timestamp wall_now() {
    return std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
}

photo_replicator::photo_replicator(const std::string& dir, photo_sources from,
                                   std::shared_ptr<spdlog::logger> log)
    : from_(std::move(from)), log_(std::move(log)), store_(dir + "/photos"),
      queue_env_(lmdb::open_local(dir + "/photo-queue", "the photo queue", 8u << 20,
                                  {{"pending", &pending_db_}, {"state", &state_db_}})) {
    lmdb::txn t(queue_env_, MDB_RDONLY);
    if (auto v = lmdb::get(t, state_db_, "offset")) durable_ = lmdb::from_be64(*v);
    seen_ = durable_;
    lmdb::cursor c(t, pending_db_);
    std::string_view k, v;
    for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT)) {
        auto j = json::parse(std::string(v), nullptr, false);
        if (!j.is_object()) continue;
        wanted w;
        w.ref.hash = std::string(k);
        w.ref.size = j.value("size", std::uint64_t{0});
        w.ref.type = j.value("type", "");
        w.school = j.value("school", "");
        w.offset = j.value("offset", std::uint64_t{0});
        pending_.emplace(w.ref.hash, std::move(w));
    }
    held_ = store_.count();
}

photo_replicator::~photo_replicator() {
    stop();
}

void photo_replicator::start() {
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
}

void photo_replicator::stop() {
    {
        std::lock_guard l(m_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void photo_replicator::on_event(const event& e) {
    auto refs = svc::photo_refs_of(e);
    {
        std::lock_guard l(m_);
        if (e.offset <= seen_) return;
        seen_ = e.offset;
        for (auto& r : refs)
            inbox_.push_back(wanted{std::move(r), e.school, e.offset, 0, {}});
    }
    // Without photos only the offset moved: the worker writes it within a second.
    if (!refs.empty()) cv_.notify_one();
}

std::optional<svc::photo_store::photo> photo_replicator::get(const std::string& hash) const {
    if (!svc::valid_photo_hash(hash)) return std::nullopt;
    std::lock_guard l(store_m_);
    return store_.get(hash);
}

std::string photo_replicator::mismatch(const photo_ref& ref, const std::string& bytes,
                                       const std::string& type) {
    if (svc::photo_hash(bytes) != ref.hash) return "the bytes do not hash to the name";
    if (bytes.size() != ref.size)
        return "the photo is " + std::to_string(bytes.size()) + " bytes, the event says " +
               std::to_string(ref.size);
    if (type != ref.type) return "the photo is " + type + ", the event says " + ref.type;
    return {};
}

bool photo_replicator::keep(const photo_ref& ref, const std::string& school,
                            const std::string& bytes, const std::string& type) {
    if (!mismatch(ref, bytes, type).empty()) return false;
    bool fresh = false;
    {
        std::lock_guard l(store_m_);
        fresh = store_.put(bytes, ref.type, school, "pingan-console", wall_now()).fresh;
    }
    std::lock_guard l(m_);
    if (fresh) ++held_;
    return true;
}

photo_replicator::status photo_replicator::counts() const {
    std::lock_guard l(m_);
    return {held_, pending_.size() + inbox_.size(), fetched_, failures_, refused_, seen_};
}

void photo_replicator::run() {
    std::unique_lock l(m_);
    while (!stop_) {
        auto due = steady::now() + std::chrono::seconds(1);
        for (const auto& [h, w] : pending_)
            due = std::min(due, w.next);
        cv_.wait_until(l, due, [this] { return stop_ || !inbox_.empty(); });
        if (stop_) break;
        auto fresh = std::move(inbox_);
        inbox_.clear();
        auto offset = seen_;
        l.unlock();
        try {
            if (!fresh.empty() || offset > durable_) record(std::move(fresh), offset);
            fetch_due();
        } catch (const std::exception& x) {
            // The store failed (disk full?): say so and try again later.
            log_->error("photo replication: {}", x.what());
            l.lock();
            if (!stop_) cv_.wait_for(l, std::chrono::seconds(5), [this] { return stop_; });
            continue;
        }
        l.lock();
    }
}

// Writes the photos not held yet to `pending` and the offset, in one transaction.
void photo_replicator::record(std::vector<wanted> fresh, std::uint64_t offset) {
    std::vector<wanted> add;
    for (auto& w : fresh) {
        if (!svc::valid_photo_hash(w.ref.hash)) continue;
        {
            std::lock_guard l(store_m_);
            if (store_.get(w.ref.hash, false)) continue;
        }
        if (std::any_of(add.begin(), add.end(),
                        [&](const wanted& a) { return a.ref.hash == w.ref.hash; }))
            continue;
        {
            std::lock_guard l(m_);
            if (pending_.count(w.ref.hash)) continue;
        }
        add.push_back(std::move(w));
    }
    lmdb::write_growing(queue_env_, "the photo queue", [&](const lmdb::txn& t) {
        for (const auto& w : add)
            lmdb::put(t, pending_db_, w.ref.hash,
                      json{{"size", w.ref.size},
                           {"type", w.ref.type},
                           {"school", w.school},
                           {"offset", w.offset}}
                          .dump());
        lmdb::put(t, state_db_, "offset", lmdb::be64(offset));
    });
    std::lock_guard l(m_);
    durable_ = offset;
    for (auto& w : add)
        pending_.emplace(w.ref.hash, std::move(w));
}

// Takes a photo that is held off the queue.
void photo_replicator::forget(const std::string& hash) {
    lmdb::write_growing(queue_env_, "the photo queue",
                        [&](const lmdb::txn& t) { lmdb::del(t, pending_db_, hash); });
    std::lock_guard l(m_);
    pending_.erase(hash);
}

// Fetches each pending photo whose time has come, from the sources in turn.
void photo_replicator::fetch_due() {
    for (;;) {
        wanted w;
        {
            std::lock_guard l(m_);
            if (stop_) return;
            auto now = steady::now();
            auto it = std::find_if(pending_.begin(), pending_.end(),
                                   [&](const auto& kv) { return kv.second.next <= now; });
            if (it == pending_.end()) return;
            w = it->second;
        }
        bool held = false;
        {
            std::lock_guard l(store_m_);
            held = store_.get(w.ref.hash, false).has_value();
        }
        if (held) { // kept meanwhile for a page that asked
            forget(w.ref.hash);
            continue;
        }
        auto got = fetch_photo(from_, w.ref.hash);
        std::string why = got.ok() ? mismatch(w.ref, got.bytes, got.type) : got.error;
        bool wrong = !got.ok() && got.error.find("do not match the hash") != std::string::npos;
        if (why.empty()) {
            bool fresh = false;
            {
                std::lock_guard l(store_m_);
                fresh =
                    store_.put(got.bytes, w.ref.type, w.school, "pingan-console", wall_now()).fresh;
            }
            forget(w.ref.hash);
            std::lock_guard l(m_);
            ++fetched_;
            if (fresh) ++held_;
            log_->info("photo {} of {} (offset {}) replicated, {} bytes", w.ref.hash, w.school,
                       w.offset, got.bytes.size());
            continue;
        }
        std::lock_guard l(m_);
        auto it = pending_.find(w.ref.hash);
        if (it == pending_.end()) continue;
        auto& p = it->second;
        ++p.attempts;
        ++failures_;
        if (wrong || got.ok()) ++refused_;
        auto wait = std::chrono::seconds(1LL << std::min(p.attempts - 1, 6u));
        p.next = steady::now() + std::min<std::chrono::seconds>(wait, std::chrono::seconds(60));
        // Said on the first failures and then rarely, not once a minute per photo.
        if (std::has_single_bit(p.attempts))
            log_->warn("photo {} of {} (offset {}) not replicated yet (attempt {}): {}", w.ref.hash,
                       w.school, w.offset, p.attempts, why);
    }
}

} // namespace pingan::console
