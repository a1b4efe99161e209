// The durable outbox over LMDB: one write transaction per add or settle.
#include "outbox.hpp"

#include "codec.hpp"

#include <cstring>
#include <filesystem>

namespace pingan {
namespace {

constexpr std::string_view next_seq_key = "next_seq";

std::uint64_t read_next_seq(const lmdb::txn& t, MDB_dbi meta) {
    auto v = lmdb::get(t, meta, next_seq_key);
    return v ? lmdb::from_be64(*v) : 1;
}

} // namespace

outbox::outbox(const std::string& dir, std::size_t initial_map_size)
    : dir_(dir),
      env_(lmdb::open_local(dir, "outbox", initial_map_size,
                            {{"pending", &pending_}, {"dead", &dead_}, {"meta", &meta_}})) {}

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
                event e;
                json j = json::object();
                j["seq"] = a.seq;
                j["code"] = std::string(errc_name(a.code));
                j["message"] = a.message;
                if (!decode(v->substr(16), e))
                    j["event"] = to_json(e);
                else
                    j["event_bytes"] = v->size() - 16;
                event_id id;
                std::memcpy(id.bytes.data(), v->data(), 16);
                j["id"] = id.str();
                lmdb::put(t, dead_, key,
                          j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace));
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
        json j;
        if (!parse_json(v, j) && j.is_object()) {
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
