// The durable outbox over LMDB: one write transaction per add or settle.
#include "outbox.hpp"

#include "codec.hpp"
#include "runtime.hpp"

#include <sodium.h>

#include <cstring>
#include <filesystem>

namespace pingan {
namespace {

constexpr std::string_view next_seq_key = "next_seq";
// Present once the outbox is sealed: a known text sealed with the key, so
// that a wrong key is told at open and not at the first entry.
constexpr std::string_view sealed_key = "sealed";
constexpr std::string_view check_text = "pingan outbox key check";
constexpr std::size_t nonce_bytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t tag_bytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;

std::string associated(std::string_view table, std::uint64_t seq) {
    return std::string(table) + lmdb::be64(seq);
}

std::uint64_t read_next_seq(const lmdb::txn& t, MDB_dbi meta) {
    auto v = lmdb::get(t, meta, next_seq_key);
    return v ? lmdb::from_be64(*v) : 1;
}

} // namespace

outbox_key read_outbox_key(const std::string& path, bool create) {
    auto text = read_secret_file(path, create, "the outbox key");
    outbox_key k;
    std::size_t n = 0;
    if (text.size() != 2 * k.size() ||
        sodium_hex2bin(k.data(), k.size(), text.data(), text.size(), nullptr, &n, nullptr) != 0 ||
        n != k.size()) {
        sodium_memzero(text.data(), text.size());
        throw error(errc::bad_config,
                    path + ": an outbox key is 64 hex digits (32 random bytes) on one line");
    }
    sodium_memzero(text.data(), text.size());
    return k;
}

outbox::outbox(const std::string& dir, std::size_t initial_map_size, std::optional<outbox_key> key)
    : dir_(dir), key_(std::move(key)),
      env_(lmdb::open_local(dir, "outbox", initial_map_size,
                            {{"pending", &pending_}, {"dead", &dead_}, {"meta", &meta_}})) {
    std::optional<std::string> check;
    {
        lmdb::txn t(env_, MDB_RDONLY);
        if (auto v = lmdb::get(t, meta_, sealed_key)) check.emplace(*v);
    }
    if (check && !key_)
        throw error(errc::bad_config,
                    "outbox " + dir +
                        " is sealed: start with --outbox-key FILE, the key it was sealed with");
    if (!key_) return;
    if (check) {
        bool same = false;
        try {
            same = open(sealed_key, 0, *check) == check_text;
        } catch (const error&) {
            // does not open: another key
        }
        if (!same) throw error(errc::bad_config, "outbox " + dir + " was sealed with another key");
        return;
    }
    write([&](const lmdb::txn& t) { seal_existing(t); });
}

outbox::~outbox() {
    if (key_) sodium_memzero(key_->data(), key_->size());
}

std::string outbox::seal(std::string_view table, std::uint64_t seq, std::string_view plain) const {
    auto ad = associated(table, seq);
    std::string out(nonce_bytes + plain.size() + tag_bytes, '\0');
    auto* n = reinterpret_cast<unsigned char*>(out.data());
    randombytes_buf(n, nonce_bytes);
    unsigned long long len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        n + nonce_bytes, &len, reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
        reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, n, key_->data());
    return out;
}

std::string outbox::open(std::string_view table, std::uint64_t seq, std::string_view sealed) const {
    auto ad = associated(table, seq);
    if (sealed.size() < nonce_bytes + tag_bytes)
        throw error(errc::store_failure, "outbox " + dir_ + ": " + std::string(table) + " entry " +
                                             std::to_string(seq) + " is too short to be sealed");
    std::string plain(sealed.size() - nonce_bytes - tag_bytes, '\0');
    const auto* n = reinterpret_cast<const unsigned char*>(sealed.data());
    unsigned long long len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<unsigned char*>(plain.data()), &len, nullptr, n + nonce_bytes,
            sealed.size() - nonce_bytes, reinterpret_cast<const unsigned char*>(ad.data()),
            ad.size(), n, key_->data()) != 0)
        throw error(errc::store_failure, "outbox " + dir_ + ": " + std::string(table) + " entry " +
                                             std::to_string(seq) +
                                             " does not open under the key (altered or moved)");
    return plain;
}

void outbox::seal_existing(const lmdb::txn& t) {
    std::vector<std::pair<std::string, std::string>> pending, dead;
    {
        lmdb::cursor c(t, pending_);
        std::string_view k, v;
        for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT))
            if (v.size() >= 16)
                pending.emplace_back(std::string(k),
                                     std::string(v.substr(0, 16)) +
                                         seal("pending", lmdb::from_be64(k), v.substr(16)));
    }
    {
        lmdb::cursor c(t, dead_);
        std::string_view k, v;
        for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT))
            dead.emplace_back(std::string(k), seal("dead", lmdb::from_be64(k), v));
    }
    for (const auto& [k, v] : pending)
        lmdb::put(t, pending_, k, v);
    for (const auto& [k, v] : dead)
        lmdb::put(t, dead_, k, v);
    lmdb::put(t, meta_, sealed_key, seal(sealed_key, 0, check_text));
}

// Runs `f` in a write transaction and commits; a full map is grown and the
// transaction retried, so that a long broker outage never refuses a report.
template <class F> void outbox::write(F&& f) {
    lmdb::write_growing(env_, "outbox", std::forward<F>(f));
}

std::uint64_t outbox::add(const event& e) {
    return add(std::span<const event>(&e, 1)).front();
}

std::vector<std::uint64_t> outbox::add(std::span<const event> events) {
    std::vector<std::uint64_t> seqs;
    std::string value;
    write([&](const lmdb::txn& t) {
        seqs.clear();
        auto seq = read_next_seq(t, meta_);
        for (const auto& e : events) {
            value.assign(reinterpret_cast<const char*>(e.id.bytes.data()), 16);
            if (key_)
                value += seal("pending", seq, encode(e));
            else
                encode(e, value);
            lmdb::put(t, pending_, lmdb::be64(seq), value);
            seqs.push_back(seq++);
        }
        lmdb::put(t, meta_, next_seq_key, lmdb::be64(seq));
    });
    return seqs;
}

std::vector<outbox::entry> outbox::pending(std::uint64_t after, std::size_t max) const {
    std::vector<entry> out;
    try {
        lmdb::txn t(env_, MDB_RDONLY);
        lmdb::cursor c(t, pending_);
        std::string_view k, v;
        bool ok = c.seek(lmdb::be64(after + 1), k, v);
        while (ok && out.size() < max) {
            if (v.size() >= 16) {
                entry en;
                en.seq = lmdb::from_be64(k);
                std::memcpy(en.id.bytes.data(), v.data(), 16);
                if (key_)
                    en.bytes = open("pending", en.seq, v.substr(16));
                else
                    en.bytes.assign(v.substr(16));
                out.push_back(std::move(en));
            }
            ok = c.get(k, v, MDB_NEXT);
        }
    } catch (const lmdb::lmdb_error& x) {
        throw error(errc::store_failure, std::string("outbox: ") + x.what());
    }
    return out;
}

std::size_t outbox::settle(std::span<const settlement> answers) {
    std::size_t n = 0;
    write([&](const lmdb::txn& t) {
        n = 0;
        for (const auto& a : answers) {
            auto key = lmdb::be64(a.seq);
            auto v = lmdb::get(t, pending_, key);
            if (!v) continue;
            if (a.code != errc::ok && v->size() >= 16) {
                auto bytes =
                    key_ ? open("pending", a.seq, v->substr(16)) : std::string(v->substr(16));
                event e;
                json j = json::object();
                j["seq"] = a.seq;
                j["code"] = std::string(errc_name(a.code));
                j["message"] = a.message;
                if (!decode(bytes, e))
                    j["event"] = to_json(e);
                else
                    j["event_bytes"] = bytes.size();
                event_id id;
                std::memcpy(id.bytes.data(), v->data(), 16);
                j["id"] = id.str();
                auto text = j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
                lmdb::put(t, dead_, key, key_ ? seal("dead", a.seq, text) : text);
            }
            lmdb::del(t, pending_, key);
            ++n;
        }
    });
    return n;
}

std::size_t outbox::depth() const {
    lmdb::txn t(env_, MDB_RDONLY);
    return lmdb::stat(t, pending_).ms_entries;
}

std::size_t outbox::dead_count() const {
    lmdb::txn t(env_, MDB_RDONLY);
    return lmdb::stat(t, dead_).ms_entries;
}

std::vector<outbox::dead_letter> outbox::dead_letters(std::size_t max) const {
    std::vector<dead_letter> out;
    lmdb::txn t(env_, MDB_RDONLY);
    lmdb::cursor c(t, dead_);
    std::string_view k, v;
    bool ok = c.get(k, v, MDB_FIRST);
    while (ok && out.size() < max) {
        dead_letter d;
        d.seq = lmdb::from_be64(k);
        auto text = key_ ? open("dead", d.seq, v) : std::string(v);
        json j;
        if (!parse_json(text, j) && j.is_object()) {
            if (auto id = event_id::parse(j.value("id", ""))) d.id = *id;
            d.code = errc_from_name(j.value("code", ""));
            d.message = j.value("message", "");
            if (j.contains("event")) d.event_json = j["event"].dump();
        }
        out.push_back(std::move(d));
        ok = c.get(k, v, MDB_NEXT);
    }
    return out;
}

} // namespace pingan
