// The store contract (store.hpp) on LMDB.
//
// Sub-databases:
//   events      u64be offset -> 32-byte chain hash + event bytes   (append only)
//   ids         16-byte event id -> u64be offset                   (deduplication)
//   districts   district code + u64be first offset -> u64be offsets: one record
//               per district per transaction, listing that district's offsets
//   schools     school id -> its district code (a school's replay scans its district)
//   times       u64be received_at µs -> u64be first offset stored at that time
//   counts      event type -> u64 count
//   meta        "format" -> "2" (store_format); "chain" -> u64be head offset + head hash;
//               "received" -> u64be received_at µs of the head record; "base" ->
//               u64be offset + chain hash there, when the records up to it were
//               archived and dropped (pingan archive --drop)
//   incidents, timers, engine: the processor's tables (processor.hpp)
//
// A writable store holds an exclusive flock on `writer.lock` in its directory
// for its whole life (see dir_lock), so a second writer on the same directory
// fails at open instead of interleaving its commits with ours. LMDB's own
// locks do not prevent that: each process would assign the same offsets.
//
// Fault points (store_faults.hpp) sit in fault(), put() and the commit in
// run_txn: the only places a test reaches into the store.
//
// One writer thread calls append/fire_timers; any thread may read. A reader
// holds `resize_` shared for the life of its short transaction so that the
// writer can grow the map (which LMDB allows only with no transaction open in
// this process) by taking it exclusively.
#include "broker/store/store.hpp"

#include "common/key_ring.hpp"
#include "common/lmdb.hpp"
#include "common/privacy.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace pingan {

namespace lm = lmdb;

chain_hash record_digest(std::string_view record) {
    chain_hash h;
    crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(record.data()),
                       record.size(), nullptr, 0);
    return h;
}

chain_hash chain_step(const chain_hash& prev, std::uint64_t offset, std::int64_t received_us,
                      const chain_hash& digest) {
    // One BLAKE2b block: 32 + 8 + 8 + 32 bytes.
    std::array<unsigned char, 80> in;
    std::memcpy(in.data(), prev.data(), 32);
    auto off = lm::be64(offset);
    std::memcpy(in.data() + 32, off.data(), 8);
    auto rec = lm::be64(static_cast<std::uint64_t>(received_us));
    std::memcpy(in.data() + 40, rec.data(), 8);
    std::memcpy(in.data() + 48, digest.data(), 32);
    chain_hash h;
    crypto_generichash(h.data(), h.size(), in.data(), in.size(), nullptr, 0);
    return h;
}

chain_hash chain_next(const chain_hash& prev, std::uint64_t offset, std::string_view record) {
    auto pos = received_at_position(record);
    if (!pos) return chain_step(prev, offset, 0, record_digest(record));
    std::int64_t received_us;
    std::memcpy(&received_us, record.data() + *pos, 8);
    std::string zeroed(record);
    patch_broker_fields(zeroed.data(), *pos, 0, timestamp{});
    return chain_step(prev, offset, received_us, record_digest(zeroed));
}

void store_faults::reach(point p) {
    auto& s = slot(p);
    ++s.total;
    auto due = s.fail_on.load();
    if (due == 0 || ++s.reached_since_armed != due) return;
    s.fail_on = 0;
    switch (p) {
    case point::put:
        throw lm::lmdb_error("mdb_put", EIO);
    case point::commit:
        throw lm::lmdb_error("mdb_txn_commit", EIO);
    case point::apply:
        throw std::runtime_error("injected fault: the processor failed");
    case point::event_read:
        throw lm::lmdb_error("mdb_get", EIO);
    }
}

namespace {

// The writer lock of a store directory: flock(LOCK_EX) on <dir>/writer.lock,
// held until the process ends or the store is closed. The file holds the
// holder's pid, for the message the next writer gets.
class dir_lock {
  public:
    dir_lock() = default;
    explicit dir_lock(const std::string& dir) {
        ::mkdir(dir.c_str(), 0750);
        auto path = dir + "/writer.lock";
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (fd_ < 0)
            throw error(errc::io_error, "cannot open " + path + ": " + std::strerror(errno));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char buf[32] = {};
            auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
            ::close(fd_);
            fd_ = -1;
            if (e != EWOULDBLOCK)
                throw error(errc::io_error, "cannot lock " + path + ": " + std::strerror(e));
            std::string pid(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
                pid.pop_back();
            throw error(errc::io_error, "data directory " + dir + " is in use by another writer" +
                                            (pid.empty() ? std::string() : " (pid " + pid + ")") +
                                            ": only one broker may open a data directory");
        }
        auto pid = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd_, 0) != 0 ||
            ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
            // The lock holds without the pid; only the message would lack it.
        }
    }
    dir_lock(const dir_lock&) = delete;
    dir_lock& operator=(const dir_lock&) = delete;
    ~dir_lock() {
        if (fd_ >= 0) ::close(fd_); // releases the flock
    }

  private:
    int fd_ = -1;
};

} // namespace

struct store::impl {
    store_options opts;
    std::unique_ptr<dir_lock> lock; // writable stores only; taken before LMDB opens
    lm::env env;
    MDB_dbi events{}, ids{}, districts{}, schools{}, times{}, counts{}, meta{};
    std::unordered_map<std::string, std::string> school_district; // mirror of `schools`
    std::unordered_map<std::string, MDB_dbi> tables;
    mutable std::shared_mutex resize;

    // Writer state, mirrored in `meta`; restored when a transaction aborts.
    std::atomic<std::uint64_t> head{0};
    std::atomic<std::uint64_t> durable{0}; // <= head; head once synced
    chain_hash hash{};
    timestamp last_received{};
    // The processor's cache may hold state of an aborted transaction: reload
    // before the next one.
    bool processor_stale = false;

    void fault(store_faults::point p) {
        if (opts.faults) opts.faults->reach(p);
    }

    explicit impl(const store_options& o) : opts(o) {
        if (sodium_init() < 0) throw error(errc::internal, "libsodium failed to initialise");
        if (!o.read_only) lock = std::make_unique<dir_lock>(o.path);
        unsigned flags = MDB_NOTLS | (o.read_only ? MDB_RDONLY : 0);
        if (o.defer_sync && !o.read_only) flags |= MDB_NOMETASYNC;
        env = lm::env(o.path, 16, o.initial_map_size, flags, 126);
        // A reader slot left by a process killed mid-read would pin old pages forever.
        env.reader_check();
        // The file may have grown beyond the configured size in an earlier run.
        env.set_map_size(0);
        lm::txn t(env, o.read_only ? MDB_RDONLY : 0);
        unsigned create = o.read_only ? 0 : MDB_CREATE;
        auto open = [&](const char* name, unsigned flags) {
            try {
                return lm::open_dbi(t, name, flags | create);
            } catch (const lm::lmdb_error& x) {
                if (x.rc() == MDB_NOTFOUND)
                    throw error(errc::not_found, o.path + " is not a Pingan store (no " +
                                                     std::string(name) + " database)");
                throw;
            }
        };
        events = open("events", 0);
        ids = open("ids", 0);
        schools = open("schools", 0);
        districts = open("districts", 0);
        times = open("times", 0);
        counts = open("counts", 0);
        meta = open("meta", 0);
        for (const auto& name : o.processor_tables) {
            try {
                tables[name] = lm::open_dbi(t, name.c_str(), create);
            } catch (const lm::lmdb_error& x) {
                if (x.rc() != MDB_NOTFOUND) throw; // read-only and never created: absent
            }
        }
        {
            lm::cursor c(t, schools);
            std::string_view k, v;
            for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT))
                school_district.emplace(k, v);
        }
        if (auto f = lm::get(t, meta, "format")) {
            if (*f != store_format)
                throw error(errc::unsupported_version,
                            o.path + " holds a store of format " + std::string(*f) +
                                "; this version reads format " + std::string(store_format) +
                                " only (the chain hashes a digest of each record and the "
                                "district index has one record per transaction); nothing in it "
                                "was changed: run the version that wrote it (docs/operations.md, "
                                "Upgrading)");
        } else if (!o.read_only) {
            lm::put(t, meta, "format", store_format);
        }
        if (auto c = lm::get(t, meta, "chain"); c && c->size() == 40) {
            head = lm::from_be64(c->substr(0, 8));
            std::memcpy(hash.data(), c->data() + 8, 32);
        }
        if (auto r = lm::get(t, meta, "received"); r && r->size() == 8) {
            // received_at never goes backwards, even if the clock does.
            last_received = from_us(static_cast<std::int64_t>(lm::from_be64(*r)));
        } else if (head && !o.read_only) {
            // A store written before "received" was kept: read the head record.
            fault(store_faults::point::event_read);
            auto rec = lm::get(t, events, lm::be64(head));
            event e;
            if (!rec || rec->size() < 32 || decode(rec->substr(32), e))
                throw error(errc::store_failure,
                            "head record " + std::to_string(head) + " is missing or unreadable");
            last_received = e.received_at;
        }
        t.commit();
        durable = head.load();
    }

    ~impl() {
        // The last commits' meta page, when deferred.
        if (opts.defer_sync && !opts.read_only && head != durable) {
            try {
                env.sync(true);
            } catch (...) {
            }
        }
    }

    // A read transaction that survives the map being resized by another process.
    lm::txn read_txn() const {
        try {
            return lm::txn(env, MDB_RDONLY);
        } catch (const lm::lmdb_error& x) {
            if (x.rc() != MDB_MAP_RESIZED) throw;
            const_cast<lm::env&>(env).set_map_size(0);
            return lm::txn(env, MDB_RDONLY);
        }
    }

    MDB_dbi table(std::string_view name) const {
        auto it = tables.find(std::string(name));
        if (it == tables.end())
            throw error(errc::internal, "no processor table \"" + std::string(name) + "\"");
        return it->second;
    }

    void grow() {
        std::unique_lock lock(resize);
        auto size = env.map_size() * 2;
        env.set_map_size(size);
    }
};

namespace {

// Every write of a write transaction goes through here (a fault point).
bool put(store::impl& s, const lm::txn& t, MDB_dbi d, std::string_view key, std::string_view value,
         unsigned flags = 0, std::string_view* existing = nullptr) {
    s.fault(store_faults::point::put);
    return lm::put(t, d, key, value, flags, existing);
}

// The processor's view of the tables inside the current write transaction.
class txn_state final : public state_store {
  public:
    txn_state(store::impl& s, lm::txn& t) : s_(s), t_(t) {}
    std::optional<std::string> get(std::string_view table, std::string_view key) override {
        auto v = lm::get(t_, s_.table(table), key);
        return v ? std::optional<std::string>(*v) : std::nullopt;
    }
    void put(std::string_view table, std::string_view key, std::string_view value) override {
        pingan::put(s_, t_, s_.table(table), key, value);
    }
    bool del(std::string_view table, std::string_view key) override {
        return lm::del(t_, s_.table(table), key);
    }
    void scan(std::string_view table, std::string_view from,
              const std::function<bool(std::string_view, std::string_view)>& f) override {
        lm::cursor c(t_, s_.table(table));
        std::string_view k, v;
        bool ok = from.empty() ? c.get(k, v, MDB_FIRST) : c.seek(from, k, v);
        while (ok && f(k, v))
            ok = c.get(k, v, MDB_NEXT);
    }

  private:
    store::impl& s_;
    lm::txn& t_;
};

// One write transaction's work: appends events, maintains the indexes, and
// runs the processor on every stored event.
class appender {
  public:
    appender(store::impl& s, lm::txn& t, timestamp now, processor* p, batch_output& out)
        : s_(s), t_(t), p_(p), out_(out), state_(s, t) {
        received_ = std::max(now, s.last_received);
        head_ = s.head;
        hash_ = s.hash;
    }

    // Returns: the outcome for this id.
    append_result add(prepared_event& p) {
        auto r = put_new(p);
        if (r.what == wire::outcome::stored && p_) derive(p.ev);
        return r;
    }

    // A record another broker's writer stored, with its bytes as they are: the
    // chain, the indexes and the processor's state follow exactly as that
    // writer made its own (its processor also saw every record it stored).
    void follow(const stored_record& r) {
        auto bytes = r.bytes();
        auto where = "record at offset " + std::to_string(r.offset);
        if (r.offset != head_ + 1)
            throw error(errc::bad_config, where + " does not follow the head " +
                                              std::to_string(head_) + ": a gap or a reordering");
        prepared_event p;
        if (auto pr = decode(bytes, p.ev))
            throw error(errc::bad_config, where + " does not decode: " + pr.text());
        if (p.ev.offset != r.offset)
            throw error(errc::bad_config,
                        where + " names offset " + std::to_string(p.ev.offset) + " in its bytes");
        if (p.ev.received_at < received_)
            throw error(errc::bad_config, where + " was received before its predecessor");
        std::string_view existing;
        auto id = std::string_view(reinterpret_cast<const char*>(p.ev.id.bytes.data()), 16);
        if (!put(s_, t_, s_.ids, id, lm::be64(r.offset), MDB_NOOVERWRITE, &existing))
            throw error(errc::bad_config, where + " repeats the id " + p.ev.id.str() +
                                              " stored at offset " +
                                              std::to_string(lm::from_be64(existing)));
        p.received_pos = received_at_position(p.ev);
        p.value = r.value;
        std::string zeroed(bytes);
        patch_broker_fields(zeroed.data(), p.received_pos, 0, timestamp{});
        p.digest = record_digest(zeroed);
        // One time-index entry per distinct received_at, as the writer that
        // stored them made one per transaction.
        if (p.ev.received_at > received_)
            put(s_, t_, s_.times, lm::be64(static_cast<std::uint64_t>(to_us(p.ev.received_at))),
                lm::be64(r.offset), MDB_APPEND);
        received_ = p.ev.received_at;
        followed_ = true;
        write(p);
        if (p_) {
            std::vector<event> derived; // already in the log, right after this record
            s_.fault(store_faults::point::apply);
            p_->apply(p.ev, state_, derived);
        }
    }

    void timers(timestamp now) {
        std::vector<event> fired;
        p_->fire(now, state_, fired);
        for (auto& e : fired) {
            auto p = prepare(std::move(e));
            add(p);
        }
    }

    void finish() {
        // One time-index entry per distinct received_at: the first offset stored then.
        if (first_ && received_ > s_.last_received && !followed_)
            put(s_, t_, s_.times, lm::be64(static_cast<std::uint64_t>(to_us(received_))),
                lm::be64(first_), MDB_APPEND);
        for (auto& [type, n] : counts_) {
            std::uint64_t c = 0;
            if (auto v = lm::get(t_, s_.counts, type); v && v->size() == 8)
                std::memcpy(&c, v->data(), 8);
            c += n;
            put(s_, t_, s_.counts, type,
                std::string_view(reinterpret_cast<const char*>(&c), sizeof c));
        }
        // One district-index record per district the transaction touched.
        for (auto& [district, offsets] : district_runs_) {
            put(s_, t_, s_.districts, district + '\0' + offsets.substr(0, 8), offsets);
        }
        std::string chain = lm::be64(head_);
        chain.append(reinterpret_cast<const char*>(hash_.data()), hash_.size());
        put(s_, t_, s_.meta, "chain", chain);
        // So that opening the store reads no record to learn the last received_at.
        if (first_)
            put(s_, t_, s_.meta, "received",
                lm::be64(static_cast<std::uint64_t>(to_us(received_))));
    }

    // Publishes the new head to the store after the commit succeeded.
    void committed() {
        // This commit's sync carried the previous commit's meta page.
        s_.durable = s_.opts.defer_sync ? s_.head.load() : head_;
        s_.head = head_;
        s_.hash = hash_;
        s_.school_district.merge(new_schools_);
        if (first_) s_.last_received = received_;
    }

  private:
    void write(prepared_event& p) {
        const auto& e = p.ev;
        patch_broker_fields(p.value.data() + 32, p.received_pos, e.offset, e.received_at);
        hash_ = chain_step(hash_, e.offset, to_us(e.received_at), p.digest);
        std::memcpy(p.value.data(), hash_.data(), 32);
        auto key = lm::be64(e.offset);
        put(s_, t_, s_.events, key, p.value, MDB_APPEND);
        if (!e.district.empty()) district_run(e.district).append(key);
        // No per-school index: with a thousand schools it would dirty a page per
        // school per commit. A school's events are found through its district.
        if (!e.school.empty() && !s_.school_district.count(e.school) &&
            !new_schools_.count(e.school)) {
            put(s_, t_, s_.schools, e.school, e.district);
            new_schools_.emplace(e.school, e.district);
        }
        head_ = e.offset;
        if (!first_) first_ = e.offset;
        ++counts_[e.type()]; // type names are static strings: no copy
        out_.stored.push_back({e.offset, std::move(p.value)});
    }

    // Stores `p` unless its id is already stored.
    append_result put_new(prepared_event& p) {
        std::string_view existing;
        auto off = head_ + 1;
        auto id = std::string_view(reinterpret_cast<const char*>(p.ev.id.bytes.data()), 16);
        if (!put(s_, t_, s_.ids, id, lm::be64(off), MDB_NOOVERWRITE, &existing))
            return {wire::outcome::duplicate, lm::from_be64(existing)};
        // Minors' data is sealed before the record is made, so the chain hashes
        // the ciphertext and verifies without keys (common/key_ring.hpp).
        if (s_.opts.keys && carries_minors_details(p.ev.type()) &&
            s_.opts.keys->seal(p.ev, received_))
            p = prepare(std::move(p.ev));
        p.ev.offset = off;
        p.ev.received_at = received_;
        write(p);
        return {wire::outcome::stored, off};
    }

    // Derived events are stored right after their cause and may derive more,
    // to a bounded depth so that a rule loop cannot run away. A derived id
    // already stored (its cause was replayed) is not stored again.
    void derive(const event& cause, int depth = 0) {
        std::vector<event> derived;
        s_.fault(store_faults::point::apply);
        p_->apply(cause, state_, derived);
        for (auto& d : derived) {
            auto p = prepare(std::move(d));
            if (put_new(p).what == wire::outcome::stored && depth < 8) derive(p.ev, depth + 1);
        }
    }

    // The offsets of `district` stored by this transaction (u64be each).
    std::string& district_run(const std::string& district) {
        for (auto& [d, offsets] : district_runs_)
            if (d == district) return offsets;
        return district_runs_.emplace_back(district, std::string()).second;
    }

    store::impl& s_;
    lm::txn& t_;
    processor* p_;
    batch_output& out_;
    txn_state state_;
    timestamp received_;
    std::uint64_t head_ = 0;
    std::uint64_t first_ = 0;
    bool followed_ = false; // follow(): the time index is written as records come
    chain_hash hash_;
    std::unordered_map<std::string_view, std::uint64_t> counts_;
    std::unordered_map<std::string, std::string> new_schools_;
    std::vector<std::pair<std::string, std::string>> district_runs_; // a city has a dozen
};

// Re-reads the processor's state from the committed tables, dropping whatever
// it cached from an aborted transaction.
// Throws: pingan::error(store_failure) if it cannot; the processor stays
// marked stale and the next transaction tries again first.
void reload_processor(store::impl& s, processor* p) {
    if (!p) return;
    s.processor_stale = true;
    try {
        lm::txn t(s.env);
        txn_state st(s, t);
        p->reload(st);
        t.abort(); // reload only reads
    } catch (const std::exception& x) {
        throw error(errc::store_failure,
                    std::string("the processor could not reload its state: ") + x.what());
    }
    s.processor_stale = false;
}

// Runs one write transaction. On any failure (LMDB, the processor, anything
// else) nothing of it remains, the processor re-reads its state, and the
// failure is rethrown: an LMDB error as pingan::error(store_failure), others as
// they were. A full map is grown and the transaction retried.
template <class F, class R = void (*)()>
void run_txn(
    store::impl& s, timestamp now, processor* p, batch_output& out, F&& body,
    R&& before_retry = [] {}) {
    if (s.processor_stale) reload_processor(s, p);
    for (int attempt = 0;; ++attempt) {
        auto results = out.results.size();
        auto stored = out.stored.size();
        auto roll_back = [&] {
            // The transaction is gone (aborted as `t` left scope).
            out.results.resize(results);
            out.stored.resize(stored);
            reload_processor(s, p);
        };
        try {
            lm::txn t(s.env);
            appender a(s, t, now, p, out);
            body(a);
            a.finish();
            s.fault(store_faults::point::commit);
            t.commit();
            a.committed();
            return;
        } catch (const lm::lmdb_error& x) {
            roll_back();
            if (x.rc() == MDB_MAP_FULL && attempt < 8) {
                s.grow();
                before_retry();
                continue;
            }
            throw error(errc::store_failure, x.what());
        } catch (...) {
            roll_back();
            throw;
        }
    }
}

} // namespace

store::store(const store_options& o) : impl_(std::make_unique<impl>(o)) {}
store::~store() = default;

prepared_event prepare(event e) {
    prepared_event p;
    p.received_pos = received_at_position(e);
    p.value.reserve(320);
    p.value.assign(32, '\0');
    encode(e, p.value);
    // The digest covers the record with the broker's fields zero; the writer fills them in.
    patch_broker_fields(p.value.data() + 32, p.received_pos, 0, timestamp{});
    p.digest = record_digest(std::string_view(p.value).substr(32));
    p.ev = std::move(e);
    return p;
}

void store::append(std::span<prepared_event> events, timestamp now, processor* p,
                   batch_output& out) {
    run_txn(
        *impl_, now, p, out,
        [&](appender& a) {
            for (auto& e : events)
                out.results.push_back(a.add(e));
        },
        [&] {
            // Stored bytes moved to `out` went with the failed transaction: make them again.
            for (auto& e : events)
                if (e.value.size() < 32) e = prepare(std::move(e.ev));
        });
}

void store::append(std::span<event> events, timestamp now, processor* p, batch_output& out) {
    std::vector<prepared_event> prepared;
    prepared.reserve(events.size());
    for (auto& e : events)
        prepared.push_back(prepare(e));
    append(prepared, now, p, out);
    for (std::size_t i = 0; i < events.size(); ++i) {
        events[i].offset = prepared[i].ev.offset;
        events[i].received_at = prepared[i].ev.received_at;
    }
}

void store::follow(std::span<const stored_record> records, processor* p, batch_output& out) {
    if (records.empty()) return;
    run_txn(*impl_, timestamp{}, p, out, [&](appender& a) {
        for (const auto& r : records)
            a.follow(r);
    });
}

void store::fire_timers(timestamp now, processor& p, batch_output& out) {
    run_txn(*impl_, now, &p, out, [&](appender& a) { a.timers(now); });
}

void store::open_processor(processor& p) {
    lm::txn t(impl_->env);
    txn_state st(*impl_, t);
    p.open(st);
    t.commit();
    impl_->processor_stale = false;
}

std::uint64_t store::head() const {
    return impl_->durable.load();
}

std::uint64_t store::committed_head() const {
    return impl_->head.load();
}

void store::sync() {
    auto& s = *impl_;
    if (!s.opts.defer_sync || s.durable == s.head) return;
    try {
        s.env.sync(true);
    } catch (const lm::lmdb_error& x) {
        throw error(errc::store_failure, x.what());
    }
    s.durable = s.head.load();
}

std::optional<std::string> store::get(std::uint64_t offset) const {
    std::shared_lock lock(impl_->resize);
    auto t = impl_->read_txn();
    auto v = lm::get(t, impl_->events, lm::be64(offset));
    if (!v || v->size() < 32) return std::nullopt;
    return std::string(v->substr(32));
}

std::optional<chain_hash> store::hash_at(std::uint64_t offset) const {
    std::shared_lock lock(impl_->resize);
    auto t = impl_->read_txn();
    auto v = lm::get(t, impl_->events, lm::be64(offset));
    if (!v || v->size() < 32) return std::nullopt;
    chain_hash h;
    std::memcpy(h.data(), v->data(), 32);
    return h;
}

std::optional<std::uint64_t> store::find(const event_id& id) const {
    std::shared_lock lock(impl_->resize);
    auto t = impl_->read_txn();
    auto v = lm::get(t, impl_->ids,
                     std::string_view(reinterpret_cast<const char*>(id.bytes.data()), 16));
    if (!v) return std::nullopt;
    return lm::from_be64(*v);
}

std::pair<std::uint64_t, std::uint64_t> store::range(const scan_filter& f) const {
    auto& s = *impl_;
    std::uint64_t head = s.durable.load();
    std::uint64_t from = std::max<std::uint64_t>(f.from, 1);
    std::uint64_t to = f.to ? std::min(f.to, head) : head;
    if (f.from_time || f.to_time) {
        std::shared_lock lock(s.resize);
        auto t = s.read_txn();
        lm::cursor c(t, s.times);
        std::string_view k, v;
        auto key_of = [](timestamp ts) {
            return lm::be64(static_cast<std::uint64_t>(std::max<std::int64_t>(0, to_us(ts))));
        };
        if (f.from_time)
            from = std::max(from, c.seek(key_of(*f.from_time), k, v) ? lm::from_be64(v) : head + 1);
        if (f.to_time && c.seek(key_of(*f.to_time + micros{1}), k, v))
            to = std::min(to, lm::from_be64(v) - 1);
    }
    return {from, to};
}

std::uint64_t store::scan(const scan_filter& f, std::size_t max,
                          const std::function<bool(std::uint64_t, std::string_view)>& visit) const {
    auto& s = *impl_;
    constexpr std::size_t chunk = 4096; // records per read transaction
    auto [from, to] = range(f);
    std::string district = f.district;
    if (!f.school.empty()) {
        std::shared_lock lock(s.resize);
        auto t = s.read_txn();
        auto d = lm::get(t, s.schools, f.school);
        if (!d || (!district.empty() && *d != district)) return to + 1; // no such events
        district = *d;
    }
    const std::string* index_key = district.empty() ? nullptr : &district;
    std::size_t sent = 0;
    std::uint64_t next = from;
    bool stop = false;
    while (!stop && next <= to && sent < max) {
        std::shared_lock lock(s.resize);
        auto t = s.read_txn();
        std::size_t examined = 0;
        auto consider = [&](std::uint64_t off, std::string_view value) {
            next = off + 1;
            ++examined;
            if (value.size() < 32) return true;
            auto rec = value.substr(32);
            event_head h;
            if (!peek(rec, h)) return true;
            if (!f.type_prefix.empty() && !h.type.starts_with(f.type_prefix)) return true;
            if (!f.school.empty() && h.school != f.school) return true;
            if (!f.district.empty() && h.district != f.district) return true;
            ++sent;
            if (!visit(off, rec)) stop = true;
            return !stop && sent < max;
        };
        if (index_key) {
            // The district's records, one per transaction: start at the one
            // holding `next`, which may begin before it.
            std::string prefix = *index_key + '\0';
            lm::cursor c(t, s.districts);
            std::string_view k, v;
            auto seek_key = prefix + lm::be64(next);
            bool ok = c.seek(seek_key, k, v);
            if (!ok || k != seek_key) {
                bool back = ok ? c.get(k, v, MDB_PREV) : c.get(k, v, MDB_LAST);
                ok = back && k.starts_with(prefix) ? true : c.seek(seek_key, k, v);
            }
            bool paused = false;   // the chunk is full or the visitor stopped
            bool finished = false; // the index ended or passed `to`
            while (!paused && !finished) {
                if (!ok || !k.starts_with(prefix)) {
                    finished = true;
                    break;
                }
                for (std::size_t i = 0; !paused && !finished && i + 8 <= v.size(); i += 8) {
                    auto key = v.substr(i, 8);
                    auto off = lm::from_be64(key);
                    if (off < next) continue;
                    if (off > to)
                        finished = true;
                    else if (examined >= chunk)
                        paused = true;
                    else if (auto rec = lm::get(t, s.events, key); rec && !consider(off, *rec))
                        paused = true;
                }
                if (!paused && !finished) ok = c.get(k, v, MDB_NEXT);
            }
            if (finished) {
                next = to + 1;
                stop = true;
            }
        } else {
            lm::cursor c(t, s.events);
            std::string_view k, v;
            bool ok = c.seek(lm::be64(next), k, v);
            while (ok && examined < chunk) {
                auto off = lm::from_be64(k);
                if (off > to) {
                    next = to + 1;
                    break;
                }
                if (!consider(off, v)) break;
                ok = c.get(k, v, MDB_NEXT);
            }
            if (!ok) next = std::max(next, to + 1);
        }
    }
    return next;
}

store_stats store::stats() const {
    auto& s = *impl_;
    store_stats out;
    std::shared_lock lock(s.resize);
    auto t = s.read_txn();
    out.events = lm::stat(t, s.events).ms_entries;
    if (auto c = lm::get(t, s.meta, "chain"); c && c->size() == 40)
        out.head = lm::from_be64(c->substr(0, 8));
    lm::cursor c(t, s.counts);
    std::string_view k, v;
    for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT)) {
        std::uint64_t n = 0;
        if (v.size() == 8) std::memcpy(&n, v.data(), 8);
        out.by_type[std::string(k)] = n;
    }
    struct ::stat st;
    if (::stat((s.opts.path + "/data.mdb").c_str(), &st) == 0)
        out.file_bytes = static_cast<std::uint64_t>(st.st_blocks) * 512;
    out.map_bytes = s.env.map_size();
    return out;
}

std::string hex(const chain_hash& h) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (auto b : h) {
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    return s;
}

verify_report store::verify() const {
    auto& s = *impl_;
    verify_report r;
    chain_hash h{};
    std::uint64_t expect = 1;
    {
        // Records up to meta "base" were archived and dropped (pingan archive
        // --drop): the chain continues from the hash recorded there.
        std::shared_lock lock(s.resize);
        auto t = s.read_txn();
        if (auto b = lm::get(t, s.meta, "base"); b && b->size() == 40) {
            expect = lm::from_be64(b->substr(0, 8)) + 1;
            std::memcpy(h.data(), b->data() + 8, 32);
            r.head_hash = h;
        }
    }
    bool first = true;
    bool done = false;
    while (!done) {
        std::shared_lock lock(s.resize);
        auto t = s.read_txn();
        lm::cursor c(t, s.events);
        std::string_view k, v;
        bool ok = first ? c.get(k, v, MDB_FIRST) : c.seek(lm::be64(expect), k, v);
        first = false;
        std::size_t n = 0;
        for (; ok && n < 65536; ok = c.get(k, v, MDB_NEXT), ++n) {
            auto off = lm::from_be64(k);
            if (k.size() != 8 || off != expect) {
                r.ok = false;
                r.first_bad = expect;
                r.problem = "offset " + std::to_string(expect) + " is missing (next is " +
                            std::to_string(off) + ")";
                return r;
            }
            if (v.size() < 32) {
                r.ok = false;
                r.first_bad = off;
                r.problem = "record " + std::to_string(off) + " is truncated";
                return r;
            }
            h = chain_next(h, off, v.substr(32));
            if (std::memcmp(h.data(), v.data(), 32) != 0) {
                r.ok = false;
                r.first_bad = off;
                r.problem = "record " + std::to_string(off) + " does not match its chain hash";
                return r;
            }
            event_head eh;
            if (!peek(v.substr(32), eh) || eh.offset != off) {
                r.ok = false;
                r.first_bad = off;
                r.problem = "record " + std::to_string(off) + " carries another offset";
                return r;
            }
            ++r.checked;
            ++expect;
            r.head_hash = h;
        }
        if (!ok) {
            auto c2 = lm::get(t, s.meta, "chain");
            if (!c2 || c2->size() != 40) {
                if (r.checked) {
                    r.ok = false;
                    r.problem = "chain head is missing";
                }
                return r;
            }
            if (lm::from_be64(c2->substr(0, 8)) != expect - 1 ||
                std::memcmp(c2->data() + 8, h.data(), 32) != 0) {
                r.ok = false;
                r.first_bad = expect;
                r.problem =
                    "chain head does not match the last record (records removed at the end?)";
            }
            done = true;
        }
    }
    return r;
}

void store::scan_table(std::string_view table, std::string_view from,
                       const std::function<bool(std::string_view, std::string_view)>& f) const {
    std::shared_lock lock(impl_->resize);
    auto t = impl_->read_txn();
    lm::cursor c(t, impl_->table(table));
    std::string_view k, v;
    bool ok = from.empty() ? c.get(k, v, MDB_FIRST) : c.seek(from, k, v);
    while (ok && f(k, v))
        ok = c.get(k, v, MDB_NEXT);
}

} // namespace pingan
