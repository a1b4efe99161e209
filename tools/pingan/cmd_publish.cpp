// pingan publish: JSON events in, one JSON result line per event out.
#include "common/client.hpp"
#include "tools/pingan/commands.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

namespace pingan::cli {
namespace {

struct publish_args {
    std::string event;
    std::string file;
    std::size_t batch = 500;
    int timeout_ms = 5000;
};

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

    zmq::context_t ctx(1);
    ingest_client client(ctx, endpoints().ingest, curve());
    auto now = std::chrono::time_point_cast<micros>(std::chrono::system_clock::now());
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
            for (int attempt = 0; attempt < 3 && !reply; ++attempt) {
                client.send(frames, true, tag);
                while (auto r = client.receive(std::chrono::milliseconds(a.timeout_ms))) {
                    if (r->tag == tag) {
                        reply = std::move(r);
                        break;
                    }
                }
            }
            if (!reply) fatal("no reply from the broker at " + endpoints().ingest);
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
                   "the error code and message. Exit 1 if any event was refused.");
    cmd->add_option("event", a->event, "the event as JSON text, or - for standard input");
    cmd->add_option("-f,--file", a->file, "read events from this file");
    cmd->add_option("--batch", a->batch, "events per request")->capture_default_str();
    cmd->add_option("--timeout-ms", a->timeout_ms, "wait this long for each reply")
        ->capture_default_str();
    add_endpoint_options(*cmd, true, false, false);
    cmd->callback([a] { run(*a); });
}

PINGAN_COMMAND(10, add_publish_command);

} // namespace pingan::cli
