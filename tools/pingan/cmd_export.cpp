// pingan export: events for inspectors, as JSON Lines that carry their chain
// segment (so that `pingan verify --export` proves them against the log) or
// as CSV for spreadsheets (UTF-8, optional BOM, RFC 4180, China time).
//
// The events come from the broker's REPLAY (or INCIDENT), which redacts
// minors' details unless the caller's key is cleared; or, with --data, from a
// store directory read directly (read-only), redacted with the same function
// the broker uses, and then the segment also carries the log's chain hashes.
// The format is in docs/audit.md.
#include "broker/store/store.hpp"
#include "common/client.hpp"
#include "common/key_ring.hpp"
#include "common/privacy.hpp"
#include "services/common/photos.hpp"
#include "tools/pingan/audit.hpp"
#include "tools/pingan/commands.hpp"
#include "tools/pingan/render.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

namespace pingan::cli {
namespace {

struct export_args {
    filter_options f;
    std::string format = "jsonl";
    bool bom = false;
    std::string out, data_dir, term, incident;
    std::uint64_t from = 1, to = 0;
    std::string since, until;
    std::string photos_dir;                // --photos: where the named photos are written
    std::vector<std::string> photo_stores; // --photo-store: photo stores to read them from
};

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

// ---- the events and their segment ----

struct exported {
    std::vector<json> events;
    json segment; // from, to, prev_hash, first_hash, last_hash (hashes: with --data only)
    json filter;
    std::uint64_t redacted = 0;
    std::string source;
    std::string scope; // from the broker: the caller's scope, when narrower than the city
    json photos;       // with --photos: {dir, files, missing}
    json checkpoint;   // the newest signed checkpoint within the segment, if any
};

// Does a checkpoint at `offset` fall where verify --export can check it: the
// segment's records, or the hash just before them?
bool within(const json& segment, std::uint64_t offset) {
    auto from = segment.value("from", std::uint64_t{0}), to = segment.value("to", std::uint64_t{0});
    return from && offset + 1 >= from && offset <= to;
}

// The filter an export applied, as recorded in its header (and re-applied by verify).
json filter_json(const export_args& a) {
    json f = json::object();
    if (!a.f.types.empty()) f["types"] = a.f.types;
    if (!a.f.exclude.empty()) f["exclude"] = a.f.exclude;
    if (!a.f.school.empty()) f["school"] = a.f.school;
    if (!a.f.district.empty()) f["district"] = a.f.district;
    if (!a.term.empty()) f["term"] = a.term;
    if (!a.since.empty()) f["since"] = a.since;
    if (!a.until.empty()) f["until"] = a.until;
    if (!a.incident.empty()) f["incident"] = a.incident;
    return f;
}

bool redacted_minors(const event& e) {
    if (!carries_minors_details(e.type())) return false;
    auto body = body_to_json(e.body);
    for (auto field : classified_fields(e.type())) {
        auto it = body.find(std::string(field));
        if (it == body.end()) continue;
        if (it->is_string() && *it == redacted) return true;
        if (it->is_array() && !it->empty() && (*it)[0] == redacted) return true;
    }
    return false;
}

// The offsets a filter's times resolve to, or the term's.
void time_bounds(const export_args& a, std::string& since, std::string& until) {
    since = a.since;
    until = a.until;
    if (!a.term.empty()) {
        auto t = parse_term(a.term);
        if (!t) fatal("--term " + a.term + ": not a school term; " + term_help);
        if (!since.empty() || !until.empty())
            fatal("--term and --since/--until exclude each other");
        since = format_utc(t->from);
        until = format_utc(t->to - micros{1});
    }
    for (const auto* t : {&since, &until})
        if (!t->empty() && !parse_utc(*t)) fatal("not an RFC 3339 time: " + *t);
}

std::string hash_hex(const chain_hash& h) {
    return hex(h);
}

// From a store directory: the chain hashes of the segment's ends come with it.
exported from_store(const export_args& a, const std::string& dir) {
    exported x;
    x.source = "store";
    std::string since, until;
    time_bounds(a, since, until);
    try {
        store_options o;
        o.path = dir;
        o.read_only = true;
        store s(o);
        std::uint64_t from = a.from, to = a.to;
        if (!a.incident.empty()) {
            auto r = incident_from_store(dir, a.incident, a.f.school);
            for (auto& e : r.events)
                x.events.push_back(std::move(e));
            if (x.events.empty()) fatal("incident " + a.incident + " has no events", 1);
            from = x.events.front()["offset"].get<std::uint64_t>();
            to = x.events.back()["offset"].get<std::uint64_t>();
            for (const auto& e : x.events) {
                event ev;
                if (!from_json(e, ev) && redacted_minors(ev)) ++x.redacted;
            }
        } else {
            scan_filter f;
            f.from = from;
            f.to = to;
            if (!since.empty()) f.from_time = parse_utc(since);
            if (!until.empty()) f.to_time = parse_utc(until);
            f.type_prefix = a.f.broker_type();
            f.school = a.f.school;
            f.district = a.f.district;
            std::tie(from, to) = s.range(f);
            f.from = from;
            f.to = to;
            f.from_time.reset();
            f.to_time.reset();
            while (to && f.from <= f.to) {
                auto next = s.scan(f, 1000, [&](std::uint64_t off, std::string_view rec) {
                    event e;
                    if (auto p = decode(rec, e))
                        fatal("record " + std::to_string(off) + " does not decode: " + p.text(), 1);
                    e.offset = off;
                    if (!a.f.matches(e)) return true;
                    if (redact_minors(e)) ++x.redacted;
                    x.events.push_back(to_json(e));
                    return true;
                });
                if (next <= f.from) break;
                f.from = next;
            }
        }
        // The segment: the records [from, to] of the log and the hashes at its ends.
        x.segment = {{"from", from}, {"to", to}};
        if (from >= 1 && to >= from && to <= s.head()) {
            chain_hash h{};
            for (std::uint64_t off = 1; off <= to; ++off) {
                auto rec = s.get(off);
                if (!rec) fatal("record " + std::to_string(off) + " is missing from " + dir, 1);
                if (off == from) x.segment["prev_hash"] = hash_hex(h);
                h = chain_next(h, off, *rec);
                if (off == from) x.segment["first_hash"] = hash_hex(h);
            }
            x.segment["last_hash"] = hash_hex(h);
        }
        // The newest checkpoint the segment reaches: its audit.checkpoint
        // event is stored after the head it signs, so look back from the head.
        for (auto off = s.head(); off >= 1 && off >= from; --off) {
            auto rec = s.get(off);
            event_head eh;
            if (!rec || !peek(*rec, eh) || eh.type != audit_checkpoint::type) continue;
            event e;
            if (decode(*rec, e)) continue;
            const auto& b = std::get<audit_checkpoint>(e.body);
            if (b.offset > to) continue;
            if (within(x.segment, b.offset))
                x.checkpoint =
                    to_json(checkpoint{b.offset, b.hash, b.signed_at, b.public_key, b.signature});
            break; // older ones sign smaller offsets
        }
    } catch (const error& e) {
        fatal(dir + ": " + e.detail());
    }
    return x;
}

// From the broker: REPLAY (or INCIDENT), redacted as the caller's key allows.
exported from_broker(const export_args& a) {
    exported x;
    x.source = "broker";
    if (!a.incident.empty()) {
        // The broker logs what it returns as access.viewed, what "export".
        auto r = incident_from_broker(a.incident, a.f.school, "export");
        for (auto& e : r.events)
            x.events.push_back(std::move(e));
        if (r.truncated)
            fatal("the broker cut incident " + a.incident + "'s events; use --data", 1);
    } else {
        std::string since, until;
        time_bounds(a, since, until);
        zmq::context_t ctx(1);
        query_client q(ctx, endpoints().query, curve());
        announce_waiting(q.link());
        // The broker narrows a scoped caller's replay to its school or
        // district: the header records that as part of the filter, so that
        // verify --data compares with the same records.
        try {
            if (auto st = q.stats(answer_timeout()); st.contains("scope"))
                x.scope = st["scope"].get<std::string>();
        } catch (const error& e) {
            fail(e);
        }
        // The broker signs its head now, before the replay opens: the replay
        // reaches at least that head. A broker without a checkpoint key has none.
        try {
            x.checkpoint = q.request("CHECKPOINT", json{{"now", true}}, answer_timeout());
            x.checkpoint.erase("stored_at");
        } catch (const error& e) {
            if (e.code() != errc::not_found) fail(e);
            x.checkpoint = json();
        }
        replay_request r;
        r.from = a.from;
        r.to = a.to;
        r.from_time = since;
        r.to_time = until;
        r.type = a.f.broker_type();
        r.school = a.f.school;
        r.district = a.f.district;
        r.credit = 2000;
        r.purpose = "export"; // the broker logs it as access.viewed
        try {
            q.replay(
                r,
                [&](std::uint64_t off, std::string_view payload) {
                    event e;
                    if (auto p = decode(payload, e))
                        fatal("record " + std::to_string(off) + " does not decode: " + p.text(), 1);
                    e.offset = off;
                    if (a.f.matches(e)) x.events.push_back(to_json(e));
                    return true;
                },
                answer_timeout());
        } catch (const error& e) {
            fail(e);
        }
    }
    for (const auto& e : x.events) {
        event ev;
        if (!from_json(e, ev) && redacted_minors(ev)) ++x.redacted;
    }
    std::uint64_t from = x.events.empty() ? 0 : x.events.front()["offset"].get<std::uint64_t>();
    std::uint64_t to = x.events.empty() ? 0 : x.events.back()["offset"].get<std::uint64_t>();
    x.segment = {{"from", from}, {"to", to}};
    if (x.checkpoint.is_object() && !within(x.segment, x.checkpoint["offset"].get<std::uint64_t>()))
        x.checkpoint = json();
    return x;
}

// ---- writers ----

json header_of(const exported& x) {
    bool complete = false;
    if (x.segment.contains("first_hash")) {
        auto from = x.segment["from"].get<std::uint64_t>(),
             to = x.segment["to"].get<std::uint64_t>();
        complete = x.redacted == 0 && x.events.size() == to - from + 1;
    }
    json h{{"pingan_export", 1},   {"source", x.source},       {"filter", x.filter},
           {"segment", x.segment}, {"count", x.events.size()}, {"redacted", x.redacted},
           {"complete", complete}};
    if (!x.photos.is_null()) h["photos"] = x.photos;
    if (x.checkpoint.is_object()) h["checkpoint"] = x.checkpoint;
    return h;
}

// ---- photos ----

// A photo an exported event names: its hash, size and type, and the first
// event (offset) that names it.
struct named_photo {
    std::string hash, type;
    std::uint64_t size = 0, offset = 0;
};

// The photos the events name, each once, in the order first named. Events
// are read as exported (JSON), so a photo named by no valid reference is not
// listed: verify --export refuses such events anyway.
std::vector<named_photo> photos_named(const std::vector<json>& events) {
    std::vector<named_photo> out;
    std::set<std::string> seen;
    for (const auto& e : events) {
        if (!e.contains("body") || !e["body"].is_object()) continue;
        auto refs = e["body"].find("photo_refs");
        if (refs == e["body"].end() || !refs->is_array()) continue;
        for (const auto& r : *refs) {
            if (!r.is_object() || !r.contains("hash") || !r["hash"].is_string()) continue;
            named_photo p{r["hash"].get<std::string>(), r.value("type", ""),
                          r.value("size", std::uint64_t{0}), e.value("offset", std::uint64_t{0})};
            if (seen.insert(p.hash).second) out.push_back(std::move(p));
        }
    }
    return out;
}

std::string photo_file(const named_photo& p) {
    return p.hash + "." + std::string(svc::photo_extension(p.type));
}

// Writes every photo the events name into `a.photos_dir` as HASH.jpg (or
// .png), from the first of the photo stores that holds bytes hashing to the
// name and of the size the event records. Returns the header's `photos`.
json copy_photos(const export_args& a, const std::vector<json>& events) {
    std::vector<std::unique_ptr<svc::photo_store>> stores;
    for (const auto& dir : a.photo_stores) {
        try {
            stores.push_back(std::make_unique<svc::photo_store>(dir, true));
        } catch (const error& e) {
            fatal("--photo-store " + e.detail());
        }
    }
    std::error_code ec;
    std::filesystem::create_directories(a.photos_dir, ec);
    if (ec) fatal("cannot make " + a.photos_dir + ": " + ec.message());
    std::uint64_t files = 0;
    json missing = json::array();
    for (const auto& p : photos_named(events)) {
        std::string why = "in none of the photo stores";
        std::optional<std::string> bytes;
        for (const auto& st : stores) {
            auto got = st->get(p.hash);
            if (!got) continue;
            if (svc::photo_hash(got->bytes) != p.hash) {
                why = "a store's copy does not hash to its name";
                continue;
            }
            if (got->bytes.size() != p.size) {
                why = "a store's copy has " + std::to_string(got->bytes.size()) +
                      " bytes, the event says " + std::to_string(p.size);
                continue;
            }
            bytes = std::move(got->bytes);
            break;
        }
        if (!bytes) {
            missing.push_back({{"hash", p.hash}, {"offset", p.offset}, {"problem", why}});
            continue;
        }
        auto path = a.photos_dir + "/" + photo_file(p);
        auto part = path + ".part";
        {
            std::ofstream f(part, std::ios::binary | std::ios::trunc);
            f.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
            f.flush();
            if (!f) fatal("cannot write " + part);
        }
        std::filesystem::rename(part, path, ec);
        if (ec) fatal("cannot write " + path + ": " + ec.message());
        ++files;
    }
    return json{{"dir", a.photos_dir}, {"files", files}, {"missing", std::move(missing)}};
}

void write_jsonl(std::ostream& out, const exported& x) {
    out << dump(header_of(x)) << "\n";
    for (const auto& e : x.events)
        out << dump(e) << "\n";
}

// RFC 4180: quoted when it holds a comma, a quote, CR or LF; quotes doubled.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    return q + "\"";
}

// A time for a spreadsheet: China time without the zone (the column says CST).
std::string cst(const std::string& utc) {
    auto t = parse_utc(utc);
    if (!t) return utc;
    auto s = format_local(*t); // "2026-11-29 15:31:50 CST"
    if (s.ends_with(" CST")) s.resize(s.size() - 4);
    return s;
}

bool looks_like_time(const std::string& s) {
    return s.size() >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && parse_utc(s);
}

std::string cell(const json& v) {
    if (v.is_null()) return {};
    if (v.is_string()) {
        auto s = v.get<std::string>();
        return looks_like_time(s) ? cst(s) : s;
    }
    if (v.is_array()) {
        std::string s;
        for (const auto& x : v)
            s += (s.empty() ? "" : "; ") + (x.is_string() ? x.get<std::string>() : dump(x));
        return s;
    }
    return dump(v);
}

void write_csv(std::ostream& out, const exported& x, bool bom, const registry* reg) {
    if (bom) out << "\xEF\xBB\xBF";
    // One column per field: the envelope, then every body field that occurs,
    // in the order first met.
    std::vector<std::string> body_fields;
    std::set<std::string> seen;
    for (const auto& e : x.events)
        for (const auto& [k, v] : e["body"].items())
            if (seen.insert(k).second) body_fields.push_back(k);
    std::vector<std::string> head{"offset",
                                  "id",
                                  "type",
                                  "school",
                                  "学校",
                                  "district",
                                  "occurred_at (CST)",
                                  "received_at (CST)",
                                  "status",
                                  "severity",
                                  "urgency",
                                  "certainty",
                                  "scope",
                                  "source",
                                  "actor",
                                  "references"};
    std::string line;
    for (const auto& h : head)
        line += (line.empty() ? "" : ",") + csv_field(h);
    for (const auto& f : body_fields)
        line += "," + csv_field("body." + f);
    out << line << "\r\n";
    for (const auto& e : x.events) {
        auto school = e.value("school", "");
        std::string name;
        if (reg)
            if (auto* s = reg->find(school)) name = s->name;
        std::vector<std::string> row{cell(e["offset"]),
                                     cell(e["id"]),
                                     cell(e["type"]),
                                     school,
                                     name,
                                     cell(e.value("district", json())),
                                     cell(e["occurred_at"]),
                                     cell(e.value("received_at", json())),
                                     cell(e["status"]),
                                     cell(e["severity"]),
                                     cell(e["urgency"]),
                                     cell(e["certainty"]),
                                     cell(e["scope"]),
                                     cell(e.value("source", json())),
                                     cell(e.value("actor", json())),
                                     cell(e["references"])};
        for (const auto& f : body_fields)
            row.push_back(cell(e["body"].value(f, json())));
        line.clear();
        for (std::size_t i = 0; i < row.size(); ++i)
            line += (i ? "," : "") + csv_field(row[i]);
        out << line << "\r\n";
    }
}

void run(const export_args& a) {
    if (a.format != "jsonl" && a.format != "csv") fatal("--format is jsonl or csv");
    if (a.bom && a.format != "csv") fatal("--bom is for --format csv");
    if (!a.photos_dir.empty() && a.photo_stores.empty())
        fatal("--photos needs --photo-store: the photo store to copy them from (the console's "
              "<data>/photos or a school service's <data>/photos)");
    if (a.photos_dir.empty() && !a.photo_stores.empty())
        fatal("--photo-store goes with --photos DIR");
    auto reg = load_registry(a.f);
    check_filters(a.f, reg ? &*reg : nullptr);
    if (!a.incident.empty() &&
        (a.from != 1 || a.to || !a.since.empty() || !a.until.empty() || !a.term.empty() ||
         !a.f.types.empty() || !a.f.exclude.empty() || !a.f.district.empty()))
        fatal("--incident exports the incident's own events: it takes no other filter "
              "(--school only to name the school of a subject)");
    auto dir = data_dir_or_env(a.data_dir);
    auto x = dir.empty() ? from_broker(a) : from_store(a, dir);
    x.filter = filter_json(a);
    if (x.scope.starts_with("district ") && !x.filter.contains("district"))
        x.filter["district"] = x.scope.substr(9);
    if (x.scope.starts_with("school ")) x.filter["school"] = x.scope.substr(7);
    if (!a.photos_dir.empty()) x.photos = copy_photos(a, x.events);
    std::ofstream file;
    if (!a.out.empty()) {
        file.open(a.out, std::ios::binary | std::ios::trunc);
        if (!file) fatal("cannot write " + a.out);
    }
    std::ostream& out = a.out.empty() ? std::cout : file;
    if (a.format == "jsonl")
        write_jsonl(out, x);
    else
        write_csv(out, x, a.bom, reg ? &*reg : nullptr);
    out.flush();
    if (!out) fatal("cannot write " + (a.out.empty() ? std::string("standard output") : a.out));
    if (x.source == "store")
        std::cerr << "pingan: this export is not logged: it read the store directly, read-only, "
                     "and nothing is written to the log; export through the broker to have it "
                     "logged as access.viewed\n";
    if (!a.out.empty())
        std::cerr << "pingan: " << x.events.size() << " events (offsets "
                  << x.segment["from"].get<std::uint64_t>() << "-"
                  << x.segment["to"].get<std::uint64_t>() << ", " << x.redacted
                  << " redacted) written to " << a.out << "\n";
    if (!x.photos.is_null()) {
        std::cerr << "pingan: " << x.photos["files"].get<std::uint64_t>() << " photos written to "
                  << a.photos_dir << "\n";
        for (const auto& m : x.photos["missing"])
            std::cerr << "pingan: photo " << m["hash"].get<std::string>()
                      << " named by the event at offset " << m["offset"].get<std::uint64_t>()
                      << " not written: " << m["problem"].get<std::string>() << "\n";
        if (!x.photos["missing"].empty()) exit_code() = 1;
    }
}

} // namespace

void add_export_command(CLI::App& app) {
    auto a = std::make_shared<export_args>();
    auto* cmd = app.add_subcommand(
        "export", "Export events for inspectors: JSON Lines carrying their chain segment (check "
                  "with pingan verify --export) or CSV for spreadsheets");
    cmd->add_option("--format", a->format, "jsonl or csv")
        ->check(CLI::IsMember({"jsonl", "csv"}))
        ->capture_default_str();
    cmd->add_flag("--bom", a->bom, "CSV: begin with a UTF-8 byte order mark (for Excel)");
    cmd->add_option("--out", a->out, "write to this file instead of standard output");
    cmd->add_option("--from", a->from, "first offset")->capture_default_str();
    cmd->add_option("--to", a->to, "last offset (default: the head)");
    cmd->add_option("--since", a->since, "received at or after this time (RFC 3339)");
    cmd->add_option("--until", a->until, "received at or before this time (RFC 3339)");
    cmd->add_option("--term", a->term, term_help);
    cmd->add_option("--incident", a->incident,
                    "only the events of this incident (id, or a subject with --school)");
    cmd->add_option("--data", a->data_dir,
                    "read this store directory instead of asking the broker; the export then "
                    "carries the chain hashes of its segment ($PINGAN_DATA)");
    cmd->add_option("--photos", a->photos_dir,
                    "also write every photo the exported events name into this folder, as "
                    "HASH.jpg or HASH.png (check with pingan verify --export --photos)");
    cmd->add_option("--photo-store", a->photo_stores,
                    "a photo store to read them from, opened read-only: the console's "
                    "<data>/photos or a school service's <data>/photos (repeatable)");
    add_filter_options(*cmd, a->f);
    add_endpoint_options(*cmd, false, false, true);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(35, add_export_command);

// ---- pingan verify --export ----

namespace {

std::string chain_at(const store& s, std::uint64_t offset) {
    chain_hash h{};
    for (std::uint64_t off = 1; off <= offset; ++off) {
        auto rec = s.get(off);
        if (!rec) return {};
        h = chain_next(h, off, *rec);
    }
    return hex(h);
}

} // namespace

// True if a stored event (as JSON) holds a sealed classified value.
static bool sealed_minors(const json& e) {
    auto type = e.value("type", std::string());
    if (!carries_minors_details(type) || !e.contains("body")) return false;
    const auto& body = e["body"];
    for (auto f : classified_fields(type)) {
        auto it = body.find(std::string(f));
        if (it == body.end()) continue;
        if (it->is_string() && is_sealed(it->get<std::string>())) return true;
        if (it->is_array())
            for (const auto& x : *it)
                if (x.is_string() && is_sealed(x.get<std::string>())) return true;
    }
    return false;
}

// Every photo the events name must be in `dir` as HASH.EXT with the size the
// event records and bytes that hash to its name. Returns: the problem, or "".
static std::string check_photos(const std::vector<json>& events, const std::string& dir,
                                std::uint64_t& checked) {
    for (const auto& p : photos_named(events)) {
        auto path = dir + "/" + photo_file(p);
        std::ifstream f(path, std::ios::binary);
        auto at = " named by the event at offset " + std::to_string(p.offset);
        if (!f) return "the photo " + p.hash + at + " is missing: no " + path;
        std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (bytes.size() != p.size)
            return "the photo " + path + at + " has " + std::to_string(bytes.size()) +
                   " bytes, the event says " + std::to_string(p.size) + ": the photo was altered";
        if (svc::photo_hash(bytes) != p.hash)
            return "the photo " + path + at + " does not hash to its name: the photo was altered";
        ++checked;
    }
    return {};
}

int verify_export(const std::string& file, const std::string& data_dir, const checkpoint* cp,
                  const std::string& photos_dir, const json& cp_json) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fatal("cannot read " + file);
    std::string line;
    json header;
    std::vector<json> events;
    std::size_t n = 0;
    std::uint64_t sealed_unchecked = 0; // events whose sealed values were not compared
    auto refuse = [&](const std::string& why) {
        json j = {{"ok", false}, {"export", file}, {"problem", why}};
        std::cout << dump(j) << "\n";
        return 1;
    };
    while (std::getline(in, line)) {
        ++n;
        if (line.empty()) continue;
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded()) return refuse("line " + std::to_string(n) + " is not JSON");
        if (n == 1) {
            if (!j.contains("pingan_export"))
                return refuse("not a pingan export (no header line): a CSV export is not "
                              "verifiable; export --format jsonl");
            header = std::move(j);
        } else {
            events.push_back(std::move(j));
        }
    }
    if (header.is_null()) return refuse("empty file");
    const auto& seg = header["segment"];
    auto from = seg.value("from", std::uint64_t{0}), to = seg.value("to", std::uint64_t{0});
    if (header.value("count", std::size_t{0}) != events.size())
        return refuse("the header says " + std::to_string(header.value("count", 0)) +
                      " events, the file holds " + std::to_string(events.size()));
    std::uint64_t last = 0;
    for (const auto& e : events) {
        auto off = e.value("offset", std::uint64_t{0});
        if (off <= last || off < from || off > to)
            return refuse("event at offset " + std::to_string(off) +
                          " is out of order or outside the segment " + std::to_string(from) + "-" +
                          std::to_string(to));
        last = off;
    }
    json result = {
        {"ok", true}, {"export", file}, {"from", from}, {"to", to}, {"count", events.size()}};

    // On its own: a complete segment is re-chained from its previous hash.
    bool standalone = header.value("complete", false) && seg.contains("prev_hash");
    // The chain hash the export (or the store) has at the checkpoint's offset.
    std::optional<std::string> at_checkpoint;
    if (cp && (cp->offset + 1 < from || cp->offset > to))
        return refuse("the export's segment " + std::to_string(from) + "-" + std::to_string(to) +
                      " does not reach the checkpoint's offset " + std::to_string(cp->offset));
    if (cp && standalone && cp->offset + 1 == from)
        at_checkpoint = seg["prev_hash"].get<std::string>();
    if (standalone) {
        chain_hash h{};
        auto prev = seg["prev_hash"].get<std::string>();
        for (std::size_t i = 0; i < 32 && prev.size() == 64; ++i)
            h[i] = static_cast<std::uint8_t>(std::stoi(prev.substr(2 * i, 2), nullptr, 16));
        if (events.size() != to - from + 1)
            return refuse("a complete segment " + std::to_string(from) + "-" + std::to_string(to) +
                          " needs " + std::to_string(to - from + 1) + " events, the file has " +
                          std::to_string(events.size()));
        for (const auto& j : events) {
            event e;
            if (auto p = from_json(j, e))
                return refuse("event at offset " + std::to_string(j.value("offset", 0)) + ": " +
                              p.text());
            auto off = j["offset"].get<std::uint64_t>();
            h = chain_next(h, off, encode(e));
            if (cp && off == cp->offset) at_checkpoint = hex(h);
            if (off == from && hex(h) != seg.value("first_hash", ""))
                return refuse("the first record does not hash to first_hash: the export was "
                              "altered");
        }
        if (hex(h) != seg.value("last_hash", ""))
            return refuse("the events do not chain to last_hash: the export was altered");
        result["chain"] = "re-chained from prev_hash to last_hash";
    }

    // Against a store: its hashes at the segment's ends, and its records in
    // the segment that pass the export's filter, one for one.
    if (!data_dir.empty()) {
        try {
            store_options o;
            o.path = data_dir;
            o.read_only = true;
            store s(o);
            if (to > s.head())
                return refuse("the segment ends at " + std::to_string(to) + ", past the head " +
                              std::to_string(s.head()));
            if (cp && !at_checkpoint) at_checkpoint = chain_at(s, cp->offset);
            if (seg.contains("last_hash")) {
                if (chain_at(s, from ? from - 1 : 0) != seg.value("prev_hash", "") ||
                    chain_at(s, from) != seg.value("first_hash", "") ||
                    chain_at(s, to) != seg.value("last_hash", ""))
                    return refuse("the store's chain hashes at offsets " + std::to_string(from) +
                                  "-" + std::to_string(to) +
                                  " are not the export's: another log, or one rewritten");
            }
            const auto& f = header["filter"];
            filter_options fo;
            if (f.contains("types")) fo.types = f["types"].get<std::vector<std::string>>();
            if (f.contains("exclude")) fo.exclude = f["exclude"].get<std::vector<std::string>>();
            fo.school = f.value("school", "");
            fo.district = f.value("district", "");
            std::optional<timestamp> since, until;
            if (f.contains("term")) {
                auto t = parse_term(f["term"].get<std::string>());
                if (!t) return refuse("unknown term in the header");
                since = t->from;
                until = t->to - micros{1};
            }
            if (f.contains("since")) since = parse_utc(f["since"].get<std::string>());
            if (f.contains("until")) until = parse_utc(f["until"].get<std::string>());
            std::set<std::string> incident_ids;
            if (f.contains("incident"))
                for (const auto& e :
                     incident_from_store(data_dir, f["incident"].get<std::string>(), fo.school)
                         .events)
                    incident_ids.insert(e["id"].get<std::string>());
            std::size_t i = 0;
            for (std::uint64_t off = from; off <= to && from; ++off) {
                auto rec = s.get(off);
                if (!rec)
                    return refuse("record " + std::to_string(off) + " missing from the store");
                event e;
                if (decode(*rec, e))
                    return refuse("record " + std::to_string(off) + " undecodable");
                e.offset = off;
                bool wanted = f.contains("incident")
                                  ? incident_ids.count(e.id.str()) > 0
                                  : fo.matches(e) && (!since || e.received_at >= *since) &&
                                        (!until || e.received_at <= *until);
                if (!wanted) continue;
                auto mine = to_json(e);
                if (i == events.size())
                    return refuse("record " + std::to_string(off) +
                                  " passes the export's filter but is missing from it");
                auto theirs = events[i++];
                if (theirs == mine) continue;
                redact_minors(e);
                auto masked = to_json(e);
                if (theirs == masked) continue;
                // Minors' data sealed in the store (docs/security.md) cannot be
                // compared with a cleared export's clear values without the keys:
                // everything else of the event still must match.
                event their_event;
                if (sealed_minors(mine) && !from_json(theirs, their_event)) {
                    redact_minors(their_event);
                    their_event.offset = off;
                    if (to_json(their_event) == masked) {
                        ++sealed_unchecked;
                        continue;
                    }
                }
                return refuse("the event at offset " + std::to_string(off) +
                              " differs from the store's record: the export was altered");
            }
            if (i != events.size())
                return refuse("the export holds events that are not in the store's segment");
            result["store"] = data_dir;
            if (sealed_unchecked) result["sealed_unchecked"] = sealed_unchecked;
        } catch (const error& e) {
            fatal(data_dir + ": " + e.detail());
        }
    }
    if (!standalone && data_dir.empty())
        return refuse(std::string("this export ") +
                      (seg.contains("last_hash")
                           ? "is filtered or redacted"
                           : "carries no chain hashes (made from the broker)") +
                      ": verify it against the store with --data DIR");
    if (cp) {
        if (!at_checkpoint || *at_checkpoint != cp->hash)
            return refuse("at offset " + std::to_string(cp->offset) + " the checkpoint's hash is " +
                          cp->hash + " but the " +
                          (standalone ? "export's events chain" : "store's records chain") +
                          " to " + at_checkpoint.value_or("nothing") +
                          ": the history up to the checkpoint was rewritten");
        result["checkpoint"] =
            cp_json.is_object() ? cp_json : json{{"offset", cp->offset}, {"hash", cp->hash}};
    }
    if (!photos_dir.empty()) {
        // The events are the log's (above), and each names its photos by
        // hash and size: photos that match are the photos reported.
        std::uint64_t checked = 0;
        if (auto problem = check_photos(events, photos_dir, checked); !problem.empty())
            return refuse(problem);
        result["photos"] = checked;
    }
    std::cout << dump(result) << "\n";
    return 0;
}

} // namespace pingan::cli
