// Fuzzes the school services' HTTP intake, from raw request bytes to a
// decision: Beast's request parser (with the services' body limit), the
// guard's header checks (bearer token, Origin, Content-Type), the JSON body,
// the reporter check against a credential, and the route's decision function.
#include "fuzz_support.hpp"
#include "services/canteen/handle_request.hpp"
#include "services/common/credentials.hpp"
#include "services/common/guard.hpp"
#include "services/common/intake.hpp"
#include "services/drill/handle_request.hpp"
#include "services/hazard/handle_request.hpp"
#include "services/wellbeing/handle_request.hpp"

#include "common/clock.hpp"
#include "common/validate.hpp"

#include <utility>

#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>

namespace {

using namespace pingan;
namespace http = boost::beast::http;

struct fixture {
    svc::credential_store store;
    std::string token;
    manual_clock clock{*parse_utc("2026-11-30T00:00:00Z")};
    svc::wellbeing::school_keys keys =
        svc::wellbeing::school_keys::parse("420502K001 " + std::string(64, 'a') + "\n");
    fixture() {
        svc::credential c;
        c.name = "zhang.wei";
        svc::add_scope(c, "school:420502K001");
        svc::add_scope(c, "district:420503");
        c.roles = {"safety_officer", "psych_teacher"};
        c.issued_at = clock.now();
        token = svc::issue_token(c);
        store.add(c);
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fixture f;
    http::request_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(64 * 1024);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (!p.is_done() && used < size) {
        auto n = p.put(boost::asio::buffer(data + used, size - used), ec);
        if (ec == http::error::need_more) ec = {};
        if (ec || n == 0) break;
        used += n;
    }
    if (!p.is_done()) {
        p.put_eof(ec);
        if (ec || !p.is_done()) return 0;
    }
    const auto& req = p.get();
    auto header = [&](http::field fl) {
        auto it = req.find(fl);
        return it == req.end() ? std::string_view()
                               : std::string_view(it->value().data(), it->value().size());
    };
    (void)svc::origin_allowed(header(http::field::origin), header(http::field::host), false,
                              {"https://gateway.school"});
    (void)svc::is_json_media_type(header(http::field::content_type));
    auto auth = f.store.authenticate(header(http::field::authorization), f.clock.now());
    // The fuzzer cannot guess a token: let a marker header stand for the real one.
    const svc::credential* who = auth.who;
    if (!who && req.find("X-Fuzz-Auth") != req.end()) who = &f.store.all().front();

    json body;
    if (parse_json(req.body(), body) || !body.is_object()) return 0;
    auto target = std::string_view(req.target().data(), req.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (who) {
        if (auto sc = body.find("school"); sc != body.end() && sc->is_string())
            (void)who->covers(fuzz::schools(), sc->get<std::string>());
        if (!svc::check_reporter(body, *who, svc::policy_of(target)).empty()) return 0;
    }
    svc::intake_context ctx{fuzz::schools(), f.clock, "pingan-fuzz/test/zhang.wei"};
    svc::decision d;
    if (target == "/hazard/report")
        d = svc::hazard::report(body, ctx);
    else if (target == "/hazard/rectify")
        d = svc::hazard::rectify(body, ctx);
    else if (target == "/hazard/verify")
        d = svc::hazard::verify(body, ctx);
    else if (target == "/drill/record")
        d = svc::drill::record(body, ctx);
    else if (target == "/canteen/sample")
        d = svc::canteen::sample(body, ctx);
    else if (target == "/canteen/accompany")
        d = svc::canteen::accompany(body, ctx);
    else if (target == "/canteen/illness")
        d = svc::canteen::illness(body, ctx);
    else if (target == "/psych/alert")
        d = svc::wellbeing::psych_alert(body, ctx, f.keys);
    else
        return 0;
    (void)svc::problems_json(d.errors);
    // What a decision accepts must be an event the broker would store.
    for (const auto& e : d.events)
        if (validate(e)) __builtin_trap();
    return 0;
}
