// Replication of the log to a NATS JetStream stream (replicator.hpp).
//
// Every record of the log, in offset order, is published as its stored
// bytes on the subject of its district and school
// (common/stream_subjects.hpp), the stream taking `<subject>.>`, with `Nats-Msg-Id` = the event id
// (the stream's duplicate window) and `Nats-Expected-Last-Sequence` = offset - 1: the stream
// accepts a record only right after its predecessor, so its sequence is the log's offset and it can
// hold no gap and no reordering. Publishing is asynchronous: the replication thread sends what the
// stream lacks (up to a window) and libnats calls back with each acknowledgement; a batch's results
// are released once the stream has confirmed their highest offset, that is acknowledged storing
// that record and every one before it each at its own offset. After an error or a timeout the
// thread waits out what is in flight, asks the stream for its last sequence, reads back what it
// sent that was not so acknowledged (another writer's record there ends its leadership) and
// publishes from there, reading from the store what it no longer holds in memory; the same path
// catches the stream up at start.
//
// The only broker file that includes <nats.h>.
#include "broker/replication/replicator.hpp"

#include "common/codec.hpp"
#include "common/errc.hpp"
#include "common/event_id.hpp"
#include "common/nats_text.hpp"
#include "common/stream_subjects.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <unistd.h>

namespace pingan {
namespace {

constexpr const char* expected_last_header = "Nats-Expected-Last-Sequence";
// Records published and not yet confirmed, at most: bounds the memory libnats
// holds for them and a catch-up's burst.
constexpr std::uint64_t window = 65536;

// The event id in a record's binary form (flag, format, then 16 bytes: common/codec.cpp).
std::string record_id(std::string_view bytes) {
    if (bytes.size() < 18) return {};
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), bytes.data() + 2, 16);
    auto id = event_id::from_bytes(b);
    return id ? id->str() : std::string();
}

// The subject a record is published on: its district's and school's.
std::string subject_of(const jetstream_config& c, std::string_view bytes) {
    event_head h;
    if (!peek(bytes, h)) return record_subject(c.subject, {}, {});
    return record_subject(c.subject, h.district, h.school);
}

// Why the stream `si` cannot hold this broker's records, or empty when it
// can: it must take `<subject>.>`. A stream made by a broker that published
// every record on `<subject>` alone is named as such.
std::string subjects_problem(const jsStreamInfo* si, const jetstream_config& c) {
    auto wanted = stream_subjects(c.subject);
    bool old = false;
    std::string taken;
    for (int i = 0; si->Config && i < si->Config->SubjectsLen; ++i) {
        std::string_view s = si->Config->Subjects[i];
        if (s == wanted) return {};
        old = old || s == c.subject;
        taken += (taken.empty() ? "" : ", ") + std::string(s);
    }
    if (old)
        return "stream " + c.stream + " takes the single subject " + c.subject +
               ", on which brokers before per-scope subjects published every record; this "
               "broker publishes each record on " +
               c.subject + ".<district>.<school> and needs a stream that takes " + wanted +
               ": name a new stream (--jetstream-stream; the broker fills it from its log at "
               "start) or remove stream " +
               c.stream + " (docs/replication.md, \"Subjects\")";
    return "stream " + c.stream + " does not take the subjects " + wanted + " (it takes " +
           (taken.empty() ? std::string("none") : taken) + ")";
}

// This broker's name in the lease: the configured one, else host:pid.
std::string holder_name(const jetstream_config& c) {
    if (!c.name.empty()) return c.name;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
    return std::string(host) + ":" + std::to_string(::getpid());
}

// The leadership lease: the key `leader` of the KeyValue bucket
// <stream>_LEADER, whose entries JetStream removes `lease` after their last
// write. Whoever creates the key holds it while it renews it in time; a
// renewal names the revision it last wrote, so that a lapsed holder can never
// renew over its successor.
class lease {
  public:
    lease(jsCtx* js, const jetstream_config& c) : cfg_(c), me_(holder_name(c)) {
        kvConfig kc;
        kvConfig_Init(&kc);
        auto bucket = c.stream + "_LEADER";
        kc.Bucket = bucket.c_str();
        kc.History = 1;
        kc.TTL = std::chrono::duration_cast<std::chrono::nanoseconds>(c.lease).count();
        kc.Replicas = c.replicas;
        kc.StorageType = js_FileStorage;
        auto until = std::chrono::steady_clock::now() +
                     std::max<std::chrono::milliseconds>(c.timeout * 5, std::chrono::seconds(10));
        natsStatus s = NATS_OK;
        while (true) {
            s = js_CreateKeyValue(&kv_, js, &kc);
            // One made with other settings (an older lease length) is used as it is.
            if (s != NATS_OK) s = js_KeyValue(&kv_, js, bucket.c_str());
            if (s == NATS_OK || std::chrono::steady_clock::now() >= until) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        if (s != NATS_OK)
            throw error(errc::io_error,
                        "replication: the lease bucket " + bucket + ": " + nats_text(s));
    }
    ~lease() {
        if (kv_) kvStore_Destroy(kv_);
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;

    const std::string& me() const noexcept { return me_; }
    // Whether take() succeeded (and release() has not been called since).
    bool holds() const noexcept { return rev_ != 0; }

    // Who holds it. Returns: empty when nobody does; nothing when JetStream
    // cannot tell now.
    std::optional<std::string> holder() {
        kvEntry* e = nullptr;
        auto s = kvStore_Get(&e, kv_, key);
        if (s == NATS_NOT_FOUND) return std::string();
        if (s != NATS_OK) return std::nullopt;
        std::string who(static_cast<const char*>(kvEntry_Value(e)),
                        static_cast<std::size_t>(kvEntry_ValueLen(e)));
        kvEntry_Destroy(e);
        return who;
    }

    // Takes it if nobody holds it. Returns: whether this broker holds it now.
    bool take() {
        auto sent = std::chrono::steady_clock::now();
        std::uint64_t rev = 0;
        if (kvStore_Create(&rev, kv_, key, me_.data(), static_cast<int>(me_.size())) != NATS_OK)
            return false;
        rev_ = rev;
        valid_until_ = sent + cfg_.lease * 2 / 3;
        return true;
    }

    enum class renewal { renewed, lost, unknown };
    renewal renew() {
        auto sent = std::chrono::steady_clock::now();
        std::uint64_t rev = 0;
        auto s = kvStore_Update(&rev, kv_, key, me_.data(), static_cast<int>(me_.size()), rev_);
        if (s == NATS_OK) {
            rev_ = rev;
            valid_until_ = sent + cfg_.lease * 2 / 3;
            return renewal::renewed;
        }
        // Refused by JetStream (the key is at another revision: it lapsed, or
        // another broker took it): lost for good. A timeout or a lost
        // connection says nothing yet.
        return s == NATS_ERR ? renewal::lost : renewal::unknown;
    }

    // Whether this broker may still write: its last renewal is recent enough
    // that the key cannot have lapsed yet, whatever JetStream's clock says.
    bool valid() const { return std::chrono::steady_clock::now() < valid_until_; }

    // After a refused renewal: this broker holds nothing until reclaim() succeeds.
    void forget() noexcept {
        rev_ = 0;
        valid_until_ = {};
    }

    // Takes the key again after a refused renewal if nobody holds it (it
    // lapsed). A key that still names this broker (a renewal JetStream
    // applied whose answer was lost) is left to lapse, a lease later: a name
    // is no proof, two brokers may share one.
    enum class claim { taken, other, unknown };
    claim reclaim() {
        auto who = holder();
        if (!who) return claim::unknown;
        if (who->empty()) return take() ? claim::taken : claim::unknown;
        return *who == me_ ? claim::unknown : claim::other;
    }

    // A clean stop: the next broker need not wait for the lease to lapse.
    // Only while the key surely has not lapsed: past that it may be a
    // successor's, whatever name it shows.
    void release() {
        if (!rev_) return;
        if (valid() && holder() == me_) (void)kvStore_Delete(kv_, key);
        rev_ = 0;
        valid_until_ = {};
    }

  private:
    static constexpr const char* key = "leader";
    const jetstream_config& cfg_;
    std::string me_;
    kvStore* kv_ = nullptr;
    std::uint64_t rev_ = 0;
    std::chrono::steady_clock::time_point valid_until_{};
};

struct batch {
    std::vector<stored_record> records; // offset order
    std::vector<completion> done;
    std::uint64_t target = 0; // the highest offset its records and results name
    std::chrono::steady_clock::time_point deadline;
};

class jetstream_replicator final : public replicator {
  public:
    jetstream_replicator(const jetstream_config& c, const store& st,
                         std::function<void(std::vector<completion>&)> release)
        : cfg_(c), st_(st), release_(std::move(release)) {
        try {
            connect();
            // The stream first: on a cluster that has just started this waits
            // for its elections, which must not eat into the lease.
            jsStreamInfo_Destroy(find_or_create_stream());
            lease_ = std::make_unique<lease>(js_, cfg_);
            // A predecessor that crashed (kill -9, power) holds the lease for
            // at most one more lease: wait that long before giving up.
            auto until = std::chrono::steady_clock::now() + cfg_.lease + std::chrono::seconds(1);
            bool said = false;
            while (!lease_->take() && std::chrono::steady_clock::now() < until) {
                if (!said)
                    spdlog::info("replication: the leadership lease of stream {} is held by {}; "
                                 "waiting up to {} ms for it to lapse",
                                 cfg_.stream, lease_->holder().value_or("?"),
                                 (cfg_.lease + std::chrono::seconds(1)).count());
                said = true;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            if (!lease_->holds()) {
                auto who = lease_->holder().value_or("?");
                throw not_leader(errc::forbidden,
                                 "replication: the leadership lease of stream " + cfg_.stream +
                                     " is held by " + (who.empty() ? "another broker" : who) +
                                     ": this broker may not write it (start it with --standby "
                                     "to follow the stream and take over when the lease lapses)");
            }
            spdlog::info("replication: {} holds the leadership lease of stream {} ({} ms)",
                         lease_->me(), cfg_.stream, cfg_.lease.count());
            open_stream();
            // Renewed once now: reading the stream may have taken a good part
            // of the lease, and renewals start with the replication thread.
            if (lease_->renew() == lease::renewal::lost || !lease_->valid())
                throw not_leader(errc::forbidden,
                                 "replication: the leadership lease of stream " + cfg_.stream +
                                     " lapsed while the stream was read (a lease of " +
                                     std::to_string(cfg_.lease.count()) +
                                     " ms is too short for this cluster); start again");
        } catch (...) {
            if (lease_) lease_->release();
            close();
            throw;
        }
    }

    ~jetstream_replicator() override {
        stop();
        close();
    }

    void start() override {
        thread_ = std::thread([this] { run(); });
    }

    void submit(std::vector<stored_record> records, std::vector<completion>& done) override {
        batch b;
        b.target = records.empty() ? 0 : records.back().offset;
        for (const auto& c : done)
            if (c.failure == errc::ok) b.target = std::max(b.target, c.result.offset);
        b.records = std::move(records);
        b.done = std::move(done);
        done.clear();
        b.deadline = std::chrono::steady_clock::now() + cfg_.timeout;
        {
            std::lock_guard lock(m_);
            if (!b.records.empty()) head_ = std::max(head_, b.records.back().offset);
            batches_.push_back(std::move(b));
            changed_ = true;
        }
        cv_.notify_one();
    }

    void stop() override {
        {
            std::lock_guard lock(m_);
            if (stopping_) return;
            stopping_ = true;
            stop_deadline_ = std::chrono::steady_clock::now() + cfg_.timeout;
            changed_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
        if (lease_ && !fenced_) lease_->release();
    }

  private:
    void connect() {
        natsOptions* o = nullptr;
        std::vector<const char*> urls;
        for (const auto& s : cfg_.servers)
            urls.push_back(s.c_str());
        auto s = natsOptions_Create(&o);
        if (s == NATS_OK) s = natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size()));
        if (s == NATS_OK) s = natsOptions_SetName(o, "pingan-broker");
        if (s == NATS_OK) s = natsOptions_SetTimeout(o, cfg_.timeout.count());
        // Reconnect forever, quickly: while disconnected, batches are refused.
        if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
        if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
        if (s == NATS_OK)
            s = natsOptions_SetDisconnectedCB(
                o,
                [](natsConnection*, void* self) {
                    if (static_cast<jetstream_replicator*>(self)->closing_) return;
                    spdlog::warn("replication: disconnected from JetStream; publishes are refused "
                                 "until it is back");
                    static_cast<jetstream_replicator*>(self)->wake();
                },
                this);
        if (s == NATS_OK)
            s = natsOptions_SetReconnectedCB(
                o,
                [](natsConnection*, void* self) {
                    spdlog::info("replication: reconnected to JetStream");
                    static_cast<jetstream_replicator*>(self)->wake();
                },
                this);
        if (s == NATS_OK) s = natsConnection_Connect(&nc_, o);
        if (o) natsOptions_Destroy(o);
        if (s != NATS_OK)
            throw error(errc::io_error, "replication: cannot reach JetStream at " +
                                            shown_urls(cfg_.servers) + ": " + nats_text(s));
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = cfg_.timeout.count();
        jo.PublishAsync.MaxPending = static_cast<int64_t>(window);
        jo.PublishAsync.AckHandler = &jetstream_replicator::on_ack;
        jo.PublishAsync.AckHandlerClosure = this;
        s = natsConnection_JetStream(&js_, nc_, &jo);
        if (s != NATS_OK)
            throw error(errc::io_error, "replication: JetStream context: " + nats_text(s));
    }

    // Waits for the cluster to answer for the stream (a cluster that has just
    // started elects its leaders first) and creates it if it is absent.
    // Returns: its information (the caller destroys it).
    jsStreamInfo* find_or_create_stream() {
        jsStreamInfo* si = nullptr;
        jsErrCode jerr{};
        natsStatus s = NATS_OK;
        auto until =
            std::chrono::steady_clock::now() +
            std::max<std::chrono::milliseconds>(cfg_.timeout * 5, std::chrono::seconds(10));
        while (true) {
            jerr = jsErrCode{};
            s = js_GetStreamInfo(&si, js_, cfg_.stream.c_str(), nullptr, &jerr);
            if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
                jsStreamConfig sc;
                jsStreamConfig_Init(&sc);
                auto wanted = stream_subjects(cfg_.subject);
                const char* subjects[] = {wanted.c_str()};
                sc.Name = cfg_.stream.c_str();
                sc.Subjects = subjects;
                sc.SubjectsLen = 1;
                sc.Storage = js_FileStorage;
                sc.Replicas = cfg_.replicas;
                jerr = jsErrCode{};
                s = js_AddStream(&si, js_, &sc, nullptr, &jerr);
                if (s == NATS_OK)
                    spdlog::info("replication: created stream {} on {} ({} replicas)", cfg_.stream,
                                 wanted, cfg_.replicas);
            }
            if (s == NATS_OK || std::chrono::steady_clock::now() >= until) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        if (s != NATS_OK)
            throw error(errc::io_error, "replication: stream " + cfg_.stream + " at " +
                                            shown_urls(cfg_.servers) + ": " + nats_text(s) +
                                            (jerr ? " (JetStream error " +
                                                        std::to_string(static_cast<int>(jerr)) + ")"
                                                  : std::string()));
        return si;
    }

    // Checks the stream against the local log (with the lease held).
    void open_stream() {
        auto* si = find_or_create_stream();
        jsErrCode jerr{};
        natsStatus s = NATS_OK;
        auto last = si->State.LastSeq;
        auto problem = subjects_problem(si, cfg_);
        jsStreamInfo_Destroy(si);
        if (!problem.empty()) throw error(errc::bad_config, "replication: " + problem);
        auto local = st_.head();
        if (last > local)
            throw not_leader(errc::bad_config,
                             "replication: stream " + cfg_.stream +
                                 " is ahead of the local store: its last sequence is " +
                                 std::to_string(last) + ", the local head is " +
                                 std::to_string(local) +
                                 "; this store is not the log the stream replicates");
        if (last > 0) {
            // The stream's last record must be this log's record at that offset.
            natsMsg* m = nullptr;
            jerr = jsErrCode{};
            s = js_GetMsg(&m, js_, cfg_.stream.c_str(), last, nullptr, &jerr);
            if (s != NATS_OK)
                throw error(errc::io_error, "replication: reading sequence " +
                                                std::to_string(last) + " of stream " + cfg_.stream +
                                                ": " + nats_text(s));
            std::string theirs(natsMsg_GetData(m),
                               static_cast<std::size_t>(natsMsg_GetDataLength(m)));
            natsMsg_Destroy(m);
            if (theirs != st_.get(last).value_or(std::string()))
                throw error(errc::bad_config,
                            "replication: stream " + cfg_.stream + "'s record at sequence " +
                                std::to_string(last) + " is not the local record at offset " +
                                std::to_string(last) + "; the stream replicates another log");
        }
        confirmed_ = sent_ = last;
        head_ = local;
        behind_ = last < local;
        spdlog::info("replication: stream {} on {} at sequence {}, local head {}{}", cfg_.stream,
                     shown_urls(cfg_.servers), last, local,
                     last < local
                         ? "; publishing the " + std::to_string(local - last) + " records it lacks"
                         : std::string());
    }

    void close() {
        lease_.reset();
        if (js_ && nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = 500;
            (void)js_PublishAsyncComplete(js_, &po);
        }
        closing_ = true; // the disconnection that follows is ours
        if (nc_) natsConnection_Close(nc_);
        if (js_) jsCtx_Destroy(js_);
        if (nc_) natsConnection_Destroy(nc_);
        js_ = nullptr;
        nc_ = nullptr;
    }

    void wake() {
        {
            std::lock_guard lock(m_);
            changed_ = true;
        }
        cv_.notify_one();
    }

    // libnats' thread: one call per published record.
    static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
        auto* self = static_cast<jetstream_replicator*>(closure);
        {
            std::lock_guard lock(self->m_);
            const char* v = nullptr;
            std::uint64_t offset = 0;
            if (natsMsgHeader_Get(msg, expected_last_header, &v) == NATS_OK && v)
                offset = std::strtoull(v, nullptr, 10) + 1;
            if (pa) {
                // Stored at its offset: this record, and no other writer's, is
                // there. The stream confirms the log only up to the first
                // offset not so acknowledged: a record of another writer there
                // makes the next one's expected sequence true, so an
                // acknowledgement past a refusal proves nothing before it.
                if (pa->Sequence == offset && offset == self->confirmed_ + 1)
                    self->confirmed_ = offset;
                else if (pa->Sequence == offset && offset > self->confirmed_)
                    self->stored_.insert(offset);
                while (!self->stored_.empty() && *self->stored_.begin() <= self->confirmed_ + 1) {
                    self->confirmed_ = std::max(self->confirmed_, *self->stored_.begin());
                    self->stored_.erase(self->stored_.begin());
                }
            } else if (pae) {
                // A record the stream already holds may fail harmlessly.
                if (offset > self->confirmed_ && !self->broken_) {
                    self->broken_ = true;
                    spdlog::warn("replication: offset {} not confirmed: {}{}", offset,
                                 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err),
                                 pae->ErrCode
                                     ? " (JetStream error " +
                                           std::to_string(static_cast<int>(pae->ErrCode)) + ")"
                                     : std::string());
                }
            }
            self->changed_ = true;
        }
        self->cv_.notify_one();
        natsMsg_Destroy(msg);
    }

    bool connected() const { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }

    // After an error or timeout: waits out what is in flight and asks the
    // stream where it is. Returns: its last sequence, or nothing if it cannot tell.
    std::optional<std::uint64_t> stream_last() {
        if (!connected()) return std::nullopt;
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = cfg_.timeout.count();
        (void)js_PublishAsyncComplete(js_, &po);
        jsStreamInfo* si = nullptr;
        jsErrCode jerr{};
        auto s = js_GetStreamInfo(&si, js_, cfg_.stream.c_str(), nullptr, &jerr);
        if (s != NATS_OK) {
            spdlog::warn("replication: stream {}: {}", cfg_.stream, nats_text(s));
            return std::nullopt;
        }
        auto last = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
        return last;
    }

    void fence() {
        fenced_ = true;
        spdlog::critical("replication: this broker lost the leadership lease of stream {} "
                         "(another broker holds it or wrote the stream): it publishes and "
                         "acknowledges nothing more; restart it as a standby on an empty store "
                         "(docs/replication.md, \"Failover\")",
                         cfg_.stream);
    }

    // A lease that lapsed while JetStream did not answer (an election among
    // its nodes can outlast a lease) is taken again only if nobody took it
    // meanwhile and the stream's last record is this log's: then no other
    // broker acknowledged anything. Anything else ends this broker's
    // leadership for good. Without the lock.
    enum class retake { taken, not_yet, lost };
    retake take_again(std::uint64_t head) {
        switch (lease_->reclaim()) {
        case lease::claim::other:
            return retake::lost;
        case lease::claim::unknown:
            lease_->forget();
            return retake::not_yet;
        case lease::claim::taken:
            break;
        }
        auto last = stream_last();
        std::optional<bool> ours = true;
        if (last && *last > 0 && *last <= head) ours = holds_ours(*last);
        if (last && *last <= head && ours && *ours) return retake::taken;
        // Another writer, or the stream cannot be read now: give the lease
        // back rather than hold it unverified.
        lease_->release();
        if (!last || !ours) return retake::not_yet;
        return retake::lost;
    }

    // Whether the stream's record at `seq` is the local record at that offset.
    // Returns: nothing if it cannot tell now.
    std::optional<bool> holds_ours(std::uint64_t seq) {
        natsMsg* m = nullptr;
        jsErrCode jerr{};
        auto s = js_GetMsg(&m, js_, cfg_.stream.c_str(), seq, nullptr, &jerr);
        if (s != NATS_OK) {
            spdlog::warn("replication: reading sequence {} of stream {}: {}", seq, cfg_.stream,
                         nats_text(s));
            return std::nullopt;
        }
        std::string_view theirs(natsMsg_GetData(m),
                                static_cast<std::size_t>(natsMsg_GetDataLength(m)));
        auto ours = st_.get(seq);
        bool same = ours && theirs == *ours;
        natsMsg_Destroy(m);
        return same;
    }

    // The sequences up to the stream's `last` whose record this broker has not
    // seen stored at its offset since the last confirmation: what it published
    // and was not acknowledged for, and the last one. Called with the lock held.
    std::vector<std::uint64_t> unproven(std::uint64_t last) const {
        std::vector<std::uint64_t> v;
        for (auto o = confirmed_ + 1; o <= std::min(sent_, last); ++o)
            if (!stored_.contains(o)) v.push_back(o);
        if (v.empty() || v.back() != last) v.push_back(last);
        return v;
    }

    // The first of `seqs` holding another writer's record: 0 if none; nothing
    // if it cannot tell now. Without the lock.
    std::optional<std::uint64_t> foreign_among(const std::vector<std::uint64_t>& seqs) {
        for (auto seq : seqs) {
            auto same = holds_ours(seq);
            if (!same) return std::nullopt;
            if (!*same) return seq;
        }
        return 0;
    }

    // Publishes what the stream lacks, up to the window. Called with `lock` held.
    void publish(std::unique_lock<std::mutex>& lock) {
        struct item {
            std::uint64_t offset;
            const stored_record* held; // in a queued batch, or null: read from the store
        };
        std::vector<item> todo;
        for (auto o = sent_ + 1; o <= head_ && o - confirmed_ <= window; ++o) {
            const stored_record* held = nullptr;
            for (const auto& b : batches_) {
                if (b.records.empty() || b.records.back().offset < o) continue;
                auto it = std::lower_bound(
                    b.records.begin(), b.records.end(), o,
                    [](const stored_record& r, std::uint64_t x) { return r.offset < x; });
                if (it != b.records.end() && it->offset == o) held = &*it;
                break;
            }
            todo.push_back({o, held});
        }
        if (todo.empty()) return;
        if (fenced_ || !lease_->valid()) return; // the batches wait, then are refused
        if (!connected()) {
            broken_ = true;
            return;
        }
        // Queued batches leave only on this thread: `held` stays valid unlocked.
        lock.unlock();
        std::uint64_t published = 0;
        std::string failure;
        std::string read;
        for (const auto& t : todo) {
            std::string_view bytes;
            if (t.held) {
                bytes = t.held->bytes();
            } else {
                auto v = st_.get(t.offset);
                if (!v) {
                    failure = "offset " + std::to_string(t.offset) + " is not in the local store";
                    break;
                }
                read = std::move(*v);
                bytes = read;
            }
            natsMsg* m = nullptr;
            auto id = record_id(bytes);
            auto expected = std::to_string(t.offset - 1);
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = cfg_.timeout.count();
            auto subject = subject_of(cfg_, bytes);
            auto s = natsMsg_Create(&m, subject.c_str(), nullptr, bytes.data(),
                                    static_cast<int>(bytes.size()));
            if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
            if (s == NATS_OK) s = natsMsgHeader_Set(m, expected_last_header, expected.c_str());
            if (s == NATS_OK) s = js_PublishMsgAsync(js_, &m, &po);
            if (s != NATS_OK) {
                natsMsg_Destroy(m); // null once libnats took it
                failure = "offset " + std::to_string(t.offset) + ": " + nats_text(s);
                break;
            }
            published = t.offset;
        }
        lock.lock();
        if (published) sent_ = std::max(sent_, published);
        if (!failure.empty()) {
            if (!broken_) spdlog::warn("replication: publishing {}", failure);
            broken_ = true;
        }
    }

    using clock = std::chrono::steady_clock;

    // The replication thread: keeps the lease, finds where the stream is after
    // an error, publishes, and releases in order the batches the stream
    // confirmed (or refuses those that waited too long).
    void run() {
        next_renewal_ = clock::now() + cfg_.lease / 4;
        std::unique_lock lock(m_);
        while (true) {
            if (!keep_lease(lock)) continue;
            if (broken_ && clock::now() >= next_resync_) resync(lock);
            if (!broken_) publish(lock);
            if (behind_ && !broken_ && confirmed_ >= head_) {
                behind_ = false;
                spdlog::info("replication: stream {} caught up at sequence {}", cfg_.stream,
                             confirmed_);
            }
            if (release_settled(lock)) continue;
            if (stopping_ && batches_.empty()) break;
            wait_for_change(lock);
        }
    }

    // Renews the lease when due, or takes a lapsed one again. Called with
    // `lock` held. Returns: false to go round at once (a renewal was refused:
    // the next turn's take_again tells a lapse from another broker's lease).
    bool keep_lease(std::unique_lock<std::mutex>& lock) {
        if (fenced_ || clock::now() < next_renewal_) return true;
        if (lapsed_) {
            retake_lapsed(lock);
            return true;
        }
        return renew(lock);
    }

    void retake_lapsed(std::unique_lock<std::mutex>& lock) {
        auto head = head_;
        lock.unlock();
        auto back = take_again(head);
        lock.lock();
        auto now = clock::now();
        next_renewal_ = now + cfg_.lease / 4;
        if (back == retake::taken) {
            lapsed_ = false;
            lease_unsure_ = false;
            // Renewed at once: the stream check may have used most of it.
            next_renewal_ = now;
            // Where the stream is, before anything more is published.
            broken_ = true;
            next_resync_ = now;
            spdlog::warn("replication: the lease of stream {} lapsed while JetStream did "
                         "not answer, and no other broker took it or wrote the stream: "
                         "this broker holds it again",
                         cfg_.stream);
        } else if (back == retake::lost) {
            fence();
        }
    }

    // Returns: false if the renewal was refused.
    bool renew(std::unique_lock<std::mutex>& lock) {
        lock.unlock();
        auto r = lease_->renew();
        lock.lock();
        auto now = clock::now();
        next_renewal_ = now + cfg_.lease / 4;
        if (r == lease::renewal::lost) {
            // Lapsed (JetStream electing after a node failure took longer
            // than the lease), or another broker's: take_again tells them
            // apart on the next turn.
            lease_->forget();
            lapsed_ = true;
            next_renewal_ = now;
            if (!lease_unsure_)
                spdlog::warn("replication: the lease of stream {} was not renewed in "
                             "time; publishing waits",
                             cfg_.stream);
            lease_unsure_ = true;
            return false;
        }
        if (r == lease::renewal::unknown && !lease_->valid()) {
            if (!lease_unsure_)
                spdlog::warn("replication: the lease of stream {} could not be renewed "
                             "in time; publishing waits until it is",
                             cfg_.stream);
            lease_unsure_ = true;
        } else if (r == lease::renewal::renewed && lease_unsure_) {
            lease_unsure_ = false;
            spdlog::info("replication: the lease of stream {} renewed", cfg_.stream);
        }
        return true;
    }

    // After an error or a timeout: asks the stream where it is, and goes on
    // from there if what it holds past its confirmations is this log's; asks
    // again later if it cannot tell. Called with `lock` held.
    void resync(std::unique_lock<std::mutex>& lock) {
        behind_ = true;
        lock.unlock();
        auto last = stream_last();
        lock.lock();
        auto asked = clock::now(); // a retry counts from the stream's answer
        if (last && *last > head_) {
            spdlog::error("replication: stream {} is ahead of the local log (sequence {}, "
                          "local head {}): another writer? refusing until resolved",
                          cfg_.stream, *last, head_);
            last.reset();
        }
        // The stream's records past what it confirmed must be ours: a record
        // another broker put at one of those sequences while ours failed is
        // not a confirmation, and neither is ours after it.
        if (last && *last > 0 && !diverged_) {
            auto todo = unproven(*last);
            lock.unlock();
            auto foreign = foreign_among(todo);
            lock.lock();
            if (!foreign)
                last.reset();
            else if (*foreign)
                diverge(lock, *foreign);
        }
        if (diverged_) last.reset();
        if (!last) {
            next_resync_ = asked + std::chrono::milliseconds(250);
            return;
        }
        confirmed_ = sent_ = *last;
        stored_.clear();
        broken_ = false;
        if (*last < head_)
            spdlog::info("replication: stream {} at sequence {}: publishing up to {}", cfg_.stream,
                         *last, head_);
    }

    void diverge(std::unique_lock<std::mutex>& lock, std::uint64_t foreign) {
        diverged_ = true;
        spdlog::critical("replication: stream {} holds another writer's record at sequence {}: "
                         "this broker's log has left the stream and it acknowledges nothing "
                         "more; it gives the leadership lease back (docs/replication.md, "
                         "\"Two writers\")",
                         cfg_.stream, foreign);
        // Refusing for good, it must not keep a standby from leading.
        fenced_ = true;
        lock.unlock();
        lease_->release();
        lock.lock();
    }

    // Releases, in order, the batches the stream confirmed, and refuses those
    // that waited too long. Called with `lock` held. Returns: whether it
    // released any.
    bool release_settled(std::unique_lock<std::mutex>& lock) {
        std::vector<completion> out;
        auto now = clock::now();
        while (!batches_.empty()) {
            auto& b = batches_.front();
            if (b.target > confirmed_) {
                if (now < b.deadline && !(stopping_ && now >= stop_deadline_)) break;
                // The stream may have lost what was in flight: ask it before going on.
                if (!broken_) next_resync_ = now;
                broken_ = true;
                refuse_unconfirmed(b);
            }
            for (auto& c : b.done)
                out.push_back(std::move(c));
            batches_.pop_front();
        }
        if (out.empty()) return false;
        lock.unlock();
        release_(out);
        lock.lock();
        return true;
    }

    void refuse_unconfirmed(batch& b) {
        for (auto& c : b.done) {
            if (c.failure != errc::ok) continue;
            c.failure = errc::store_failure;
            c.message = "stored locally at offset " + std::to_string(c.result.offset) +
                        " but not confirmed by JetStream stream " + cfg_.stream + " within " +
                        std::to_string(cfg_.timeout.count()) +
                        " ms: resend (the same id is stored once)";
        }
        spdlog::warn("replication: {} results up to offset {} refused: stream {} "
                     "confirmed only up to {}",
                     b.done.size(), b.target, cfg_.stream, confirmed_);
    }

    void wait_for_change(std::unique_lock<std::mutex>& lock) {
        auto wake = std::min(clock::now() + std::chrono::milliseconds(500), next_renewal_);
        if (!batches_.empty()) wake = std::min(wake, batches_.front().deadline);
        if (stopping_) wake = std::min(wake, stop_deadline_);
        if (broken_) wake = std::min(wake, next_resync_);
        cv_.wait_until(lock, wake, [&] { return changed_; });
        changed_ = false;
    }

    jetstream_config cfg_;
    const store& st_;
    std::function<void(std::vector<completion>&)> release_;
    natsConnection* nc_ = nullptr;
    jsCtx* js_ = nullptr;

    std::mutex m_;
    std::condition_variable cv_;
    bool changed_ = false;
    std::deque<batch> batches_;
    std::uint64_t confirmed_ = 0; // the stream holds every offset up to here
    std::uint64_t sent_ = 0;      // published, perhaps not yet confirmed, up to here
    std::uint64_t head_ = 0;      // the highest offset of the log handed over
    // Past `confirmed_`: offsets the stream acknowledged storing at that offset.
    std::set<std::uint64_t> stored_;
    bool broken_ = false;       // an error or a timeout: ask the stream where it is
    bool behind_ = false;       // catching up: say when it is done
    bool diverged_ = false;     // another writer's record in the stream: refuse for good
    bool fenced_ = false;       // the lease is lost: refuse for good
    bool lapsed_ = false;       // a renewal was refused: take it again, or fence
    bool lease_unsure_ = false; // a renewal failed and the lease is no longer surely ours
    std::unique_ptr<lease> lease_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point stop_deadline_;
    // The replication thread's own: when to renew the lease next, and when
    // to ask the stream again where it is.
    clock::time_point next_renewal_{};
    clock::time_point next_resync_{};
    std::thread thread_;
    std::atomic<bool> closing_{false};
};

// The standby's connection: no callbacks, reconnecting forever.
struct follower_session {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    natsSubscription* sub = nullptr;

    explicit follower_session(const jetstream_config& c) {
        natsOptions* o = nullptr;
        std::vector<const char*> urls;
        for (const auto& u : c.servers)
            urls.push_back(u.c_str());
        auto s = natsOptions_Create(&o);
        if (s == NATS_OK) s = natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size()));
        if (s == NATS_OK) s = natsOptions_SetName(o, "pingan-broker standby");
        if (s == NATS_OK) s = natsOptions_SetTimeout(o, c.timeout.count());
        if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
        if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
        if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
        if (o) natsOptions_Destroy(o);
        if (s != NATS_OK)
            throw error(errc::io_error, "standby: cannot reach JetStream at " +
                                            shown_urls(c.servers) + ": " + nats_text(s));
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = c.timeout.count();
        s = natsConnection_JetStream(&js, nc, &jo);
        if (s != NATS_OK) {
            natsConnection_Destroy(nc);
            throw error(errc::io_error, "standby: JetStream context: " + nats_text(s));
        }
    }
    ~follower_session() {
        if (sub) {
            (void)natsSubscription_Unsubscribe(sub);
            natsSubscription_Destroy(sub);
        }
        if (nc) natsConnection_Close(nc);
        if (js) jsCtx_Destroy(js);
        if (nc) natsConnection_Destroy(nc);
    }
    follower_session(const follower_session&) = delete;
    follower_session& operator=(const follower_session&) = delete;

    // The stream's last sequence; 0 when the stream does not exist yet.
    // Returns: nothing when JetStream cannot tell now.
    // Throws: pingan::error(bad_config) when the stream does not take `<subject>.>`.
    std::optional<std::uint64_t> last(const jetstream_config& c) {
        jsStreamInfo* si = nullptr;
        jsErrCode jerr{};
        auto s = js_GetStreamInfo(&si, js, c.stream.c_str(), nullptr, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return 0;
        if (s != NATS_OK) return std::nullopt;
        auto v = si->State.LastSeq;
        auto problem = subjects_problem(si, c);
        jsStreamInfo_Destroy(si);
        if (!problem.empty()) throw error(errc::bad_config, "standby: " + problem);
        return v;
    }

    // The stream's record at `seq`. Returns: nothing if it cannot be read.
    std::optional<std::string> get(const jetstream_config& c, std::uint64_t seq) {
        natsMsg* m = nullptr;
        jsErrCode jerr{};
        if (js_GetMsg(&m, js, c.stream.c_str(), seq, nullptr, &jerr) != NATS_OK)
            return std::nullopt;
        std::string v(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
        natsMsg_Destroy(m);
        return v;
    }
};

} // namespace

bool follow_stream(const jetstream_config& c, store& st, processor* p,
                   const std::atomic<bool>& stop) {
    using clock = std::chrono::steady_clock;
    follower_session ses(c);
    lease ls(ses.js, c);
    auto head = st.committed_head();

    // The local store must be a prefix of the stream: the same record at its head.
    if (head > 0) {
        std::optional<std::uint64_t> last;
        while (!(last = ses.last(c)) && !stop)
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
        if (stop) return false;
        if (*last < head)
            throw error(errc::bad_config,
                        "standby: the local store (head " + std::to_string(head) +
                            ") is ahead of stream " + c.stream + " (last sequence " +
                            std::to_string(*last) +
                            "): it holds records the leader never confirmed; start the standby "
                            "on an empty store");
        auto theirs = ses.get(c, head);
        if (!theirs || *theirs != st.get(head).value_or(std::string()))
            throw error(errc::bad_config, "standby: the local record at offset " +
                                              std::to_string(head) + " is not stream " + c.stream +
                                              "'s; start the standby on an empty store");
    }

    // An ordered consumer from the next offset, of every record's subject:
    // JetStream redelivers from where it was after a reconnect or a lost
    // message, in stream order.
    auto every = stream_subjects(c.subject);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = head + 1;
    spdlog::info("standby: following stream {} on {} from offset {}; {} holds the lease", c.stream,
                 shown_urls(c.servers), head + 1, ls.holder().value_or("?"));

    std::vector<stored_record> batch;
    batch_output out;
    auto next_lease_check = clock::now();
    auto next_report = clock::now() + std::chrono::seconds(10);
    while (!stop) {
        if (!ses.sub) {
            jsErrCode jerr{};
            auto s = js_SubscribeSync(&ses.sub, ses.js, every.c_str(), nullptr, &so, &jerr);
            if (s != NATS_OK) {
                ses.sub = nullptr;
                (void)ses.last(c); // throws if the stream is one of another layout
                // No stream yet (a leader that has not started), or JetStream away.
                std::this_thread::sleep_for(std::chrono::milliseconds(250));
            }
        }
        // Up to a few thousand records at once, one transaction.
        while (ses.sub && batch.size() < 4096) {
            natsMsg* m = nullptr;
            auto s = natsSubscription_NextMsg(&m, ses.sub, batch.empty() ? 100 : 0);
            if (s != NATS_OK) break;
            jsMsgMetaData* meta = nullptr;
            if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
                std::string value(32, '\0');
                value.append(natsMsg_GetData(m),
                             static_cast<std::size_t>(natsMsg_GetDataLength(m)));
                batch.push_back({meta->Sequence.Stream, std::move(value)});
                jsMsgMetaData_Destroy(meta);
            }
            natsMsg_Destroy(m);
        }
        if (!batch.empty()) {
            // A record this store already holds (redelivered) is skipped.
            std::erase_if(batch, [&](const stored_record& r) { return r.offset <= head; });
            out.stored.clear();
            st.follow(batch, p, out); // throws on a gap: the stream is the arbiter
            st.sync();
            head = st.committed_head();
            batch.clear();
        }
        auto now = clock::now();
        if (now >= next_report) {
            spdlog::info("standby: at offset {} of stream {}", head, c.stream);
            next_report = now + std::chrono::seconds(10);
        }
        if (now < next_lease_check) continue;
        next_lease_check = now + c.lease / 4;
        auto who = ls.holder();
        if (!who || !who->empty()) continue;
        // Nobody leads: take over once every record of the stream is applied.
        auto last = ses.last(c);
        if (!last) continue;
        if (*last > head) {
            spdlog::info("standby: the lease of stream {} lapsed; applying up to {} before "
                         "taking over (at {})",
                         c.stream, *last, head);
            continue;
        }
        spdlog::info("standby: the lease of stream {} lapsed and every record up to {} is "
                     "applied: taking over",
                     c.stream, head);
        return true;
    }
    return false;
}

std::unique_ptr<replicator>
make_jetstream_replicator(const jetstream_config& c, const store& st,
                          std::function<void(std::vector<completion>&)> release) {
    return std::make_unique<jetstream_replicator>(c, st, std::move(release));
}

} // namespace pingan
