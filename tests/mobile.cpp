// The school services' mobile page and its read routes: real pingan-hazard and
// pingan-broker processes, credentials issued with the real `pingan
// credentials`, HTTP on 127.0.0.1 with ephemeral ports. The page itself is
// driven in headless Chromium by tests/browser/mobile.test.js.
#include "services/common/mobile.hpp"
#include "broker_process.hpp"
#include "common/client.hpp"
#include "common/codec.hpp"
#include "photo_fixtures.hpp"
#include "services/common/incidents.hpp"
#include "services/common/photos.hpp"
#include "services/common/reports.hpp"
#include "support.hpp"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

using namespace pingan;
using namespace pingan::test;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

std::string bin(const std::string& name) {
    return std::string(PINGAN_BIN_DIR) + "/" + name;
}
std::string source(const std::string& rel) {
    return std::string(PINGAN_SOURCE_DIR) + "/" + rel;
}

std::string issue(const std::string& file, const std::string& name, std::vector<std::string> more) {
    std::vector<std::string> argv{
        bin("pingan"), "credentials", "issue",      name,
        "--file",      file,          "--registry", source("data/schools.csv")};
    argv.insert(argv.end(), more.begin(), more.end());
    process p(argv);
    std::string out;
    for (auto& l : p.lines(20s))
        out += l;
    REQUIRE(p.wait() == 0);
    REQUIRE(out.rfind("pgn_", 0) == 0);
    return out;
}

struct hazard_service {
    std::unique_ptr<process> proc;
    unsigned short port = 0;

    explicit hazard_service(std::vector<std::string> args) {
        std::vector<std::string> argv{
            bin("pingan-hazard"),       "--http",      "127.0.0.1:0", "--registry",
            source("data/schools.csv"), "--log-level", "warn"};
        argv.insert(argv.end(), args.begin(), args.end());
        proc = std::make_unique<process>(argv);
        auto l = proc->line(20s);
        std::smatch m;
        static const std::regex re("listening http=\\S+:(\\d+)");
        if (!l || !std::regex_search(*l, m, re))
            throw std::runtime_error("pingan-hazard did not start: " + l.value_or("(no output)"));
        port = static_cast<unsigned short>(std::stoul(m[1]));
    }
};

struct answer {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;
    json j() const {
        json out;
        (void)parse_json(body, out);
        return out;
    }
};

answer call(unsigned short port, http::verb verb, const std::string& target,
            const std::string& token, const std::string& body = {}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 22);
    http::read(s, buf, p);
    answer a{static_cast<int>(p.get().result_int()), p.get().body(), {}};
    for (const auto& f : p.get())
        a.headers[std::string(f.name_string())] = std::string(f.value());
    return a;
}

// POSTs raw bytes (a photo) with the given media type.
answer upload(unsigned short port, const std::string& target, const std::string& token,
              const std::string& bytes, const std::string& type = "image/jpeg") {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.set(http::field::content_type, type);
    req.body() = bytes;
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    http::read(s, buf, p);
    answer a{static_cast<int>(p.get().result_int()), p.get().body(), {}};
    for (const auto& f : p.get())
        a.headers[std::string(f.name_string())] = std::string(f.value());
    return a;
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

json hazard(const std::string& school, const std::string& text) {
    return {{"school", school},
            {"area", "building"},
            {"grade", "general"},
            {"description", text},
            {"location", "教学楼二楼"}};
}

std::vector<event> stored(const std::string& query, const std::string& type) {
    zmq::context_t ctx(1);
    query_client q(ctx, query);
    replay_request r;
    r.type = type;
    std::vector<event> out;
    q.replay(r, [&](std::uint64_t, std::string_view bytes) {
        event e;
        if (!decode(bytes, e)) out.push_back(std::move(e));
        return true;
    });
    return out;
}

template <class F> bool eventually(F done, std::chrono::milliseconds limit = 20s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

constexpr const char* school_a = "420502K001";
constexpr const char* school_b = "420502K002";

} // namespace

TEST_CASE("the mobile page and its worker are served without a token, never framed", "[mobile]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    issue(creds, "zhang.wei", {"--scope", std::string("school:") + school_a, "--role", "teacher"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    auto page = call(h.port, http::verb::get, "/", "");
    CHECK(page.status == 200);
    CHECK(page.headers["Content-Type"].rfind("text/html", 0) == 0);
    CHECK(page.body.find("Authorization") != std::string::npos);
    CHECK(page.headers["Content-Security-Policy"].find("frame-ancestors 'none'") !=
          std::string::npos);
    auto worker = call(h.port, http::verb::get, "/sw.js", "");
    CHECK(worker.status == 200);
    CHECK(worker.headers["Content-Type"].rfind("text/javascript", 0) == 0);
    CHECK(call(h.port, http::verb::post, "/", "", "{}").status == 405);
}

TEST_CASE("the status of another school is refused with 403 and without a token with 401",
          "[mobile]") {
    temp_dir d;
    broker_process b(d / "store");
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    auto other = issue(creds, "li.na",
                       {"--scope", std::string("school:") + school_b, "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", b.ingest, "--credentials", creds});

    CHECK(call(h.port, http::verb::get, "/mobile/me", "").status == 401);
    CHECK(call(h.port, http::verb::get, "/mobile/status?school=420502K001", "").status == 401);

    auto me = call(h.port, http::verb::get, "/mobile/me", a);
    REQUIRE(me.status == 200);
    CHECK(me.j()["name"] == "zhang.wei");
    REQUIRE(me.j()["schools"].size() == 1);
    CHECK(me.j()["schools"][0]["id"] == school_a);
    // report, rectify, verify and appeal; /hazard/plan needs a principal or safety VP.
    auto routes = me.j()["routes"];
    CHECK(routes.size() == 4);
    CHECK(std::find(routes.begin(), routes.end(), "/hazard/plan") == routes.end());

    auto posted =
        call(h.port, http::verb::post, "/hazard/report", a, hazard(school_a, "护栏松动").dump());
    REQUIRE(posted.status == 202);
    auto id = posted.j()["id"].get<std::string>();
    auto hazard_id = posted.j()["hazard_id"].get<std::string>();

    // Its own school: the open hazard, and the report stored at an offset.
    json st;
    REQUIRE(eventually([&] {
        auto r = call(h.port, http::verb::get, "/mobile/status?school=420502K001", a);
        st = r.j();
        return r.status == 200 && st["mine"].size() == 1 && !st["mine"][0]["offset"].is_null();
    }));
    CHECK(st["mine"][0]["id"] == id);
    CHECK(st["mine"][0]["reporter"] == "zhang.wei");
    auto on_broker = stored(b.query, "hazard.reported");
    REQUIRE(on_broker.size() == 1);
    CHECK(st["mine"][0]["offset"] == on_broker[0].offset);
    REQUIRE(st["open_hazards"].size() == 1);
    CHECK(st["open_hazards"][0]["hazard_id"] == hazard_id);
    CHECK(st["open_hazards"][0]["found_by"] == "zhang.wei");

    // Another school's credential may not read school A, nor A read B.
    auto refused = call(h.port, http::verb::get, "/mobile/status?school=420502K001", other);
    CHECK(refused.status == 403);
    CHECK(refused.j()["errors"][0]["field"] == "school");
    CHECK(refused.body.find("护栏松动") == std::string::npos);
    CHECK(call(h.port, http::verb::get, "/mobile/status?school=420502K002", a).status == 403);
    // Its own school shows nothing of A's, and none of A's reports as its own.
    auto own = call(h.port, http::verb::get, "/mobile/status?school=420502K002", other).j();
    CHECK(own["open_hazards"].empty());
    CHECK(own["mine"].empty());
    CHECK(call(h.port, http::verb::get, "/mobile/status", a).status == 400);
    CHECK(call(h.port, http::verb::get, "/mobile/status?school=nowhere", a).status == 400);
}

TEST_CASE("a report resent with its client-made id is accepted once and stored once", "[mobile]") {
    temp_dir d;
    broker_process b(d / "store");
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    auto c = issue(creds, "wang.fang",
                   {"--scope", std::string("school:") + school_a, "--role", "teacher"});
    hazard_service h({"--data", d / "hazard", "--broker", b.ingest, "--credentials", creds});

    auto body = hazard(school_a, "灭火器过期");
    body["id"] = "01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f";
    auto first = call(h.port, http::verb::post, "/hazard/report", a, body.dump());
    REQUIRE(first.status == 202);
    CHECK(first.j()["id"] == "01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f");
    auto again = call(h.port, http::verb::post, "/hazard/report", a, body.dump());
    CHECK(again.status == 200);
    CHECK(again.j()["duplicate"] == true);
    CHECK(again.j()["hazard_id"] == first.j()["hazard_id"]);
    // The same id from someone else is not theirs to resend.
    auto stolen = call(h.port, http::verb::post, "/hazard/report", c, body.dump());
    CHECK(stolen.status == 409);
    CHECK(stolen.j()["errors"][0]["field"] == "id");

    REQUIRE(eventually([&] { return !stored(b.query, "hazard.reported").empty(); }));
    // After the broker stored it, the same id still is stored once.
    CHECK(call(h.port, http::verb::post, "/hazard/report", a, body.dump()).status == 200);
    auto health_depth = [&] {
        return call(h.port, http::verb::get, "/health", "").j()["outbox_depth"] == 0;
    };
    REQUIRE(eventually(health_depth));
    auto all = stored(b.query, "hazard.reported");
    REQUIRE(all.size() == 1);
    CHECK(all[0].id.str() == "01937c5e-8a41-7cc2-9f3e-1b2d3c4d5e6f");
    CHECK(std::get<hazard_reported>(all[0].body).found_by == "zhang.wei");

    // An id that is not a UUIDv7 is refused, naming the field.
    for (const char* bad : {"not-an-id", "01937c5e-8a41-4cc2-9f3e-1b2d3c4d5e6f"}) {
        auto wrong = hazard(school_a, "x");
        wrong["id"] = bad;
        auto r = call(h.port, http::verb::post, "/hazard/report", a, wrong.dump());
        CHECK(r.status == 400);
        CHECK(r.j()["errors"][0]["field"] == "id");
    }
}

TEST_CASE("a rectified hazard stays open until someone else's verification passes", "[mobile]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    auto v = issue(creds, "liu.yang",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_vp"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    auto r = call(h.port, http::verb::post, "/hazard/report", a, hazard(school_a, "漏水").dump());
    REQUIRE(r.status == 202);
    auto hid = r.j()["hazard_id"].get<std::string>();
    auto open = [&] {
        return call(h.port, http::verb::get, "/mobile/status?school=420502K001", a)
            .j()["open_hazards"];
    };
    REQUIRE(open().size() == 1);
    json fix = {{"school", school_a}, {"hazard_id", hid}, {"description", "已修复"}};
    REQUIRE(call(h.port, http::verb::post, "/hazard/rectify", a, fix.dump()).status == 202);
    REQUIRE(open().size() == 1);
    CHECK(open()[0]["state"] == "rectified");
    json check = {
        {"school", school_a}, {"hazard_id", hid}, {"result", "pass"}, {"evidence", "复查合格"}};
    REQUIRE(call(h.port, http::verb::post, "/hazard/verify", v, check.dump()).status == 202);
    CHECK(open().empty());
}

TEST_CASE("an open hazard's rectification deadline is on the phone's status: the one reported, "
          "or seven days after it was found",
          "[mobile]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    // A deadline a week and a half ahead, in the school's own offset.
    timestamp due = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) +
                    std::chrono::days(10);
    auto due_text = format_local(due); // "2026-12-11 15:31:50 CST"
    due_text = due_text.substr(0, 10) + "T" + due_text.substr(11, 8) + "+08:00";
    auto given = hazard(school_a, "灭火器压力不足");
    given["deadline"] = due_text;
    auto posted = call(h.port, http::verb::post, "/hazard/report", a, given.dump());
    REQUIRE(posted.status == 202);
    auto given_id = posted.j()["hazard_id"].get<std::string>();
    posted =
        call(h.port, http::verb::post, "/hazard/report", a, hazard(school_a, "门锁损坏").dump());
    REQUIRE(posted.status == 202);
    auto default_id = posted.j()["hazard_id"].get<std::string>();

    auto st = call(h.port, http::verb::get, "/mobile/status?school=420502K001", a);
    REQUIRE(st.status == 200);
    auto status = st.j();
    std::map<std::string, json> open;
    for (const auto& o : status["open_hazards"])
        open[o["hazard_id"].get<std::string>()] = o;
    REQUIRE(open.count(given_id) == 1);
    REQUIRE(open.count(default_id) == 1);
    REQUIRE(open[given_id]["deadline"].is_string());
    auto shown = parse_utc(open[given_id]["deadline"].get<std::string>());
    REQUIRE(shown);
    CHECK(*shown == due);
    REQUIRE(open[default_id]["deadline"].is_string());
    auto found = parse_utc(open[default_id]["reported_at"].get<std::string>());
    auto deadline = parse_utc(open[default_id]["deadline"].get<std::string>());
    REQUIRE(found);
    REQUIRE(deadline);
    CHECK(*deadline - *found == std::chrono::duration_cast<micros>(std::chrono::days(7)));
}

TEST_CASE("a credential without a psychology role is not offered the psych alert route",
          "[mobile]") {
    auto reg = registry::from_csv("school_id,name,district_code,type,students,boarding,school_bus,"
                                  "canteen,max_floors,lat,lon\n"
                                  "420502K001,西陵区第1幼儿园,420502,kindergarten,225,0,0,1,2,30."
                                  "6,111.2\n");
    svc::credential teacher;
    teacher.name = "wang.fang";
    teacher.schools = {"420502K001"};
    teacher.roles = {"teacher"};
    auto me = svc::mobile_me(teacher, reg, "pingan-wellbeing", {"/psych/alert"});
    CHECK(me["routes"].empty());
    CHECK(me["schools"].size() == 1);
    auto counsellor = teacher;
    counsellor.roles = {"psych_teacher"};
    CHECK(svc::mobile_me(counsellor, reg, "pingan-wellbeing", {"/psych/alert"})["routes"] ==
          json::array({"/psych/alert"}));
    CHECK(svc::query_param("/mobile/status?x=1&school=420502K001", "school") == "420502K001");
    CHECK(svc::query_param("/mobile/status?school=a%20b", "school") == "a b");
    CHECK(!svc::query_param("/mobile/status", "school"));
}

TEST_CASE("a photo is stored without its GPS block, once by its hash, and named in the stored "
          "hazard event",
          "[mobile]") {
    temp_dir d;
    broker_process b(d / "store");
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", b.ingest, "--credentials", creds});

    auto photo = with_exif_and_comment(make_jpeg(320, 240));
    REQUIRE(photo.find(gps_latitude_bytes()) != std::string::npos);
    auto first = upload(h.port, "/photos?school=420502K001", a, photo);
    REQUIRE(first.status == 201);
    auto hash = first.j()["hash"].get<std::string>();
    CHECK(svc::valid_photo_hash(hash));
    CHECK(first.j()["type"] == "image/jpeg");
    CHECK(first.j()["width"] == 320);
    CHECK(first.j()["height"] == 240);
    CHECK(first.j()["duplicate"] == false);
    CHECK(first.j()["removed"].dump().find("APP1 Exif") != std::string::npos);
    auto size = first.j()["size"].get<std::uint64_t>();
    CHECK(size < photo.size());

    // The same photo again: the same hash, stored once.
    auto again = upload(h.port, "/photos?school=420502K001", a, photo);
    CHECK(again.status == 200);
    CHECK(again.j()["hash"] == hash);
    CHECK(again.j()["duplicate"] == true);

    // Served back: the bytes hash to their name, the GPS position and camera are gone,
    // and libjpeg still decodes the picture.
    auto got = call(h.port, http::verb::get, "/photos/" + hash, a);
    REQUIRE(got.status == 200);
    CHECK(got.headers["Content-Type"] == "image/jpeg");
    CHECK(got.body.size() == size);
    CHECK(svc::photo_hash(got.body) == hash);
    CHECK(got.body.find(gps_latitude_bytes()) == std::string::npos);
    CHECK(got.body.find(camera_make) == std::string::npos);
    CHECK(decode_jpeg(got.body) == std::pair{320, 240});
    // Nor is the position anywhere in the store's file.
    auto on_disk = file_bytes(d / "hazard/photos/data.mdb");
    REQUIRE(on_disk.find(got.body.substr(0, 4096)) != std::string::npos);
    CHECK(on_disk.find(gps_latitude_bytes()) == std::string::npos);
    CHECK(on_disk.find(camera_make) == std::string::npos);

    // The report names the photo; the broker's chained record carries its hash.
    auto body = hazard(school_a, "楼梯扶手断裂");
    body["photo_refs"] = json::array({{{"hash", hash}, {"size", size}, {"type", "image/jpeg"}}});
    auto posted = call(h.port, http::verb::post, "/hazard/report", a, body.dump());
    REQUIRE(posted.status == 202);
    REQUIRE(eventually([&] { return !stored(b.query, "hazard.reported").empty(); }));
    auto events = stored(b.query, "hazard.reported");
    REQUIRE(events.size() == 1);
    const auto& refs = std::get<hazard_reported>(events[0].body).photo_refs;
    REQUIRE(refs.size() == 1);
    CHECK(refs[0].hash == hash);
    CHECK(refs[0].size == size);
    CHECK(refs[0].type == "image/jpeg");
    auto st = call(h.port, http::verb::get, "/mobile/status?school=420502K001", a).j();
    REQUIRE(st["open_hazards"].size() == 1);
    CHECK(st["open_hazards"][0]["photo_refs"][0]["hash"] == hash);
}

TEST_CASE("an oversize photo is refused with 413 and a non-image with 415, each saying why",
          "[mobile]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials",
                      creds, "--max-photo-bytes", "20000"});

    auto big = make_jpeg(400, 300, 5, 95);
    REQUIRE(big.size() > 20000);
    auto over = upload(h.port, "/photos?school=420502K001", a, big);
    CHECK(over.status == 413);
    CHECK(over.j()["errors"][0]["message"] ==
          "the photo is " + std::to_string(big.size()) +
              " bytes; the limit is 20000 bytes (--max-photo-bytes)");

    auto gif = upload(h.port, "/photos?school=420502K001", a,
                      std::string("GIF89a\x10\x00\x10\x00\x80\x00\x00", 13), "image/gif");
    CHECK(gif.status == 415);
    CHECK(gif.j()["errors"][0]["message"] ==
          "the photo was refused: not a JPEG or PNG image (it starts with the bytes 47 49 46 38)");
    auto cut = make_jpeg(64, 64);
    auto truncated = upload(h.port, "/photos?school=420502K001", a, cut.substr(0, cut.size() / 2));
    CHECK(truncated.status == 415);
    CHECK(truncated.j()["errors"][0]["message"].get<std::string>().find("truncated") !=
          std::string::npos);

    // No token, no school, another school: refused before the bytes are looked at.
    CHECK(upload(h.port, "/photos?school=420502K001", "", cut).status == 401);
    CHECK(upload(h.port, "/photos", a, cut).status == 400);
    CHECK(upload(h.port, "/photos?school=420502K002", a, cut).status == 403);

    // The service goes on serving: a PNG within the limit is stored.
    auto png = upload(h.port, "/photos?school=420502K001", a, make_png(40, 30), "image/png");
    CHECK(png.status == 201);
    CHECK(png.j()["type"] == "image/png");
    CHECK(png.j()["removed"].dump().find("eXIf") != std::string::npos);
}

TEST_CASE("a report naming a photo not uploaded for its school, or of another size, is refused",
          "[mobile]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("district:420502"), "--role", "safety_officer"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    auto up = upload(h.port, "/photos?school=420502K002", a, make_jpeg(32, 32));
    REQUIRE(up.status == 201);
    auto hash = up.j()["hash"].get<std::string>();
    auto size = up.j()["size"].get<std::uint64_t>();

    auto body = hazard(school_a, "窗户破损");
    body["photo_refs"] = json::array({{{"hash", hash}, {"size", size}, {"type", "image/jpeg"}}});
    auto other_school = call(h.port, http::verb::post, "/hazard/report", a, body.dump());
    CHECK(other_school.status == 400);
    CHECK(other_school.j()["errors"][0]["field"] == "photo_refs");
    CHECK(other_school.j()["errors"][0]["message"] ==
          "photo_refs[0]: no photo " + hash +
              " was uploaded for 420502K001; upload it first (POST /photos?school=420502K001)");

    body["school"] = school_b;
    body["photo_refs"][0]["size"] = size + 1;
    auto wrong_size = call(h.port, http::verb::post, "/hazard/report", a, body.dump());
    CHECK(wrong_size.status == 400);
    CHECK(wrong_size.j()["errors"][0]["field"] == "photo_refs");
    body["photo_refs"][0]["size"] = size;
    body["photo_refs"][0]["colour"] = "red";
    auto unknown = call(h.port, http::verb::post, "/hazard/report", a, body.dump());
    CHECK(unknown.status == 400);
    CHECK(unknown.j()["errors"][0]["message"] == "photo_refs[0].colour: unknown field");
    body["photo_refs"][0].erase("colour");
    CHECK(call(h.port, http::verb::post, "/hazard/report", a, body.dump()).status == 202);
}

TEST_CASE("photos are shown only to credentials covering their school, and the bureau's "
          "credential reads but never posts",
          "[mobile]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    auto other = issue(creds, "li.na",
                       {"--scope", std::string("school:") + school_b, "--role", "safety_officer"});
    auto bureau = issue(creds, "xiling.bureau", {"--scope", "district:420502", "--role", "bureau"});
    hazard_service h(
        {"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials", creds});
    auto up = upload(h.port, "/photos?school=420502K001", a, make_jpeg(48, 32));
    REQUIRE(up.status == 201);
    auto hash = up.j()["hash"].get<std::string>();

    auto seen = call(h.port, http::verb::get, "/photos/" + hash, bureau);
    CHECK(seen.status == 200);
    CHECK(svc::photo_hash(seen.body) == hash);
    CHECK(seen.headers["Cache-Control"].find("immutable") != std::string::npos);
    CHECK(call(h.port, http::verb::get, "/photos/" + hash, other).status == 404);
    CHECK(call(h.port, http::verb::get, "/photos/" + hash, "").status == 401);
    CHECK(call(h.port, http::verb::get, "/photos/" + std::string(64, '0'), bureau).status == 404);
    CHECK(call(h.port, http::verb::get, "/photos/..%2Fdata.mdb", bureau).status == 400);

    auto post =
        call(h.port, http::verb::post, "/hazard/report", bureau, hazard(school_a, "x").dump());
    CHECK(post.status == 403);
    CHECK(post.j()["errors"][0]["message"].get<std::string>().find("role bureau") !=
          std::string::npos);
    CHECK(upload(h.port, "/photos?school=420502K001", bureau, make_jpeg(8, 8)).status == 403);
}

TEST_CASE("a school that allows it keeps its photos' metadata", "[mobile]") {
    temp_dir d;
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", "tcp://127.0.0.1:1", "--credentials",
                      creds, "--keep-photo-metadata"});
    auto photo = with_exif_and_comment(make_jpeg(32, 32));
    auto up = upload(h.port, "/photos?school=420502K001", a, photo);
    REQUIRE(up.status == 201);
    CHECK(up.j()["size"] == photo.size());
    auto got = call(h.port, http::verb::get, "/photos/" + up.j()["hash"].get<std::string>(), a);
    CHECK(got.body == photo);
}

TEST_CASE("a report's incident acknowledged by the district shows on the phone with the "
          "district's tier and time",
          "[mobile]") {
    temp_dir d;
    auto server = curve_generate(), service = curve_generate(), bureau = curve_generate();
    write_key(d / "server.key", server);
    write_key(d / "service.key", service);
    write_key(d / "bureau.key", bureau);
    // The school's service may publish and query within its school only; the
    // district's bureau queries and acts within its district.
    std::ofstream(d / "clients.yaml")
        << "clients:\n  - identity: school:420502K001\n    key: \"" << service.public_key
        << "\"\n    scope: {school: 420502K001}\n    may: [publish, query]\n"
        << "  - identity: bureau:420502\n    key: \"" << bureau.public_key
        << "\"\n    scope: {district: \"420502\"}\n    may: [query, act]\n";
    broker_process b(d / "store",
                     {"--rules", source("config/rules/yichang-default.yaml"), "--server-key",
                      d / "server.key", "--clients", d / "clients.yaml"});
    auto creds = d / "credentials.json";
    auto a = issue(creds, "zhang.wei",
                   {"--scope", std::string("school:") + school_a, "--role", "safety_officer"});
    hazard_service h({"--data", d / "hazard", "--broker", b.ingest, "--query", b.query,
                      "--incidents-every", "200ms", "--key", d / "service.key", "--server-key",
                      d / "server.key", "--credentials", creds});

    auto posted = call(h.port, http::verb::post, "/hazard/report", a,
                       hazard(school_a, "楼梯扶手断裂").dump());
    REQUIRE(posted.status == 202);
    auto status = [&] {
        auto r = call(h.port, http::verb::get, "/mobile/status?school=420502K001", a);
        REQUIRE(r.status == 200);
        return r.j();
    };
    // The default rules open a hazard incident on the report: the page learns which.
    json st;
    REQUIRE(eventually([&] {
        st = status();
        return st["mine"].size() == 1 && st["mine"][0].contains("incident");
    }));
    auto inc = st["mine"][0]["incident"];
    CHECK(inc["state"] == "open");
    CHECK(inc["kind"] == "hazard");
    CHECK(inc["acknowledged"].empty());
    auto id = inc["id"].get<std::string>();
    CHECK(id.rfind("INC-", 0) == 0);

    // The district acknowledges it with its own key.
    b.export_env();
    process ack({bin("pingan"), "incidents", "ack", id, "--key", d / "bureau.key", "--server-key",
                 d / "server.key"});
    for (auto& l : ack.lines(20s))
        (void)l;
    REQUIRE(ack.wait() == 0);

    REQUIRE(eventually([&] {
        st = status();
        return !st["mine"][0]["incident"]["acknowledged"].empty();
    }));
    inc = st["mine"][0]["incident"];
    CHECK(inc["state"] == "acknowledged");
    REQUIRE(inc["acknowledged"].size() == 1);
    CHECK(inc["acknowledged"][0]["tier"] == "district");
    // The time is the broker's, of the acknowledgement it stored.
    zmq::context_t ctx(1);
    curve_client as_bureau{bureau, server.public_key};
    query_client q(ctx, b.query, &as_bureau);
    auto one = q.request("INCIDENT", json{{"id", id}}, 5s);
    std::string acked_at;
    for (const auto& e : one["timeline"])
        if (e["type"] == "incident.acknowledged") acked_at = e["received_at"].get<std::string>();
    REQUIRE(!acked_at.empty());
    CHECK(inc["acknowledged"][0]["at"] == acked_at);
    // Who acknowledged is shown by tier, not by identity.
    CHECK(st.dump().find("bureau:420502") == std::string::npos);
    CHECK(st["mine"][0]["offset"].is_number());
}

TEST_CASE("an incident of a report on minors keeps only its state and acknowledgements",
          "[mobile]") {
    temp_dir d;
    svc::report_ledger ledger(d / "reports");
    auto e = sample_hazard();
    ledger.record(std::span<const event>(&e, 1), "/hazard/report", "li.na",
                  json{{"id", e.id.str()}}, e.occurred_at);
    ledger.stored(e.id, 7, false);
    auto waiting = ledger.unacknowledged("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z");
    REQUIRE(waiting[e.school].count(e.id.str()) == 1);
    json acks = json::array({{{"tier", "district"}, {"at", "2026-09-01T01:00:00.000000Z"}}});
    ledger.incident(e.id.str(), {{"id", "INC-0000000000000001"},
                                 {"kind", "psych"},
                                 {"severity", "Severe"},
                                 {"state", "acknowledged"},
                                 {"opened_at", "2026-09-01T00:00:00.000000Z"},
                                 {"closed_at", nullptr},
                                 {"acknowledged", acks}});
    auto r = ledger.find(e.id.str());
    REQUIRE(r);
    CHECK((*r)["incident"] == json{{"state", "acknowledged"}, {"acknowledged", acks}});
    // Acknowledged: no longer asked about.
    CHECK(ledger.unacknowledged("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z").empty());
}

TEST_CASE("an acknowledging identity's tier is read from the registry code it names", "[mobile]") {
    const auto& reg = yichang();
    CHECK(svc::actor_tier("bureau:420502", reg) == "district");
    CHECK(svc::actor_tier("school:420502K001", reg) == "school");
    CHECK(svc::actor_tier("bureau:city", reg) == "city");
    CHECK(svc::actor_tier("bureau:420500", reg) == "city");
    CHECK(svc::actor_tier("anonymous", reg) == "");
    CHECK(svc::actor_tier("auditor:2026-autumn", reg) == "");
}
