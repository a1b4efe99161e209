// The bureau's copy of the schools' photos.
//
// Every photo an event names (`photo_refs` of hazard.reported, hazard.rectified
// and hazard.verified) is fetched from the school services (photos.hpp) and
// kept in the console's own content-addressed store, so that the console and
// the audit exports can show it while its school service is down or after it
// lost its disk. A copy is stored only when its bytes hash to the name and its
// size and type are the ones the event recorded.
//
// On disk, under the console's data folder (LMDB, readable with mdb_dump):
//   photos/       the photo store of services/common/photos.hpp (`blobs`, `meta`);
//   photo-queue/  `pending` (hash → JSON: size, type, school, offset) and
//                 `state` ("offset" → the last log offset whose photos are held
//                 or pending, 8 bytes big-endian).
// A photo is kept for as long as the folder is; nothing is removed.
//
// Threads: on_event, get and counts may be called from any thread and only
// take a mutex for a moment; one worker thread of its own writes the queue and
// fetches, so a school that does not answer never holds up the feed. A photo
// whose sources fail is tried again after 1 s, then 2, 4, ... at most 60 s.
#pragma once

#include "common/event.hpp"
#include "photos.hpp"
#include "services/common/photos.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pingan::console {

class photo_replicator {
  public:
    // Opens (creating) <dir>/photos and <dir>/photo-queue.
    // Throws: pingan::error(io_error) naming the directory.
    photo_replicator(const std::string& dir, photo_sources from,
                     std::shared_ptr<spdlog::logger> log);
    ~photo_replicator();
    void start();
    void stop();

    // An event from the log, in offset order. Events at or below the offset
    // already replicated are ignored; the photos of the others are queued.
    void on_event(const event& e);

    // Returns: the photo held under `hash`, or nothing.
    std::optional<svc::photo_store::photo> get(const std::string& hash) const;

    // Keeps bytes fetched for a page, if they are the photo `ref` names.
    // Returns: false (and keeps nothing) if they are not.
    bool keep(const photo_ref& ref, const std::string& school, const std::string& bytes,
              const std::string& type);

    struct status {
        std::uint64_t held = 0;     // photos in the store
        std::uint64_t pending = 0;  // named by an event, not yet fetched
        std::uint64_t fetched = 0;  // fetched and stored since start
        std::uint64_t failures = 0; // fetches that failed since start (retried)
        std::uint64_t refused = 0;  // of those, bytes that were not the photo named
        std::uint64_t offset = 0;   // the last log offset replicated
    };
    status counts() const;

  private:
    struct wanted {
        photo_ref ref;
        std::string school;
        std::uint64_t offset = 0;
        unsigned attempts = 0;
        std::chrono::steady_clock::time_point next{};
    };
    void run();
    void record(std::vector<wanted> fresh, std::uint64_t offset);
    void fetch_due();
    void forget(const std::string& hash);
    // Why `bytes` (of media type `type`) are not the photo `ref`, or empty.
    static std::string mismatch(const photo_ref& ref, const std::string& bytes,
                                const std::string& type);

    photo_sources from_;
    std::shared_ptr<spdlog::logger> log_;
    mutable std::mutex store_m_; // the photo store: one thread at a time
    svc::photo_store store_;
    MDB_dbi pending_db_{}, state_db_{}; // before queue_env_: its opening fills them in
    lmdb::env queue_env_;

    mutable std::mutex m_; // what follows
    std::condition_variable cv_;
    std::uint64_t seen_ = 0;                // the last offset handed in
    std::uint64_t durable_ = 0;             // the last offset written to `state`
    std::vector<wanted> inbox_;             // from on_event, not yet written
    std::map<std::string, wanted> pending_; // written, not yet fetched
    std::uint64_t held_ = 0, fetched_ = 0, failures_ = 0, refused_ = 0;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace pingan::console
