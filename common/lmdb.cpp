// RAII wrappers over the LMDB C API.
#include "lmdb.hpp"

#include <filesystem>

#include <sys/stat.h>

namespace pingan::lmdb {

lmdb_error::lmdb_error(const char* call, int rc)
    : std::runtime_error(std::string(call) + ": " + mdb_strerror(rc)), rc_(rc) {}

env::env(const std::string& path, unsigned max_dbs, std::size_t map_size, unsigned flags,
         unsigned max_readers) {
    // A read-only open must not create what it reads.
    if (!(flags & MDB_RDONLY)) ::mkdir(path.c_str(), 0750);
    check("mdb_env_create", mdb_env_create(&h_));
    try {
        check("mdb_env_set_maxdbs", mdb_env_set_maxdbs(h_, max_dbs));
        check("mdb_env_set_mapsize", mdb_env_set_mapsize(h_, map_size));
        check("mdb_env_set_maxreaders", mdb_env_set_maxreaders(h_, max_readers));
        check("mdb_env_open", mdb_env_open(h_, path.c_str(), flags, 0640));
    } catch (...) {
        mdb_env_close(h_);
        h_ = nullptr;
        throw;
    }
}

env& env::operator=(env&& o) noexcept {
    if (this != &o) {
        if (h_) mdb_env_close(h_);
        h_ = o.h_;
        o.h_ = nullptr;
    }
    return *this;
}

env::~env() {
    if (h_) mdb_env_close(h_);
}

std::size_t env::map_size() const {
    MDB_envinfo info;
    check("mdb_env_info", mdb_env_info(h_, &info));
    return info.me_mapsize;
}

void env::set_map_size(std::size_t size) {
    check("mdb_env_set_mapsize", mdb_env_set_mapsize(h_, size));
}

int env::reader_check() {
    int dead = 0;
    check("mdb_reader_check", mdb_reader_check(h_, &dead));
    return dead;
}

void env::sync(bool force) {
    check("mdb_env_sync", mdb_env_sync(h_, force ? 1 : 0));
}

txn::txn(const env& e, unsigned flags, MDB_txn* parent) {
    check("mdb_txn_begin", mdb_txn_begin(e.handle(), parent, flags, &h_));
}

txn& txn::operator=(txn&& o) noexcept {
    if (this != &o) {
        abort();
        h_ = o.h_;
        o.h_ = nullptr;
    }
    return *this;
}

txn::~txn() {
    abort();
}

void txn::commit() {
    auto* h = h_;
    h_ = nullptr; // mdb_txn_commit frees the handle even when it fails
    check("mdb_txn_commit", mdb_txn_commit(h));
}

void txn::abort() noexcept {
    if (h_) mdb_txn_abort(h_);
    h_ = nullptr;
}

void txn::reset() noexcept {
    mdb_txn_reset(h_);
}

void txn::renew() {
    check("mdb_txn_renew", mdb_txn_renew(h_));
}

MDB_dbi open_dbi(const txn& t, const char* name, unsigned flags) {
    MDB_dbi d;
    check("mdb_dbi_open", mdb_dbi_open(t.handle(), name, flags, &d));
    return d;
}

std::optional<std::string_view> get(const txn& t, MDB_dbi d, std::string_view key) {
    MDB_val k = val(key), v;
    int rc = mdb_get(t.handle(), d, &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check("mdb_get", rc);
    return view(v);
}

bool put(const txn& t, MDB_dbi d, std::string_view key, std::string_view value, unsigned flags,
         std::string_view* existing) {
    MDB_val k = val(key), v = val(value);
    int rc = mdb_put(t.handle(), d, &k, &v, flags);
    if (rc == MDB_KEYEXIST) {
        if (existing) *existing = view(v);
        return false;
    }
    check("mdb_put", rc);
    return true;
}

bool del(const txn& t, MDB_dbi d, std::string_view key, const std::string_view* value) {
    MDB_val k = val(key), v;
    if (value) v = val(*value);
    int rc = mdb_del(t.handle(), d, &k, value ? &v : nullptr);
    if (rc == MDB_NOTFOUND) return false;
    check("mdb_del", rc);
    return true;
}

MDB_stat stat(const txn& t, MDB_dbi d) {
    MDB_stat s;
    check("mdb_stat", mdb_stat(t.handle(), d, &s));
    return s;
}

cursor::cursor(const txn& t, MDB_dbi d) {
    check("mdb_cursor_open", mdb_cursor_open(t.handle(), d, &h_));
}

cursor::~cursor() {
    if (h_) mdb_cursor_close(h_);
}

bool cursor::get(std::string_view& key, std::string_view& value, MDB_cursor_op op) {
    MDB_val k = val(key), v = val(value);
    int rc = mdb_cursor_get(h_, &k, &v, op);
    if (rc == MDB_NOTFOUND) return false;
    check("mdb_cursor_get", rc);
    key = view(k);
    value = view(v);
    return true;
}

bool cursor::seek(std::string_view key, std::string_view& found_key, std::string_view& value,
                  MDB_cursor_op op) {
    found_key = key;
    return get(found_key, value, op);
}

env open_local(const std::string& dir, std::string_view what, std::size_t map_size,
               std::initializer_list<std::pair<const char*, MDB_dbi*>> dbs) {
    try {
        std::filesystem::create_directories(dir);
        env e(dir, static_cast<unsigned>(dbs.size() + 2), map_size);
        e.reader_check();
        txn t(e);
        for (const auto& [name, handle] : dbs)
            *handle = open_dbi(t, name, MDB_CREATE);
        t.commit();
        return e;
    } catch (const std::filesystem::filesystem_error& x) {
        throw error(errc::io_error, std::string(what) + " " + dir + ": " + x.what());
    } catch (const lmdb_error& x) {
        throw error(errc::io_error, std::string(what) + " " + dir + ": " + x.what());
    }
}

} // namespace pingan::lmdb
