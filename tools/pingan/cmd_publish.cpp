// pingan publish: JSON events in, one JSON result line per event out.
//
// Each event's id is the idempotency key. An id in the input is kept; an
// event without one gets a fresh UUIDv7, or, with --stable-ids, an id derived
// from the event's own text and how many identical events came before it in
// the input, so that publishing the same file again stores nothing twice.
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

namespace pingan::cli {
namespace {

struct publish_args {
    std::string event;
    std::string file;
    std::size_t batch = 500;
    bool stable_ids = false;
};

// A UUID (version 8, RFC 9562) from BLAKE2b-128 of the event's canonical
// JSON text (keys sorted, as read: before occurred_at is filled in) and its
// occurrence number among identical events of the input.
std::string stable_id(const json& j, std::size_t occurrence) {
    return stable_event_id("pingan publish --stable-ids v1\n" + j.dump() + "\n" +
                           std::to_string(occurrence))
        .str();
}

// The input's events: one JSON object, a JSON array of objects, or JSON Lines.
// Unparseable lines become problems in place, so results stay in input order.
std::vector<std::pair<std::optional<json>, problem>> read_events(const std::string& text) {
    std::vector<std::pair<std::optional<json>, problem>> out;
    json all;
    if (!parse_json(text, all)) {
        if (all.is_array())
            for (auto& x : all)
                out.emplace_back(std::move(x), problem{});
        else
            out.emplace_back(std::move(all), problem{});
        return out;
    }
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        json j;
        if (auto p = parse_json(line, j))
            out.emplace_back(std::nullopt, p);
        else
            out.emplace_back(std::move(j), problem{});
    }
    return out;
}

void print_result(const wire::result& r, const std::string& id) {
    json j = json::object();
    j["id"] = id;
    if (r.what == wire::outcome::rejected) {
        j["error"] = {{"code", std::string(errc_name(r.code))}, {"message", r.message}};
    } else {
        j["offset"] = r.offset;
        j["duplicate"] = r.what == wire::outcome::duplicate;
    }
    std::cout << j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace) << "\n";
}

void run(const publish_args& a) {
    std::string text;
    if (!a.file.empty()) {
        std::ifstream in(a.file, std::ios::binary);
        if (!in) fatal("cannot read " + a.file);
        std::ostringstream s;
        s << in.rdbuf();
        text = s.str();
    } else if (!a.event.empty() && a.event != "-") {
        text = a.event;
    } else {
        std::ostringstream s;
        s << std::cin.rdbuf();
        text = s.str();
    }
    auto events = read_events(text);
    if (events.empty()) fatal("no events in the input");

    // Ids first, from the input as written.
    if (a.stable_ids) {
        std::map<std::string, std::size_t> seen;
        for (auto& [j, p] : events)
            if (j && j->is_object() && !j->contains("id"))
                (*j)["id"] = stable_id(*j, seen[j->dump()]++);
    }

    zmq::context_t ctx(1);
    ingest_client client(ctx, endpoints().ingest, curve());
    announce_waiting(client.link());
    auto now = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
    // An event without occurred_at happens now on the broker's time line (a
    // manual or scaled clock is not this machine's), as `incidents ack` does.
    bool untimed = std::any_of(events.begin(), events.end(), [](const auto& e) {
        return e.first && e.first->is_object() && !e.first->contains("occurred_at");
    });
    if (untimed) {
        try {
            query_client q(ctx, endpoints().query, curve());
            auto wait =
                std::min<std::chrono::milliseconds>(answer_timeout(), std::chrono::seconds(3));
            auto t = q.clock(json::object(), wait)["now"].get<std::string>();
            if (auto parsed = parse_utc(t)) now = *parsed;
        } catch (const std::exception& e) {
            std::cerr << "pingan: the broker's clock did not answer (" << e.what()
                      << "); occurred_at is this machine's time\n";
        }
    }
    bool refused = false;
    std::size_t i = 0;
    std::uint64_t tag_no = 0;
    while (i < events.size()) {
        std::vector<std::string> frames, ids;
        std::vector<std::size_t> index;
        auto end = std::min(events.size(), i + a.batch);
        for (; i < end; ++i) {
            auto& [j, p] = events[i];
            if (!j || !j->is_object()) {
                // Printed in order below, with the batch.
                index.push_back(i);
                continue;
            }
            // The id is made here, once: a resend of this batch is stored once.
            if (!j->contains("id")) (*j)["id"] = new_event_id(now).str();
            if (!j->contains("occurred_at")) (*j)["occurred_at"] = format_utc(now);
            ids.push_back((*j)["id"].is_string() ? (*j)["id"].get<std::string>() : "");
            frames.push_back(j->dump());
            index.push_back(i);
        }
        std::optional<publish_reply> reply;
        if (!frames.empty()) {
            auto tag = "cli" + std::to_string(tag_no++);
            // One request, waited for up to --timeout. ZeroMQ queues it until
            // the connection is up, so a broker that starts meanwhile gets it.
            try {
                client.send(frames, true, tag);
                auto deadline = std::chrono::steady_clock::now() + answer_timeout();
                while (!reply) {
                    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now());
                    if (left.count() <= 0) break;
                    auto r = client.receive(left);
                    if (!r) break;
                    if (r->tag == tag) reply = std::move(r);
                }
            } catch (const error& e) {
                fail(e);
            }
            if (!reply) {
                std::ostringstream s;
                s << (client.link().answered() ? "no reply from the broker at "
                                               : "no answer from the broker at ")
                  << endpoints().ingest << " within " << endpoints().timeout_s << " s";
                fatal(s.str(), 2);
            }
            if (reply->refused) {
                refused = true;
                std::cerr << "pingan: broker refused the request: " << errc_name(reply->code)
                          << ": " << reply->message << "\n";
            }
        }
        std::size_t k = 0;
        for (auto n : index) {
            auto& [j, p] = events[n];
            if (!j || !j->is_object()) {
                wire::result r;
                r.what = wire::outcome::rejected;
                r.code = j ? errc::malformed_json : p.code;
                r.message = j ? "an event must be a JSON object" : p.detail;
                print_result(r, "");
                refused = true;
                continue;
            }
            if (!reply || reply->refused || k >= reply->results.size()) {
                ++k;
                continue;
            }
            const auto& r = reply->results[k];
            if (r.what == wire::outcome::rejected) refused = true;
            print_result(r, ids[k]);
            ++k;
        }
    }
    std::cout.flush();
    exit_code() = refused ? 1 : 0;
}

} // namespace

void add_publish_command(CLI::App& app) {
    auto a = std::make_shared<publish_args>();
    auto* cmd = app.add_subcommand(
        "publish", "Publish JSON events (an object, an array, or JSON Lines) and print one "
                   "result line per event: id and offset (duplicate: true for a resend), or "
                   "the error code and message. Exit 1 if any event was refused, 2 if the "
                   "broker did not answer within --timeout. An event's own id is kept; to make "
                   "a file safe to publish again, give ids in it or use --stable-ids.");
    cmd->add_option("event", a->event, "the event as JSON text, or - for standard input");
    cmd->add_option("-f,--file", a->file, "read events from this file");
    cmd->add_option("--batch", a->batch, "events per request")->capture_default_str();
    cmd->add_flag("--stable-ids", a->stable_ids,
                  "give each event without an id one derived from its text and its place among "
                  "identical events of the input, so that publishing the same file again stores "
                  "nothing twice (the second run answers duplicate)");
    add_endpoint_options(*cmd, true, false, true);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(10, add_publish_command);

} // namespace pingan::cli
