// Signed checkpoints on real broker processes and real LMDB files: the broker
// signs its head into the log and the directory another party keeps, `pingan
// checkpoint` prints it, and `pingan verify --checkpoint` catches every way of
// editing the store's file directly, re-chained or not.
#include "broker/store/store.hpp"
#include "broker_process.hpp"
#include "common/lmdb.hpp"
#include "common/signing.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>

using namespace pingan;
using namespace pingan::test;
namespace fs = std::filesystem;

namespace {

std::string hazard(const std::string& id) {
    return R"({"type":"hazard.reported","school":"420502K001","status":"Actual",)"
           R"("severity":"Severe","body":{"hazard_id":")" +
           id +
           R"(","area":"fire","grade":"major","description":"消防通道堵塞",)"
           R"("location":"宿舍楼","found_by":"safety_officer"}})";
}

// A broker that signs checkpoints with a key outside its store and writes
// them to a directory of their own; four hazards, then a clean stop.
struct signed_log {
    temp_dir d;
    std::string store = d / "store", key = d / "signing.key", dir = d / "kept";
    std::string checkpoint; // the file the clean stop wrote

    signed_log() {
        REQUIRE(run({"checkpoint", "keygen", "--out", key}).code == 0);
        broker_process b(store, {"--checkpoint-key", key, "--checkpoint-dir", dir});
        b.export_env();
        for (auto id : {"HZ-1", "HZ-2", "HZ-3", "HZ-4"})
            REQUIRE(run({"publish", hazard(id)}).code == 0);
        b.proc->signal(SIGTERM);
        REQUIRE(b.proc->wait() == 0);
        for (const auto& f : fs::directory_iterator(dir))
            if (f.path().extension() == ".json")
                checkpoint = std::max(checkpoint, f.path().string());
        REQUIRE_FALSE(checkpoint.empty());
    }
    json file() const { return json::parse(read_file(checkpoint)); }
};

// The store's files, edited directly: `edit` gets the write transaction and
// the events and meta databases.
template <class F> void edit_store(const std::string& dir, F&& edit) {
    lmdb::env env(dir, 16, 1 << 30);
    lmdb::txn t(env);
    auto events = lmdb::open_dbi(t, "events", 0);
    auto meta = lmdb::open_dbi(t, "meta", 0);
    edit(t, events, meta);
    t.commit();
}

std::string value_at(lmdb::txn& t, MDB_dbi events, std::uint64_t off) {
    return std::string(*lmdb::get(t, events, lmdb::be64(off)));
}

std::string raw_bytes(const chain_hash& h) {
    return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}

// Recomputes every stored hash and the chain head from the records as they
// now are: the store verifies on its own again.
void rechain(lmdb::txn& t, MDB_dbi events, MDB_dbi meta, std::uint64_t head) {
    chain_hash h{};
    for (std::uint64_t off = 1; off <= head; ++off) {
        auto rec = value_at(t, events, off).substr(32);
        h = chain_next(h, off, rec);
        lmdb::put(t, events, lmdb::be64(off), raw_bytes(h) + rec);
    }
    lmdb::put(t, meta, "chain", lmdb::be64(head) + raw_bytes(h));
}

// A record re-encoded with another offset (its broker field) and, for a
// hazard, `what` as its description.
std::string record_with(const std::string& rec, std::uint64_t offset, const std::string& what) {
    event e;
    REQUIRE_FALSE(decode(rec, e));
    e.offset = offset;
    if (auto* h = std::get_if<hazard_reported>(&e.body); h && !what.empty()) h->description = what;
    return encode(e);
}

} // namespace

TEST_CASE("checkpoint keygen writes an owner-only key and its public half, and never overwrites",
          "[checkpoint]") {
    temp_dir d;
    auto r = run({"checkpoint", "keygen", "--out", d / "k.key"});
    REQUIRE(r.code == 0);
    struct stat st {};
    REQUIRE(::stat((d / "k.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto k = parse_signing_key(read_file(d / "k.key"));
    CHECK(r.lines.at(0) == to_hex(k.public_key.data(), 32));
    CHECK(parse_public_key(read_file(d / "k.key.pub")) == k.public_key);
    auto again = run({"checkpoint", "keygen", "--out", d / "k.key"});
    CHECK(again.code == 2);
    CHECK(has(again, "exists"));
}

TEST_CASE("the broker refuses a checkpoint key inside its store or readable by others",
          "[checkpoint]") {
    temp_dir d;
    fs::create_directories(d / "store");
    REQUIRE(run({"checkpoint", "keygen", "--out", d / "store/signing.key"}).code == 0);
    process inside({std::string(PINGAN_BIN_DIR) + "/pingan-broker", "--data", d / "store",
                    "--insecure-dev", "--checkpoint-key", d / "store/signing.key", "--registry",
                    source_path("data/schools.csv"), "--districts",
                    source_path("data/districts.csv")},
                   std::string(), d / "inside.log");
    CHECK(inside.wait() == 2);
    CHECK(read_file(d / "inside.log").find("must be outside the store directory") !=
          std::string::npos);

    REQUIRE(run({"checkpoint", "keygen", "--out", d / "open.key"}).code == 0);
    fs::permissions(d / "open.key", fs::perms::others_read, fs::perm_options::add);
    process loose({std::string(PINGAN_BIN_DIR) + "/pingan-broker", "--data", d / "store",
                   "--insecure-dev", "--checkpoint-key", d / "open.key", "--registry",
                   source_path("data/schools.csv"), "--districts",
                   source_path("data/districts.csv")},
                  std::string(), d / "loose.log");
    CHECK(loose.wait() == 2);
    CHECK(read_file(d / "loose.log").find("owner only") != std::string::npos);
}

TEST_CASE("a clean stop signs the head into the log and the kept directory, and the untouched "
          "store and its export pass verify --checkpoint",
          "[checkpoint]") {
    signed_log l;
    auto c = l.file();
    CHECK(c["offset"] == 4); // the four hazards; the start had nothing to sign
    auto key = parse_signing_key(read_file(l.key));
    CHECK(c["public_key"] == to_hex(key.public_key.data(), 32));
    CHECK(signature_valid(checkpoint_from_json(c)));

    // The same checkpoint is the log's last event, and `pingan checkpoint` prints it.
    auto printed = run({"checkpoint", "--data", l.store});
    REQUIRE(printed.code == 0);
    auto p = json::parse(printed.lines.at(0));
    CHECK(p["stored_at"] == 5);
    p.erase("stored_at");
    CHECK(p == c);

    auto v = run(
        {"verify", "--data", l.store, "--checkpoint", l.checkpoint, "--pubkey", l.key + ".pub"});
    INFO(v.lines.at(0));
    REQUIRE(v.code == 0);
    auto j = json::parse(v.lines.at(0));
    CHECK(j["ok"] == true);
    CHECK(j["checkpoint"]["offset"] == 4);
    CHECK(j["checkpoint"]["key_pinned"] == true);

    // A complete export proves itself against the checkpoint, without the store.
    REQUIRE(run({"export", "--data", l.store, "--out", l.d / "all.jsonl"}).code == 0);
    auto e = run({"verify", "--export", l.d / "all.jsonl", "--checkpoint", l.checkpoint});
    INFO(e.lines.at(0));
    CHECK(e.code == 0);
    // ... and one that stops before it does not reach it.
    REQUIRE(run({"export", "--data", l.store, "--to", "3", "--out", l.d / "three.jsonl"}).code ==
            0);
    auto short_one = run({"verify", "--export", l.d / "three.jsonl", "--checkpoint", l.checkpoint});
    CHECK(short_one.code == 1);
    CHECK(has(short_one, "does not reach the checkpoint's offset 4"));

    // Another key, or an altered checkpoint, is not trusted.
    REQUIRE(run({"checkpoint", "keygen", "--out", l.d / "other.key"}).code == 0);
    auto other = run({"verify", "--data", l.store, "--checkpoint", l.checkpoint, "--pubkey",
                      l.d / "other.key.pub"});
    CHECK(other.code == 1);
    CHECK(has(other, "is signed by key"));
    auto forged = c;
    forged["time"] = "2030-01-01T00:00:00Z";
    std::ofstream(l.d / "forged.json") << forged.dump();
    auto f = run({"verify", "--data", l.store, "--checkpoint", l.d / "forged.json"});
    CHECK(f.code == 1);
    CHECK(has(f, "signature does not verify"));
    std::ofstream(l.d / "garbage.json") << "{\"pingan_checkpoint\":1}";
    auto g = run({"verify", "--data", l.store, "--checkpoint", l.d / "garbage.json"});
    CHECK(g.code == 2);
    CHECK(has(g, "offset: expected a whole number"));
}

TEST_CASE("pingan checkpoint asks the running broker for its signed head", "[checkpoint]") {
    signed_log l;
    broker_process b(l.store, {"--checkpoint-key", l.key, "--checkpoint-dir", l.dir});
    b.export_env();
    // Restarted on a head that is its last checkpoint: nothing new to sign,
    // asked now or not.
    auto r = run({"checkpoint"});
    REQUIRE(r.code == 0);
    auto now = json::parse(r.lines.at(0));
    CHECK(now["stored_at"] == 5);
    now.erase("stored_at");
    CHECK(now == l.file());
    auto last = run({"checkpoint", "--last"});
    REQUIRE(last.code == 0);
    CHECK(json::parse(last.lines.at(0)) == l.file());

    broker_process plain(l.d / "plain");
    plain.export_env();
    auto none = run({"checkpoint"});
    CHECK(none.code == 1);
    CHECK(has(none, "signs no checkpoints"));
}

TEST_CASE("pingan checkpoint has the running broker sign its head at once, and --last gives "
          "the previous one",
          "[checkpoint]") {
    temp_dir d;
    std::string store = d / "store", key = d / "signing.key";
    REQUIRE(run({"checkpoint", "keygen", "--out", key}).code == 0);
    std::string head_file = d / "head.json";
    {
        // An interval far beyond the test: every checkpoint here is asked for.
        broker_process b(store, {"--checkpoint-key", key, "--checkpoint-interval", "86400"});
        b.export_env();
        auto empty = run({"checkpoint"});
        CHECK(empty.code == 1);
        CHECK(has(empty, "the log is empty"));

        for (auto id : {"HZ-1", "HZ-2"})
            REQUIRE(run({"publish", hazard(id)}).code == 0);
        auto first = run({"checkpoint"});
        REQUIRE(first.code == 0);
        auto f = json::parse(first.lines.at(0));
        CHECK(f["offset"] == 2);
        CHECK(f["stored_at"] == 3); // its audit.checkpoint event follows the head it signs
        CHECK(signature_valid(checkpoint_from_json(f)));

        // Nothing new since: the same checkpoint, and no new event.
        auto again = run({"checkpoint"});
        REQUIRE(again.code == 0);
        CHECK(json::parse(again.lines.at(0)) == f);

        REQUIRE(run({"publish", hazard("HZ-3")}).code == 0);
        // --last: what was signed before, not the head with HZ-3 at offset 4.
        auto last = run({"checkpoint", "--last"});
        REQUIRE(last.code == 0);
        auto l = json::parse(last.lines.at(0));
        CHECK(l["offset"] == 2);
        CHECK_FALSE(l.contains("stored_at"));

        auto out = run({"checkpoint", "--out", head_file});
        REQUIRE(out.code == 0);
        CHECK(out.lines.empty());
        auto h = json::parse(read_file(head_file));
        CHECK(h["offset"] == 4);
        CHECK(h["stored_at"] == 5);
        CHECK(signature_valid(checkpoint_from_json(h)));

        // The requested checkpoints are events of the log, trigger "request".
        auto events = run({"replay", "--json", "--type", "audit.checkpoint"});
        REQUIRE(events.code == 0);
        REQUIRE(events.lines.size() == 2);
        for (auto& line : events.lines)
            CHECK(json::parse(line)["body"]["trigger"] == "request");

        auto bad = run({"checkpoint", "--out", d / "missing/dir/head.json"});
        CHECK(bad.code != 0);
        CHECK(has(bad, "cannot write"));
        b.proc->signal(SIGTERM);
        REQUIRE(b.proc->wait() == 0);
    }
    // The file written on demand proves the store, with the key pinned.
    auto v = run({"verify", "--data", store, "--checkpoint", head_file, "--pubkey", key + ".pub"});
    INFO(v.lines.at(0));
    CHECK(v.code == 0);
    auto j = json::parse(v.lines.at(0));
    CHECK(j["checkpoint"]["offset"] == 4);
    CHECK(j["checkpoint"]["key_pinned"] == true);
}

TEST_CASE("an export carries the checkpoint it reaches, and verify --export checks it without "
          "--checkpoint",
          "[checkpoint]") {
    signed_log l;
    // From the store: the clean stop's checkpoint (offset 4) is within 1-5.
    std::string all = l.d / "all.jsonl";
    REQUIRE(run({"export", "--data", l.store, "--out", all}).code == 0);
    auto lines = [](const std::string& file) {
        std::vector<std::string> out;
        std::ifstream in(file);
        for (std::string s; std::getline(in, s);)
            out.push_back(s);
        return out;
    };
    auto header = json::parse(lines(all).at(0));
    CHECK(header["checkpoint"] == l.file());
    auto v = run({"verify", "--export", all, "--pubkey", l.key + ".pub"});
    INFO(v.lines.at(0));
    REQUIRE(v.code == 0);
    auto j = json::parse(v.lines.at(0));
    CHECK(j["checkpoint"]["offset"] == 4);
    CHECK(j["checkpoint"]["from"] == "header");
    CHECK(j["checkpoint"]["key_pinned"] == true);

    // Another key pinned, or a header checkpoint altered, is not trusted.
    REQUIRE(run({"checkpoint", "keygen", "--out", l.d / "other.key"}).code == 0);
    auto other = run({"verify", "--export", all, "--pubkey", l.d / "other.key.pub"});
    CHECK(other.code == 1);
    CHECK(has(other, "is signed by key"));
    auto rows = lines(all);
    auto forged = json::parse(rows[0]);
    forged["checkpoint"]["offset"] = 3;
    rows[0] = forged.dump();
    {
        std::ofstream out(l.d / "forged.jsonl");
        for (auto& r : rows)
            out << r << "\n";
    }
    auto f = run({"verify", "--export", l.d / "forged.jsonl"});
    CHECK(f.code == 1);
    CHECK(has(f, "signature does not verify"));

    // An export that ends before the checkpoint carries none.
    REQUIRE(run({"export", "--data", l.store, "--to", "3", "--out", l.d / "three.jsonl"}).code ==
            0);
    CHECK_FALSE(json::parse(lines(l.d / "three.jsonl").at(0)).contains("checkpoint"));

    // From the broker: it signs its head for the export; without chain hashes
    // the export is proved against the store, checkpoint included.
    std::string live = l.d / "live.jsonl";
    {
        broker_process b(l.store, {"--checkpoint-key", l.key, "--checkpoint-interval", "86400"});
        b.export_env();
        REQUIRE(run({"publish", hazard("HZ-5")}).code == 0); // offset 6
        REQUIRE(run({"export", "--out", live}).code == 0);
        b.proc->signal(SIGTERM);
        REQUIRE(b.proc->wait() == 0);
    }
    auto lh = json::parse(lines(live).at(0));
    CHECK(lh["source"] == "broker");
    CHECK(lh["checkpoint"]["offset"] == 6);
    CHECK(signature_valid(checkpoint_from_json(lh["checkpoint"])));
    auto alone = run({"verify", "--export", live});
    CHECK(alone.code == 1);
    CHECK(has(alone, "carries no chain hashes"));
    auto against = run({"verify", "--export", live, "--data", l.store, "--pubkey", l.key + ".pub"});
    INFO(against.lines.at(0));
    CHECK(against.code == 0);
    CHECK(json::parse(against.lines.at(0))["checkpoint"]["offset"] == 6);
}

TEST_CASE("verify --checkpoint catches a changed byte, a deleted, swapped or inserted record, a "
          "cut tail and a rewritten re-chained history",
          "[checkpoint]") {
    signed_log l;
    const std::uint64_t head = 5; // four hazards and the checkpoint event
    struct tamper {
        const char* what;
        std::function<void(lmdb::txn&, MDB_dbi, MDB_dbi)> edit;
        const char* says;
    };
    std::vector<tamper> cases{
        {"a changed byte",
         [](lmdb::txn& t, MDB_dbi ev, MDB_dbi) {
             auto v = value_at(t, ev, 2);
             v[v.size() - 3] ^= 1;
             lmdb::put(t, ev, lmdb::be64(2), v);
         },
         "the history up to the checkpoint was rewritten"},
        {"a deleted record",
         [](lmdb::txn& t, MDB_dbi ev, MDB_dbi) { lmdb::del(t, ev, lmdb::be64(3)); },
         "record 3 is missing"},
        {"two records swapped",
         [](lmdb::txn& t, MDB_dbi ev, MDB_dbi) {
             auto a = value_at(t, ev, 2), b = value_at(t, ev, 3);
             lmdb::put(t, ev, lmdb::be64(2), b);
             lmdb::put(t, ev, lmdb::be64(3), a);
         },
         "the history up to the checkpoint was rewritten"},
        {"an inserted record",
         [head](lmdb::txn& t, MDB_dbi ev, MDB_dbi meta) {
             // Everything from offset 2 moves up one; a new record takes its place.
             for (auto off = head; off >= 2; --off) {
                 auto v = value_at(t, ev, off);
                 lmdb::put(t, ev, lmdb::be64(off + 1),
                           v.substr(0, 32) + record_with(v.substr(32), off + 1, ""));
             }
             auto v = value_at(t, ev, 1);
             lmdb::put(t, ev, lmdb::be64(2), v.substr(0, 32) + record_with(v.substr(32), 2, "无"));
             rechain(t, ev, meta, head + 1);
         },
         "the history up to the checkpoint was rewritten"},
        {"a cut tail",
         [head](lmdb::txn& t, MDB_dbi ev, MDB_dbi meta) {
             for (auto off = head; off >= 3; --off)
                 lmdb::del(t, ev, lmdb::be64(off));
             rechain(t, ev, meta, 2);
         },
         "the store ends at offset 2, before the checkpoint's offset 4"},
        {"a rewritten, re-chained history",
         [head](lmdb::txn& t, MDB_dbi ev, MDB_dbi meta) {
             auto v = value_at(t, ev, 2);
             lmdb::put(t, ev, lmdb::be64(2),
                       v.substr(0, 32) + record_with(v.substr(32), 2, "无隐患"));
             rechain(t, ev, meta, head);
         },
         "the history up to the checkpoint was rewritten"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto copy = l.d / "copy";
        fs::remove_all(copy);
        fs::create_directories(copy);
        fs::copy(l.store, copy, fs::copy_options::recursive);
        fs::remove(copy + "/writer.lock");
        edit_store(copy, c.edit);
        auto v = run(
            {"verify", "--data", copy, "--checkpoint", l.checkpoint, "--pubkey", l.key + ".pub"});
        REQUIRE_FALSE(v.lines.empty());
        INFO(v.lines.at(0));
        CHECK(v.code == 1);
        auto j = json::parse(v.lines.at(0));
        CHECK(j["ok"] == false);
        CHECK(j["problem"].get<std::string>().find(c.says) != std::string::npos);
    }
    // Re-chained edits verify on their own: only the checkpoint exposes them.
    CHECK(run({"verify", "--data", l.store, "--checkpoint", l.checkpoint}).code == 0);
}
