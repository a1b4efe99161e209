// notify's LMDB: position, open pages and acknowledgement tokens.
#include "state.hpp"

#include <filesystem>

namespace pingan::notify {
namespace {

constexpr std::string_view position_key = "position";

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

} // namespace

state::state(const std::string& dir)
    : env_(lmdb::open_local(
          dir, "notify state", 16u << 20,
          {{"meta", &meta_}, {"pages", &pages_}, {"events", &events_}, {"tokens", &tokens_}})) {}

template <class F> void state::write(F&& f) {
    lmdb::write_growing(env_, "notify state", std::forward<F>(f));
}

std::uint64_t state::position() const {
    lmdb::txn t(env_, MDB_RDONLY);
    auto v = lmdb::get(t, meta_, position_key);
    return v ? lmdb::from_be64(*v) : 0;
}

void state::set_position(std::uint64_t offset) {
    write([&](const lmdb::txn& t) { lmdb::put(t, meta_, position_key, lmdb::be64(offset)); });
}

void state::record_page(std::uint64_t offset, std::string_view event_bytes, const json& page,
                        const std::vector<std::pair<std::string, json>>& tokens) {
    auto text = dump(page);
    write([&](const lmdb::txn& t) {
        lmdb::put(t, events_, lmdb::be64(offset), event_bytes);
        lmdb::put(t, pages_, lmdb::be64(offset), text);
        for (const auto& [hash, tok] : tokens)
            lmdb::put(t, tokens_, hash, dump(tok));
        auto v = lmdb::get(t, meta_, position_key);
        if (!v || lmdb::from_be64(*v) < offset)
            lmdb::put(t, meta_, position_key, lmdb::be64(offset));
    });
}

void state::save_page(std::uint64_t offset, const json& page) {
    auto text = dump(page);
    write([&](const lmdb::txn& t) { lmdb::put(t, pages_, lmdb::be64(offset), text); });
}

void state::finish_page(std::uint64_t offset) {
    write([&](const lmdb::txn& t) {
        lmdb::del(t, pages_, lmdb::be64(offset));
        lmdb::del(t, events_, lmdb::be64(offset));
    });
}

std::vector<state::open_page> state::open_pages() const {
    std::vector<open_page> out;
    lmdb::txn t(env_, MDB_RDONLY);
    lmdb::cursor c(t, pages_);
    std::string_view k, v;
    for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT)) {
        open_page p;
        p.offset = lmdb::from_be64(k);
        p.page = json::parse(v, nullptr, false);
        if (auto e = lmdb::get(t, events_, k)) p.event_bytes = std::string(*e);
        out.push_back(std::move(p));
    }
    return out;
}

std::optional<json> state::token(const std::string& hash) const {
    lmdb::txn t(env_, MDB_RDONLY);
    auto v = lmdb::get(t, tokens_, hash);
    if (!v) return std::nullopt;
    return json::parse(*v, nullptr, false);
}

void state::save_token(const std::string& hash, const json& tok) {
    auto text = dump(tok);
    write([&](const lmdb::txn& t) { lmdb::put(t, tokens_, hash, text); });
}

std::size_t state::prune_tokens(std::int64_t now_ms) {
    std::size_t n = 0;
    write([&](const lmdb::txn& t) {
        n = 0;
        lmdb::cursor c(t, tokens_);
        std::string_view k, v;
        for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT)) {
            auto j = json::parse(v, nullptr, false);
            if (j.is_object() && j.value("expires_ms", std::int64_t{0}) < now_ms) {
                lmdb::check("mdb_cursor_del", mdb_cursor_del(c.handle(), 0));
                ++n;
            }
        }
    });
    return n;
}

} // namespace pingan::notify
