// pingan-notify's own durable state: a small LMDB in <data>/state.
//
// `meta` holds the position (the highest log offset whose page, if it was
// one, is recorded); `pages` (offset → JSON) every page not yet settled, with
// each receiver's attempts and outcome; `events` (offset → binary event) the
// page itself; `tokens` (hash of an acknowledgement token → JSON) what a link
// acknowledges and until when. A page is recorded and the position moved in
// one transaction, so a restart neither skips a page nor takes it twice; an
// outcome is recorded before its receipt goes to the outbox, so a confirmed
// delivery is never made again. All of it is readable with mdb_dump.
#pragma once

#include "common/codec.hpp"
#include "common/lmdb.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pingan::notify {

class state {
  public:
    // Throws: pingan::error(io_error) naming the directory or LMDB call.
    explicit state(const std::string& dir);

    std::uint64_t position() const;
    void set_position(std::uint64_t offset);

    // Records a new page, its acknowledgement tokens, and the position, at once.
    void record_page(std::uint64_t offset, std::string_view event_bytes, const json& page,
                     const std::vector<std::pair<std::string, json>>& tokens);
    void save_page(std::uint64_t offset, const json& page);
    // The page is settled: forget it (its tokens stay until they expire).
    void finish_page(std::uint64_t offset);

    struct open_page {
        std::uint64_t offset = 0;
        std::string event_bytes;
        json page;
    };
    std::vector<open_page> open_pages() const;

    std::optional<json> token(const std::string& hash) const;
    void save_token(const std::string& hash, const json& t);
    // Forgets tokens that expired before `now_ms`. Returns: how many.
    std::size_t prune_tokens(std::int64_t now_ms);

  private:
    template <class F> void write(F&& f);

    MDB_dbi meta_{}, pages_{}, events_{}, tokens_{}; // before env_: its opening fills them in
    lmdb::env env_;
};

} // namespace pingan::notify
