// The service host: outbox, publisher, registry, clock and the HTTP routes.
#include "service.hpp"

#include "common/prometheus.hpp"
#include "common/version.hpp"

#include <iostream>

namespace pingan::svc {

service_host::service_host(service_runtime& rt, const service_config& cfg)
    : rt_(rt), cfg_(cfg), source_(cfg.name + "/" + cfg.device) {
    auto reg_path = cfg.registry.empty() ? default_registry_path() : cfg.registry;
    if (reg_path.empty())
        throw error(errc::bad_config, "no registry: give --registry PATH/schools.csv");
    registry_ = load_registry(reg_path);
    clock_ = make_clock(cfg.clock);
    outbox_ = std::make_unique<outbox>(cfg.data_dir + "/outbox");
    publisher_options po;
    po.endpoint = cfg.broker;
    po.resend_timeout = cfg.resend_timeout;
    po.max_in_flight = cfg.max_in_flight;
    if (!cfg.key.empty() || !cfg.server_key.empty()) {
        if (cfg.key.empty() || cfg.server_key.empty())
            throw error(errc::bad_config, "--key and --server-key go together");
        curve_client c;
        c.self = read_secret_key_file(cfg.key);
        c.server_public = read_server_key(cfg.server_key);
        po.curve = std::move(c);
    }
    publisher_ = std::make_unique<publisher>(rt.io(), *outbox_, po, rt.logger());
}

void service_host::accept(std::span<const event> events) {
    if (events.empty()) return;
    outbox_->add(events);
    for (const auto& e : events)
        ++accepted_[std::string(e.type())];
    publisher_->notify();
}

std::string service_host::metrics() const {
    prom::writer w;
    std::vector<prom::sample> info{
        {{{"service", cfg_.name}, {"version", std::string(version)}}, 1}};
    w.family("pingan_service_info", "gauge", "The service and its version.", info);
    std::vector<prom::sample> by_type;
    for (const auto& [type, n] : accepted_)
        by_type.push_back({{{"type", type}}, static_cast<double>(n)});
    w.family("pingan_service_events_total", "counter", "Events accepted into the outbox, by type.",
             by_type);
    publisher_metrics(w, "pingan_service", publisher_->health());
    return w.str();
}

void service_host::start(const std::string& more) {
    auto at = parse_endpoint(cfg_.http);
    if (!at) throw error(errc::bad_config, "--http \"" + cfg_.http + "\" is not HOST:PORT");
    auto h =
        std::make_shared<const handler>([this](const request& r) { return handle_request(r); });
    listener_ = std::make_shared<listener>(rt_.io(), *at, h, cfg_.max_body, cfg_.max_connections,
                                           rt_.logger());
    listener_->run();
    publisher_->start();
    rt_.on_stop([this] {
        listener_->stop();
        publisher_->stop();
        rt_.log().info("stopped; {} events wait in the outbox", outbox_->depth());
    });
    auto ep = listener_->local();
    std::cout << "listening http=" << ep.address().to_string() << ":" << ep.port()
              << (more.empty() ? "" : " ") << more << std::endl;
    rt_.log().info("{} up: http {}:{}, broker {}, outbox {} ({} waiting)", cfg_.name,
                   ep.address().to_string(), ep.port(), cfg_.broker, outbox_->dir(),
                   outbox_->depth());
}

json service_host::health() const {
    auto h = publisher_->health();
    json j = json::object();
    j["service"] = cfg_.name;
    j["outbox_depth"] = h.depth;
    j["in_flight"] = h.in_flight;
    j["dead_letters"] = h.dead_letters;
    j["nacks"] = h.nacks;
    j["broker"] = {
        {"endpoint", h.endpoint},
        {"connected", h.connected},
        {"last_answer_at", h.last_answer_at ? json(format_utc(*h.last_answer_at)) : json(nullptr)},
        {"stored", h.stored},
        {"duplicates", h.duplicates},
        {"rejected", h.rejected},
        {"reconnects", h.reconnects}};
    if (health_extra_) health_extra_(j);
    return j;
}

response service_host::handle_request(const request& req) {
    auto target = std::string_view(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    auto dump = [](const json& j) {
        return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
    };

    if (target == "/health") {
        if (req.method() != http::verb::get)
            return json_response(
                http::status::method_not_allowed,
                R"({"errors":[{"field":"","code":"bad_command","message":"use GET"}]})");
        return json_response(http::status::ok, dump(health()));
    }
    if (target == "/metrics") {
        if (req.method() != http::verb::get)
            return json_response(
                http::status::method_not_allowed,
                R"({"errors":[{"field":"","code":"bad_command","message":"use GET"}]})");
        response res{http::status::ok, req.version()};
        res.set(http::field::content_type, prom::content_type);
        res.body() = metrics();
        res.prepare_payload();
        return res;
    }
    auto route = posts_.find(target);
    if (route == posts_.end())
        return json_response(
            http::status::not_found,
            R"({"errors":[{"field":"","code":"not_found","message":"no such path"}]})");
    if (req.method() != http::verb::post)
        return json_response(
            http::status::method_not_allowed,
            R"({"errors":[{"field":"","code":"bad_command","message":"use POST"}]})");

    json body;
    if (auto p = parse_json(req.body(), body))
        return json_response(http::status::bad_request,
                             dump(problems_json({{"", p.code, p.detail}})));
    if (!body.is_object())
        return json_response(
            http::status::bad_request,
            dump(problems_json({{"", errc::malformed_json, "the request must be a JSON object"}})));

    auto d = route->second(body, context());
    if (!d.errors.empty())
        return json_response(http::status::bad_request, dump(problems_json(d.errors)));
    if (d.events.empty())
        return json_response(
            http::status::internal_server_error,
            R"({"errors":[{"field":"","code":"internal","message":"nothing to publish"}]})");
    try {
        accept(d.events);
    } catch (const error& x) {
        rt_.log().error("outbox: {}", x.what());
        return json_response(
            http::status::service_unavailable,
            dump(problems_json({{"", x.code(), "the outbox could not be written"}})));
    }
    json ok = json::object();
    ok["id"] = d.events.front().id.str();
    ok["type"] = std::string(d.events.front().type());
    json all = json::array();
    for (const auto& e : d.events)
        all.push_back(json{{"id", e.id.str()}, {"type", std::string(e.type())}});
    ok["events"] = std::move(all);
    for (auto& [k, v] : d.answer.items())
        ok[k] = v;
    rt_.log().info("accepted {} {} for {}", d.events.size(), d.events.front().type(),
                   d.events.front().school);
    return json_response(http::status::accepted, dump(ok));
}

} // namespace pingan::svc
