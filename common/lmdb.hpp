// A thin RAII layer over LMDB, in the manner of lmdbxx: handles close
// themselves, "not found" is an empty optional or `false`, and every other
// failure throws lmdb_error naming the call ("mdb_put: MDB_MAP_FULL").
//
// Only the store adapters (broker/store/lmdb_store.cpp, common/outbox.cpp) include this.
#pragma once

#include "common/errc.hpp"

#include <lmdb.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace pingan::lmdb {

class lmdb_error : public std::runtime_error {
  public:
    lmdb_error(const char* call, int rc);
    int rc() const noexcept { return rc_; }

  private:
    int rc_;
};

inline void check(const char* call, int rc) {
    if (rc != MDB_SUCCESS) throw lmdb_error(call, rc);
}

inline MDB_val val(std::string_view s) noexcept {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view view(const MDB_val& v) noexcept {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// Big-endian so that LMDB's byte order is numeric order.
inline std::string be64(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i)
        s[i] = static_cast<char>(v >> (56 - 8 * i));
    return s;
}
inline std::uint64_t from_be64(std::string_view s) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8 && i < s.size(); ++i)
        v = v << 8 | static_cast<unsigned char>(s[i]);
    return v;
}

class env {
  public:
    env() = default;
    // Opens the environment in directory `path`, creating both unless `flags`
    // has MDB_RDONLY.
    env(const std::string& path, unsigned max_dbs, std::size_t map_size, unsigned flags = 0,
        unsigned max_readers = 126);
    env(env&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
    env& operator=(env&& o) noexcept;
    ~env();

    MDB_env* handle() const noexcept { return h_; }
    std::size_t map_size() const;
    void set_map_size(std::size_t size);
    // Clears reader slots left by dead processes. Returns: how many were cleared.
    int reader_check();
    void sync(bool force = true);

  private:
    MDB_env* h_ = nullptr;
};

class txn {
  public:
    txn() = default;
    txn(const env& e, unsigned flags = 0, MDB_txn* parent = nullptr);
    txn(txn&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
    txn& operator=(txn&& o) noexcept;
    ~txn();

    MDB_txn* handle() const noexcept { return h_; }
    void commit();
    void abort() noexcept;
    // Read-only transactions: release the snapshot and take a new one later.
    void reset() noexcept;
    void renew();

  private:
    MDB_txn* h_ = nullptr;
};

// Opens (creating when `flags` has MDB_CREATE) a named database.
MDB_dbi open_dbi(const txn& t, const char* name, unsigned flags);

std::optional<std::string_view> get(const txn& t, MDB_dbi d, std::string_view key);
// Returns: false if MDB_NOOVERWRITE/MDB_NODUPDATA found the key (and then
// `existing`, if given, is the stored value).
bool put(const txn& t, MDB_dbi d, std::string_view key, std::string_view value, unsigned flags = 0,
         std::string_view* existing = nullptr);
// Returns: false if the key was not there.
bool del(const txn& t, MDB_dbi d, std::string_view key, const std::string_view* value = nullptr);
MDB_stat stat(const txn& t, MDB_dbi d);

class cursor {
  public:
    cursor(const txn& t, MDB_dbi d);
    cursor(cursor&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
    cursor& operator=(cursor&&) = delete;
    ~cursor();

    // Returns: false at MDB_NOTFOUND.
    bool get(std::string_view& key, std::string_view& value, MDB_cursor_op op);
    bool seek(std::string_view key, std::string_view& found_key, std::string_view& value,
              MDB_cursor_op op = MDB_SET_RANGE);
    MDB_cursor* handle() const noexcept { return h_; }

  private:
    MDB_cursor* h_ = nullptr;
};

// A program's small local store (a service's outbox, notify's state): makes
// `dir`, opens the environment with room for the named databases, clears the
// reader slots of dead processes, and opens (creating) each database into its
// handle. `what` names the store in errors.
// Throws: pingan::error(io_error) naming `what`, `dir` and the call that failed.
env open_local(const std::string& dir, std::string_view what, std::size_t map_size,
               std::initializer_list<std::pair<const char*, MDB_dbi*>> dbs);

// Runs `f(txn)` in a write transaction and commits; a full map is doubled and
// the transaction run again (up to 16 times), so that a local store grows
// instead of refusing work.
// Throws: pingan::error(store_failure) naming `what` and the LMDB failure.
template <class F> void write_growing(env& e, std::string_view what, F&& f) {
    for (int attempt = 0;; ++attempt) {
        try {
            txn t(e);
            f(t);
            t.commit();
            return;
        } catch (const lmdb_error& x) {
            if (x.rc() == MDB_MAP_FULL && attempt < 16) {
                e.set_map_size(e.map_size() * 2);
                continue;
            }
            throw error(errc::store_failure, std::string(what) + ": " + x.what());
        }
    }
}

} // namespace pingan::lmdb
