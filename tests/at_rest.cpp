// Minors' data at rest on a real broker process: the bytes of its store, of a
// backup and of its log hold no student reference; cleared replays read them;
// `pingan keys shred` makes them unreadable while the chain still verifies.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/curve.hpp"
#include "common/key_ring.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace pingan;
using namespace pingan::test;

namespace {

const std::string secret_ref = "stu-SECRET-7731";
const std::string secret_code = "IND-SECRET-42";

bool holds(const std::string& bytes, const std::string& text) {
    return bytes.find(text) != std::string::npos;
}

event psych_event(std::string ref) {
    auto e = sample_hazard("420502K001");
    psych_alert a;
    a.alert_id = "PA-31";
    a.student_ref = std::move(ref);
    a.level = risk_level::red;
    a.source = psych_source::teacher;
    a.indicator_codes = {secret_code, "SH.2"};
    a.reported_by_role = "psych_teacher";
    e.body = a;
    e.scope = scope::private_;
    return e;
}

// A secured broker with keys: a school that publishes, an uncleared bureau
// and a cleared county counselling centre.
struct sealed_broker {
    curve_keypair server = curve_generate(), school = curve_generate(), bureau = curve_generate(),
                  centre = curve_generate();
    temp_dir d;
    std::string store_dir = d / "store", keys_dir = d / "keys", log = d / "broker.log";
    std::unique_ptr<broker_process> b;
    zmq::context_t ctx{1};

    explicit sealed_broker(bool with_keys = true) {
        write_key(d / "server.key", server);
        std::ofstream(d / "clients.yaml")
            << "clients:\n"
               "  - identity: school:420502K001\n    key: \""
            << school.public_key
            << "\"\n    scope: {school: 420502K001}\n    may: [publish, query]\n"
               "  - identity: bureau:420502\n    key: \""
            << bureau.public_key
            << "\"\n    scope: {district: \"420502\"}\n    may: [query]\n"
               "  - identity: county-centre:420502\n    key: \""
            << centre.public_key
            << "\"\n    scope: {district: \"420502\"}\n    may: [query]\n    clearance: [minors]\n";
        std::vector<std::string> args{
            "--server-key",     d / "server.key", "--clients",
            d / "clients.yaml", "--rules",        source_path("config/rules/yichang-default.yaml")};
        if (with_keys) {
            args.push_back("--keys");
            args.push_back(keys_dir);
        }
        b = std::make_unique<broker_process>(store_dir, args, log, "debug");
    }

    std::uint64_t publish(const event& e) {
        curve_client c{school, server.public_key};
        ingest_client pub(ctx, b->ingest, &c);
        std::vector<std::string> frames{encode(e)};
        pub.send(frames, false, "t");
        auto r = pub.receive(std::chrono::seconds(10));
        REQUIRE(r);
        REQUIRE(r->results.at(0).what == wire::outcome::stored);
        return r->results.at(0).offset;
    }

    // The psych alerts a client reads by replay.
    std::vector<psych_alert> replay(const curve_keypair& who) {
        curve_client c{who, server.public_key};
        query_client q(ctx, b->query, &c);
        std::vector<psych_alert> out;
        q.replay({}, [&](std::uint64_t, std::string_view bytes) {
            event e;
            if (!decode(bytes, e) && e.type() == "psych.alert")
                out.push_back(std::get<psych_alert>(e.body));
            return true;
        });
        return out;
    }
};

} // namespace

TEST_CASE("a student reference is in no byte of the store, a backup or the log, and a cleared "
          "replay reads it",
          "[at_rest]") {
    sealed_broker s;
    s.publish(psych_event(secret_ref));

    // A backup taken while the broker runs (one consistent commit), then the raw files.
    auto backup = run({"backup", "--data", s.store_dir, s.d / "backup"});
    REQUIRE(backup.code == 0);
    auto store_bytes = read_file(s.store_dir + "/data.mdb");
    auto backup_bytes = read_file(s.d / "backup/data.mdb");
    REQUIRE(holds(store_bytes, "420502K001")); // the envelope is in clear
    REQUIRE(holds(backup_bytes, "420502K001"));
    CHECK_FALSE(holds(store_bytes, secret_ref));
    CHECK_FALSE(holds(store_bytes, secret_code));
    CHECK_FALSE(holds(backup_bytes, secret_ref));
    CHECK_FALSE(holds(backup_bytes, secret_code));

    // Cleared: the reference; uncleared: redacted, as before.
    auto full = s.replay(s.centre);
    REQUIRE(full.size() == 1);
    CHECK(full[0].student_ref == secret_ref);
    CHECK(full[0].indicator_codes == std::vector<std::string>{secret_code, "SH.2"});
    auto seen = s.replay(s.bureau);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].student_ref == "redacted");
    CHECK(seen[0].level == risk_level::red);

    // A cleared export carries the clear values.
    write_key(s.d / "centre.key", s.centre);
    s.b->export_env();
    auto exp = run({"export", "--key", s.d / "centre.key", "--server-key",
                    "z85:" + s.server.public_key, "--out", s.d / "export.jsonl"});
    REQUIRE(exp.code == 0);
    CHECK(holds(read_file(s.d / "export.jsonl"), secret_ref));
    // It still checks against the sealed store (the centre's district is
    // recorded as the export's filter): every record compared, the sealed
    // values with both sides redacted, since the store holds only ciphertext.
    auto checked = run({"verify", "--export", s.d / "export.jsonl", "--data", s.store_dir});
    REQUIRE_FALSE(checked.lines.empty());
    INFO(checked.lines[0]);
    CHECK(checked.code == 0);
    CHECK(holds(checked.lines[0], "\"sealed_unchecked\":1"));
    CHECK(holds(read_file(s.d / "export.jsonl"), "\"district\":\"420502\""));
    // A changed clear value of that event is still caught.
    {
        std::ifstream in(s.d / "export.jsonl");
        std::ofstream out(s.d / "altered.jsonl");
        for (std::string line; std::getline(in, line);) {
            if (line.find("psych.alert") != std::string::npos) {
                auto j = json::parse(line);
                j["body"]["risk_level"] = "yellow";
                line = j.dump();
            }
            out << line << "\n";
        }
    }
    auto altered = run({"verify", "--export", s.d / "altered.jsonl", "--data", s.store_dir});
    CHECK(altered.code == 1);

    // The log at debug level, with the escalation the alert caused, holds neither.
    s.b.reset();
    auto log = read_file(s.log);
    REQUIRE_FALSE(log.empty());
    CHECK_FALSE(holds(log, secret_ref));
    CHECK_FALSE(holds(log, secret_code));

    // Keys live outside the store, owner-only.
    auto keys = run({"keys", "list", "--keys", s.keys_dir});
    REQUIRE(keys.code == 0);
    REQUIRE(keys.lines.size() == 1);
    CHECK(holds(keys.lines[0], "live"));
    for (const auto& f : std::filesystem::directory_iterator(s.keys_dir))
        CHECK((f.status().permissions() &
               (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
              std::filesystem::perms::none);
}

TEST_CASE("after pingan keys shred of its month a cleared replay shows the values shredded and "
          "pingan verify passes",
          "[at_rest]") {
    sealed_broker s;
    s.publish(psych_event(secret_ref));
    REQUIRE(s.replay(s.centre).at(0).student_ref == secret_ref);

    auto list = run({"keys", "list", "--keys", s.keys_dir});
    REQUIRE(list.code == 0);
    REQUIRE(list.lines.size() == 1);
    auto period = list.lines[0].substr(0, 7); // YYYY-MM
    auto shred = run({"keys", "shred", period, "--keys", s.keys_dir});
    REQUIRE(shred.code == 0);
    CHECK(holds(shred.lines.at(0), "shredded " + period));
    CHECK_FALSE(std::filesystem::exists(s.keys_dir + "/" + period + ".key"));

    // The running broker reads the key directory again: no restart.
    auto full = s.replay(s.centre);
    REQUIRE(full.size() == 1);
    CHECK(full[0].student_ref == shredded);
    CHECK(full[0].indicator_codes ==
          std::vector<std::string>{std::string(shredded), std::string(shredded)});
    CHECK(full[0].level == risk_level::red); // the rest of the record is whole
    CHECK(full[0].alert_id == "PA-31");

    auto verify = run({"verify", "--data", s.store_dir});
    CHECK(verify.code == 0);

    // A new alert after the shred is sealed with a new key and reads back.
    auto later = psych_event("stu-LATER-1");
    later.id = new_event_id(later.occurred_at);
    s.publish(later);
    full = s.replay(s.centre);
    REQUIRE(full.size() == 2);
    CHECK(full[0].student_ref == shredded);
    CHECK(full[1].student_ref == "stu-LATER-1");

    // Shredding a period with no live key says so.
    CHECK(run({"keys", "shred", "1999-01", "--keys", s.keys_dir}).code == 1);
    CHECK(run({"keys", "shred", "../etc", "--keys", s.keys_dir}).code == 2);
    s.b.reset();
    CHECK(run({"verify", "--data", s.store_dir}).code == 0);
}

TEST_CASE("pingan keys rotate makes the broker's next values use a new key, old ones still read",
          "[at_rest]") {
    sealed_broker s;
    s.publish(psych_event("stu-FIRST-1"));
    auto r = run({"keys", "rotate", "--keys", s.keys_dir});
    REQUIRE(r.code == 0);
    REQUIRE(r.lines.size() == 1);
    CHECK(holds(r.lines[0], ".2"));
    auto second = psych_event("stu-SECOND-2");
    second.id = new_event_id(second.occurred_at);
    s.publish(second);
    auto full = s.replay(s.centre);
    REQUIRE(full.size() == 2);
    CHECK(full[0].student_ref == "stu-FIRST-1");
    CHECK(full[1].student_ref == "stu-SECOND-2");
    // Shredding the rotated key alone leaves the month's first key readable.
    REQUIRE(run({"keys", "shred", r.lines[0], "--keys", s.keys_dir}).code == 0);
    full = s.replay(s.centre);
    REQUIRE(full.size() == 2);
    CHECK(full[0].student_ref == "stu-FIRST-1");
    CHECK(full[1].student_ref == shredded);
}

TEST_CASE("without keys the broker stores minors' data in clear and says so", "[at_rest]") {
    sealed_broker s(false);
    s.publish(psych_event(secret_ref));
    CHECK(holds(read_file(s.store_dir + "/data.mdb"), secret_ref));
    CHECK(s.replay(s.centre).at(0).student_ref == secret_ref);
    s.b.reset();
    CHECK(holds(read_file(s.log), "stored in clear"));
}

TEST_CASE("the broker refuses a key directory inside its store directory", "[at_rest]") {
    temp_dir d;
    std::vector<std::string> argv{std::string(PINGAN_BIN_DIR) + "/pingan-broker",
                                  "--data",
                                  d / "store",
                                  "--keys",
                                  d / "store/keys",
                                  "--registry",
                                  source_path("data/schools.csv"),
                                  "--districts",
                                  source_path("data/districts.csv"),
                                  "--ingest",
                                  "tcp://127.0.0.1:*",
                                  "--feed",
                                  "tcp://127.0.0.1:*",
                                  "--query",
                                  "tcp://127.0.0.1:*"};
    argv.insert(argv.begin(), {"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh"});
    process broker(argv);
    auto lines = broker.lines(std::chrono::seconds(20));
    CHECK(broker.wait() == 2);
    bool said = false;
    for (const auto& l : lines)
        if (holds(l, "must be outside the store directory")) said = true;
    CHECK(said);
}
