// pingan archive: copies the records received before a date into compressed,
// chain-verified segment files (tools/pingan/archive.hpp), one per China-time
// day, continuing the segments already in the folder.
//
// Reads the store directly and read-only, beside a running broker. With
// --drop (the broker stopped), the archived records then leave the store,
// which records where its chain begins (meta "base"); `pingan verify
// --archive` proves the archive and the store as one chain
// (docs/operations.md, "Storage budget").
#include "tools/pingan/archive.hpp"

#include "common/codec.hpp"
#include "common/lmdb.hpp"
#include "common/time.hpp"
#include "tools/pingan/commands.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace pingan::cli {

namespace archive {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view magic = "pingan-segment 1";

chain_hash parse_hash(const std::string& hex_text, const std::string& file) {
    chain_hash h{};
    if (hex_text.size() != 64) throw std::runtime_error(file + ": a hash is not 64 hex digits");
    for (std::size_t i = 0; i < 32; ++i) {
        unsigned v = 0;
        if (std::sscanf(hex_text.c_str() + 2 * i, "%2x", &v) != 1)
            throw std::runtime_error(file + ": a hash is not hex");
        h[i] = static_cast<std::uint8_t>(v);
    }
    return h;
}

std::string name_of(const segment& s) {
    return fs::path(s.path).filename().string();
}

} // namespace

std::string china_day(std::int64_t us) {
    using namespace std::chrono;
    auto t = sys_time<microseconds>{microseconds{us}} + hours(8);
    year_month_day ymd{floor<days>(t)};
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

std::int64_t received_us(std::string_view record) {
    auto pos = received_at_position(record);
    if (!pos || *pos + 8 > record.size()) return 0;
    std::int64_t us = 0;
    std::memcpy(&us, record.data() + *pos, 8); // little-endian, as patch_broker_fields writes it
    return us;
}

std::vector<segment> list(const std::string& dir) {
    std::vector<segment> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw std::runtime_error(dir + ": no such archive folder");
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() != ".pseg") continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::string m, header;
        std::getline(in, m);
        std::getline(in, header);
        auto file = e.path().string();
        if (m != magic) throw std::runtime_error(file + ": not a Pingan segment file");
        auto j = json::parse(header, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            throw std::runtime_error(file + ": the segment header is not JSON");
        segment s;
        s.path = file;
        try {
            s.first = j.at("first").get<std::uint64_t>();
            s.last = j.at("last").get<std::uint64_t>();
            s.events = j.at("events").get<std::uint64_t>();
            s.raw_bytes = j.at("raw_bytes").get<std::uint64_t>();
            s.day = j.at("day").get<std::string>();
            s.prev_hash = parse_hash(j.at("prev_hash").get<std::string>(), file);
            s.last_hash = parse_hash(j.at("last_hash").get<std::string>(), file);
            for (const auto& m : j.at("marks"))
                s.marks.push_back(parse_hash(m.get<std::string>(), file));
        } catch (const json::exception& x) {
            throw std::runtime_error(file + ": the segment header lacks a field (" +
                                     std::string(x.what()) + ")");
        }
        s.file_bytes = fs::file_size(e.path(), ec);
        out.push_back(std::move(s));
    }
    std::sort(out.begin(), out.end(),
              [](const segment& a, const segment& b) { return a.first < b.first; });
    return out;
}

read_report read(const segment& s, const chain_hash& prev,
                 const std::function<bool(std::uint64_t, std::string_view)>& visit) {
    read_report r;
    r.head_hash = prev;
    auto name = name_of(s);
    auto bad = [&](std::uint64_t off, const std::string& what) {
        r.ok = false;
        r.first_bad = off;
        r.problem = "segment " + name + ": " + what;
        return r;
    };
    if (prev != s.prev_hash)
        return bad(s.first, "its prev_hash is not the chain hash at offset " +
                                std::to_string(s.first - 1) +
                                " (a segment is missing or was rewritten)");
    std::ifstream in(s.path, std::ios::binary);
    std::string line;
    std::getline(in, line);
    std::getline(in, line);
    z_stream z{};
    if (inflateInit(&z) != Z_OK) return bad(s.first, "zlib cannot start");
    std::string buf; // inflated bytes not yet consumed
    std::vector<char> inbuf(1 << 16), outbuf(1 << 18);
    std::uint64_t expect = s.first;
    chain_hash h = prev;
    bool end = false, stop = false;
    int zr = Z_OK;
    while (!end && !stop) {
        in.read(inbuf.data(), static_cast<std::streamsize>(inbuf.size()));
        auto got = in.gcount();
        if (got == 0) break;
        z.next_in = reinterpret_cast<Bytef*>(inbuf.data());
        z.avail_in = static_cast<uInt>(got);
        while (z.avail_in > 0 && !end && !stop) {
            z.next_out = reinterpret_cast<Bytef*>(outbuf.data());
            z.avail_out = static_cast<uInt>(outbuf.size());
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END) {
                inflateEnd(&z);
                return bad(expect, "the compressed data is damaged at or after offset " +
                                       std::to_string(expect));
            }
            buf.append(outbuf.data(), outbuf.size() - z.avail_out);
            end = zr == Z_STREAM_END;
            std::size_t pos = 0;
            while (buf.size() - pos >= 4) {
                std::uint32_t len = 0;
                std::memcpy(&len, buf.data() + pos, 4);
                if (buf.size() - pos - 4 < len) break;
                std::string_view rec(buf.data() + pos + 4, len);
                pos += 4 + len;
                if (expect > s.last) {
                    inflateEnd(&z);
                    return bad(expect, "holds more records than its header's offsets " +
                                           std::to_string(s.first) + "-" + std::to_string(s.last));
                }
                event_head eh;
                if (!peek(rec, eh) || eh.offset != expect) {
                    inflateEnd(&z);
                    return bad(expect, "record " + std::to_string(expect) +
                                           " is not the event stored at that offset");
                }
                h = chain_next(h, expect, rec);
                auto n = expect - s.first + 1;
                bool at_mark = n % mark_every == 0 && n / mark_every <= s.marks.size();
                if ((at_mark && h != s.marks[n / mark_every - 1]) ||
                    (expect == s.last && h != s.last_hash)) {
                    inflateEnd(&z);
                    auto from = expect - (at_mark ? mark_every : (n - 1) % mark_every + 1) + 1;
                    return bad(from, "a record in offsets " + std::to_string(from) + "-" +
                                         std::to_string(expect) +
                                         " was altered: they do not chain to the hash the "
                                         "segment records at offset " +
                                         std::to_string(expect));
                }
                ++r.checked;
                r.head_hash = h;
                if (visit && !visit(expect, rec)) {
                    stop = true;
                    break;
                }
                ++expect;
            }
            buf.erase(0, pos);
        }
    }
    inflateEnd(&z);
    if (stop) return r;
    if (!end) return bad(expect, "the file is cut short at offset " + std::to_string(expect));
    if (!buf.empty() || expect != s.last + 1)
        return bad(expect, "ends at offset " + std::to_string(expect - 1) +
                               ", not at its header's last offset " + std::to_string(s.last));
    return r;
}

read_report read_all(const std::vector<segment>& segs,
                     const std::function<bool(std::uint64_t, std::string_view)>& visit) {
    read_report all;
    chain_hash h{};
    std::uint64_t next = 1;
    for (const auto& s : segs) {
        if (s.first != next) {
            all.ok = false;
            all.first_bad = next;
            all.problem = "segment " + name_of(s) + " begins at offset " + std::to_string(s.first) +
                          " but the archive's chain continues at " + std::to_string(next) +
                          " (a segment is missing or overlaps)";
            return all;
        }
        bool stopped = false;
        auto r = read(s, h, [&](std::uint64_t off, std::string_view rec) {
            if (visit && !visit(off, rec)) {
                stopped = true;
                return false;
            }
            return true;
        });
        all.checked += r.checked;
        if (!r.ok) {
            r.checked = all.checked;
            return r;
        }
        all.head_hash = h = r.head_hash;
        if (stopped) return all;
        next = s.last + 1;
    }
    return all;
}

} // namespace archive

namespace {

namespace fs = std::filesystem;

// A segment being written: records deflated into a temporary file that is
// renamed into place, complete, when the segment closes.
class segment_writer {
  public:
    segment_writer(const std::string& dir, std::uint64_t first, const chain_hash& prev,
                   std::string day)
        : dir_(dir), first_(first), prev_(prev), day_(std::move(day)) {
        tmp_ = (fs::path(dir) / ".segment.tmp").string();
        body_.open(tmp_ + ".body", std::ios::binary | std::ios::trunc);
        if (!body_) fatal("cannot write " + tmp_ + ".body");
        if (deflateInit(&z_, 9) != Z_OK) fatal("zlib cannot start");
    }
    segment_writer(const segment_writer&) = delete;
    segment_writer& operator=(const segment_writer&) = delete;
    ~segment_writer() { deflateEnd(&z_); }

    const std::string& day() const { return day_; }

    void add(std::uint64_t off, std::string_view rec, const chain_hash& h) {
        auto len = static_cast<std::uint32_t>(rec.size());
        char n[4];
        std::memcpy(n, &len, 4);
        put(std::string_view(n, 4), Z_NO_FLUSH);
        put(rec, Z_NO_FLUSH);
        last_ = off;
        last_hash_ = h;
        ++events_;
        if (events_ % archive::mark_every == 0) marks_.push_back(hex(h));
        raw_ += 4 + rec.size();
    }

    // Closes the segment: the header, then the body; returns its file.
    archive::segment close() {
        put({}, Z_FINISH);
        body_.close();
        char name[64];
        std::snprintf(name, sizeof name, "seg-%020llu-%020llu.pseg",
                      static_cast<unsigned long long>(first_),
                      static_cast<unsigned long long>(last_));
        json j = {{"first", first_},   {"last", last_},           {"events", events_},
                  {"day", day_},       {"prev_hash", hex(prev_)}, {"last_hash", hex(last_hash_)},
                  {"raw_bytes", raw_}, {"marks", marks_}};
        {
            std::ofstream out(tmp_, std::ios::binary | std::ios::trunc);
            std::ifstream body(tmp_ + ".body", std::ios::binary);
            out << "pingan-segment 1\n" << j.dump() << "\n" << body.rdbuf();
            out.flush();
            if (!out) fatal("cannot write " + tmp_);
        }
        std::error_code ec;
        fs::remove(tmp_ + ".body", ec);
        auto final_path = fs::path(dir_) / name;
        fs::rename(tmp_, final_path, ec);
        if (ec) fatal(final_path.string() + ": " + ec.message());
        archive::segment s;
        s.path = final_path.string();
        s.first = first_;
        s.last = last_;
        s.events = events_;
        s.day = day_;
        s.prev_hash = prev_;
        s.last_hash = last_hash_;
        s.raw_bytes = raw_;
        s.file_bytes = fs::file_size(final_path, ec);
        return s;
    }

  private:
    void put(std::string_view in, int flush) {
        char out[1 << 16];
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        do {
            z_.next_out = reinterpret_cast<Bytef*>(out);
            z_.avail_out = sizeof out;
            deflate(&z_, flush);
            body_.write(out, static_cast<std::streamsize>(sizeof out - z_.avail_out));
        } while (z_.avail_out == 0);
        if (!body_) fatal("cannot write " + tmp_ + ".body");
    }

    std::string dir_, tmp_;
    std::uint64_t first_, last_ = 0, events_ = 0, raw_ = 0;
    chain_hash prev_, last_hash_{};
    std::string day_;
    std::vector<std::string> marks_;
    std::ofstream body_;
    z_stream z_{};
};

// --before: YYYY-MM-DD is that day's midnight in China time; or an RFC 3339 time.
timestamp parse_before(const std::string& text) {
    if (text.size() == 10) {
        if (auto t = parse_utc(text + "T00:00:00+08:00")) return *t;
    } else if (auto t = parse_utc(text)) {
        return *t;
    }
    fatal("--before: not a date (YYYY-MM-DD, China time) or an RFC 3339 time: " + text);
}

// The store's writer lock (as the broker takes it): --drop needs the broker stopped.
class writer_lock {
  public:
    explicit writer_lock(const std::string& dir) {
        auto path = dir + "/writer.lock";
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (fd_ < 0) fatal("cannot open " + path + ": " + std::strerror(errno));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            char buf[32] = {};
            auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
            std::string pid(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
                pid.pop_back();
            fatal("--drop: " + dir + " is in use by a broker" +
                  (pid.empty() ? std::string() : " (pid " + pid + ")") +
                  "; stop it first (archiving without --drop runs beside it)");
        }
    }
    writer_lock(const writer_lock&) = delete;
    writer_lock& operator=(const writer_lock&) = delete;
    ~writer_lock() { ::close(fd_); }

  private:
    int fd_ = -1;
};

// Removes the records up to `last` (all archived and verified) from the store,
// with their id and index entries, in transactions of a bounded size; each
// one records meta "base" (the last removed offset and its chain hash), so
// that the store verifies at every step, even after a crash between them.
// Returns: how many records were removed.
std::uint64_t drop_through(const std::string& data, std::uint64_t last, const chain_hash& h) {
    lmdb::env e(data, 32, 0, MDB_NOTLS);
    MDB_dbi events{}, ids{}, times{}, districts{}, meta{};
    {
        lmdb::txn t(e);
        events = lmdb::open_dbi(t, "events", 0);
        ids = lmdb::open_dbi(t, "ids", 0);
        times = lmdb::open_dbi(t, "times", 0);
        districts = lmdb::open_dbi(t, "districts", 0);
        meta = lmdb::open_dbi(t, "meta", 0);
        t.commit();
    }
    {
        lmdb::txn t(e, MDB_RDONLY);
        auto v = lmdb::get(t, events, lmdb::be64(last));
        if (!v || v->size() < 32 || std::memcmp(v->data(), h.data(), 32) != 0)
            fatal("the store's chain hash at offset " + std::to_string(last) +
                  " is not the archive's: nothing was dropped");
    }
    constexpr std::size_t batch = 20000;
    std::uint64_t dropped = 0;
    bool more = true;
    while (more) {
        std::uint64_t n = 0;
        lmdb::write_growing(e, "the store", [&](const lmdb::txn& t) {
            n = 0;
            more = false;
            lmdb::cursor c(t, events);
            std::string_view k, v;
            std::string base;
            for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_FIRST)) {
                auto off = lmdb::from_be64(k);
                if (off > last) break;
                if (n == batch) {
                    more = true;
                    break;
                }
                base = lmdb::be64(off) + std::string(v.substr(0, 32));
                if (v.size() >= 32 + 18) {
                    std::string id(v.substr(32 + 2, 16));
                    auto at = lmdb::get(t, ids, id);
                    if (at && lmdb::from_be64(*at) == off) lmdb::del(t, ids, id);
                }
                lmdb::check("mdb_cursor_del", mdb_cursor_del(c.handle(), 0));
                ++n;
            }
            if (!base.empty()) lmdb::put(t, meta, "base", base);
        });
        dropped += n;
    }
    // The indexes' entries that point only at removed records, in bounded
    // transactions too (each pass continues from the key where the last stopped).
    std::string resume;
    for (bool again = true; again;) {
        lmdb::write_growing(e, "the store", [&](const lmdb::txn& t) {
            again = false;
            lmdb::cursor c(t, districts);
            std::string_view k, v;
            std::size_t n = 0;
            bool ok = resume.empty() ? c.get(k, v, MDB_FIRST) : c.seek(resume, k, v);
            // After a delete, LMDB's MDB_NEXT yields the record that followed it.
            for (; ok; ok = c.get(k, v, MDB_NEXT)) {
                if (n == batch) {
                    resume = std::string(k);
                    again = true;
                    break;
                }
                if (v.size() >= 8 && lmdb::from_be64(v.substr(v.size() - 8)) <= last) {
                    lmdb::check("mdb_cursor_del", mdb_cursor_del(c.handle(), 0));
                    ++n;
                }
            }
        });
    }
    // A time's entry goes when the next time's records begin at or before
    // last + 1: every record of that time was removed.
    std::vector<std::string> gone;
    {
        lmdb::txn t(e, MDB_RDONLY);
        lmdb::cursor c(t, times);
        std::string_view k, v;
        std::string prev;
        for (bool ok = c.get(k, v, MDB_FIRST); ok; ok = c.get(k, v, MDB_NEXT)) {
            if (lmdb::from_be64(v) > last + 1) break;
            if (!prev.empty()) gone.push_back(prev);
            prev = std::string(k);
        }
    }
    for (std::size_t i = 0; i < gone.size(); i += batch)
        lmdb::write_growing(e, "the store", [&](const lmdb::txn& t) {
            for (std::size_t j = i; j < std::min(gone.size(), i + batch); ++j)
                lmdb::del(t, times, gone[j]);
        });
    return dropped;
}

void run_archive(const std::string& data, const std::string& before, const std::string& out,
                 bool drop) {
    std::optional<writer_lock> lock;
    if (drop) lock.emplace(data);
    auto cut = parse_before(before);
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) fatal(out + ": " + ec.message());
    auto segs = archive::list(out);
    // The archive already there must be whole before it is continued.
    auto prior = archive::read_all(segs, nullptr);
    if (!prior.ok) fatal(prior.problem + "; the archive is not continued");
    std::uint64_t from = segs.empty() ? 1 : segs.back().last + 1;
    chain_hash h = prior.head_hash;

    store_options o;
    o.path = data;
    o.read_only = true;
    auto sp = std::make_unique<store>(o);
    auto& s = *sp;
    if (from > 1) {
        auto live = s.hash_at(from - 1);
        if (live && *live != h)
            fatal("the archive in " + out + " ends at offset " + std::to_string(from - 1) +
                  " with a chain hash the store at " + data +
                  " does not have there: it is another store's archive");
    }
    scan_filter f;
    f.from = from;
    f.to_time = cut - micros(1);
    auto [lo, hi] = s.range(f);
    std::uint64_t head = s.head();
    if (hi > head) hi = head;
    json result = {{"archive", out}, {"before", format_utc(cut)}};
    json written = json::array();
    std::uint64_t events = 0, raw = 0, packed = 0;
    if (lo <= hi && hi >= from) {
        std::unique_ptr<segment_writer> w;
        std::uint64_t expect = from;
        auto finish = [&] {
            auto seg = w->close();
            auto live = s.hash_at(seg.last);
            if (!live || *live != seg.last_hash)
                fatal("the store's chain hash at offset " + std::to_string(seg.last) +
                      " is not the one its records make: run pingan verify --data " + data);
            written.push_back({{"file", fs::path(seg.path).filename().string()},
                               {"day", seg.day},
                               {"first", seg.first},
                               {"last", seg.last},
                               {"bytes", seg.file_bytes}});
            events += seg.events;
            raw += seg.raw_bytes;
            packed += seg.file_bytes;
            w.reset();
        };
        scan_filter all;
        all.from = from;
        all.to = hi;
        s.scan(all, SIZE_MAX, [&](std::uint64_t off, std::string_view rec) {
            if (off != expect)
                fatal("the store has no record at offset " + std::to_string(expect) +
                      ": run pingan verify --data " + data);
            auto day = archive::china_day(archive::received_us(rec));
            if (w && w->day() != day) finish();
            if (!w) w = std::make_unique<segment_writer>(out, off, h, day);
            h = chain_next(h, off, rec);
            w->add(off, rec, h);
            ++expect;
            return true;
        });
        if (w) finish();
    }
    result["segments"] = written;
    result["events"] = events;
    result["raw_bytes"] = raw;
    result["bytes"] = packed;
    result["archived_to"] = from - 1 + events; // the last offset in the archive
    result["head_hash"] = hex(h);
    if (drop) {
        sp.reset();
        // What is dropped is read back from the files first, whole, as one chain.
        auto check = archive::read_all(archive::list(out), nullptr);
        if (!check.ok) fatal(check.problem + "; nothing was dropped");
        std::uint64_t last = from - 1 + events;
        result["dropped"] = last ? drop_through(data, last, check.head_hash) : 0;
    }
    std::cout << result.dump() << "\n";
}

} // namespace

void add_archive_command(CLI::App& app) {
    auto data = std::make_shared<std::string>("var/broker");
    auto before = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(
        "archive", "Copy the records received before a date into compressed, chain-verified "
                   "segment files (one per China-time day), continuing the archive folder; "
                   "with --drop, then remove them from the store.");
    cmd->add_option("--data", *data, "the broker's store directory")->capture_default_str();
    cmd->add_option("--before", *before,
                    "archive what was received before this day (YYYY-MM-DD, midnight China "
                    "time) or time (RFC 3339)")
        ->required();
    cmd->add_option("--out", *out, "the archive folder (created if missing)")->required();
    auto drop = std::make_shared<bool>(false);
    cmd->add_flag("--drop", *drop,
                  "then remove the archived records from the store (the broker must be "
                  "stopped); the store's chain then begins where the archive's ends");
    cmd->callback([data, before, out, drop] {
        try {
            run_archive(*data, *before, *out, *drop);
        } catch (const std::exception& e) {
            fatal(e.what());
        }
    });
}

PINGAN_COMMAND(53, add_archive_command);

} // namespace pingan::cli
