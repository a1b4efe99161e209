// Black-box tests of `pingan cap`: exports validated by xmllint against the
// OASIS CAP 1.2 schema, the OASIS examples and Yichang warnings imported into
// a real broker, Update and Cancel by reference, and hostile input refused
// with nothing fetched.
#include "broker_process.hpp"
#include "common/client.hpp"
#include "pingan_run.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace pingan;
using namespace pingan::test;

namespace {

std::string cap_dir() {
    return source_path("tests/data/cap");
}

run_result xmllint(const std::string& file) {
    return run_program(
        {"/usr/bin/xmllint", "--noout", "--nonet", "--schema", cap_dir() + "/CAP-v1.2.xsd", file});
}

void write(const std::string& path, const std::string& text) {
    std::ofstream o(path, std::ios::binary | std::ios::trunc);
    o << text;
}

// A Yichang rainstorm warning: a 1.5 km circle around 西陵区第1幼儿园.
std::string rainstorm(const std::string& identifier, const std::string& msg_type,
                      const std::string& references = {}) {
    std::string refs = references.empty() ? "" : "  <references>" + references + "</references>\n";
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n"
           "  <identifier>" +
           identifier +
           "</identifier>\n"
           "  <sender>qxj@yichang.gov.cn</sender>\n"
           "  <sent>2026-10-12T08:00:00+08:00</sent>\n"
           "  <status>Actual</status>\n"
           "  <msgType>" +
           msg_type + "</msgType>\n  <scope>Public</scope>\n" + refs +
           "  <info>\n"
           "    <language>zh-CN</language>\n"
           "    <category>Met</category>\n"
           "    <event>暴雨</event>\n"
           "    <urgency>Expected</urgency>\n"
           "    <severity>Severe</severity>\n"
           "    <certainty>Likely</certainty>\n"
           "    <headline>宜昌市气象台发布暴雨橙色预警</headline>\n"
           "    <description>预计未来6小时西陵区降雨量将达50毫米以上</description>\n"
           "    <instruction>学校停止户外活动</instruction>\n"
           "    <area>\n"
           "      <areaDesc>西陵区</areaDesc>\n"
           "      <circle>30.66031,111.2967 1.5</circle>\n"
           "    </area>\n"
           "  </info>\n"
           "</alert>\n";
}

} // namespace

TEST_CASE("cap export writes an incident as CAP 1.2 that validates against the OASIS schema",
          "[cap]") {
    temp_dir d;
    broker_process b(d / "store", {"--rules", source_path("config/rules/yichang-default.yaml"),
                                   "--clock", "manual:2026-10-12T09:00:00+08:00"});
    b.export_env();
    json h = {{"type", "hazard.reported"},
              {"school", "420502K001"},
              {"status", "Actual"},
              {"severity", "Severe"},
              {"occurred_at", "2026-10-12T09:00:00+08:00"},
              {"body",
               {{"hazard_id", "HZ-C1"},
                {"area", "fire"},
                {"grade", "major"},
                {"description", "消防通道堵塞 <急> & 需处理"},
                {"location", "宿舍楼"},
                {"found_by", "safety_officer"},
                {"interim_control", "已封闭"}}}};
    REQUIRE(run({"publish", h.dump()}).code == 0);
    auto id =
        json::parse(run({"incidents", "list", "--json", "--kind", "hazard"}).lines.at(0))["id"]
            .get<std::string>();
    auto first = d / "first.xml";
    REQUIRE(run({"cap", "export", id, "--out", first}).code == 0);
    auto v = xmllint(first);
    INFO((v.lines.empty() ? std::string() : v.lines[0]));
    CHECK(v.code == 0);
    auto text = read_file(first);
    CHECK(text.find("<msgType>Alert</msgType>") != std::string::npos);
    CHECK(text.find("<circle>30.66031,111.29670 0.5</circle>") != std::string::npos);
    CHECK(text.find("&lt;急&gt; &amp;") != std::string::npos);

    // Acknowledged: an Update that references the first alert.
    REQUIRE(run({"incidents", "ack", id, "--note", "已处理"}).code == 0);
    auto second = d / "second.xml";
    REQUIRE(run({"cap", "export", id, "--out", second, "--data", d / "store"}).code == 0);
    CHECK(xmllint(second).code == 0);
    auto t2 = read_file(second);
    CHECK(t2.find("<msgType>Update</msgType>") != std::string::npos);
    CHECK(t2.find("<references>pingan@yichang.edu.cn," + id + ",2026-10-12T09:00:00+08:00") !=
          std::string::npos);
}

TEST_CASE("cap import maps a warning to the schools in its area, honours Update and Cancel, and "
          "stores nothing twice",
          "[cap]") {
    temp_dir d;
    broker_process b(d / "store");
    b.export_env();
    auto alert = d / "alert.xml";
    write(alert, rainstorm("YC-2026-001", "Alert"));
    auto dry = run({"cap", "import", alert, "--dry-run"});
    REQUIRE(dry.code == 0);
    auto events = json_lines(dry);
    REQUIRE_FALSE(events.empty());
    std::set<std::string> schools;
    for (const auto& e : events) {
        schools.insert(e["school"].get<std::string>());
        CHECK(e["type"] == "alert.external");
        CHECK(e["severity"] == "Severe");
        CHECK(e["body"]["event"] == "暴雨");
    }
    CHECK(schools.count("420502K001") == 1);
    CHECK(schools.count("420502P001") == 1); // 0.9 km away
    CHECK(schools.count("420503P001") == 0); // 伍家岗, 7 km away

    auto stored = run({"cap", "import", alert});
    REQUIRE(stored.code == 0);
    auto results = json_lines(stored);
    REQUIRE(results.size() == events.size());
    for (const auto& r : results)
        CHECK(r["duplicate"] == false);
    auto again = json_lines(run({"cap", "import", alert}));
    REQUIRE(again.size() == events.size());
    for (const auto& r : again)
        CHECK(r["duplicate"] == true);

    // The update and the cancellation name the first alert's events, school by school.
    std::map<std::string, std::string> first_id;
    for (const auto& e : events)
        first_id[e["school"]] = e["id"];
    for (auto kind : {"Update", "Cancel"}) {
        auto file = d / (std::string(kind) + ".xml");
        write(file, rainstorm(std::string("YC-2026-001-") + kind, kind,
                              "qxj@yichang.gov.cn,YC-2026-001,2026-10-12T08:00:00+08:00"));
        auto r = run({"cap", "import", file, "--dry-run"});
        REQUIRE(r.code == 0);
        for (const auto& e : json_lines(r)) {
            CHECK(e["body"]["msg_type"] == kind);
            CHECK(e["references"] == json::array({first_id[e["school"]]}));
        }
        REQUIRE(run({"cap", "import", file}).code == 0);
    }
    zmq::context_t ctx(1);
    query_client q(ctx, b.query);
    CHECK(q.stats()["by_type"]["alert.external"] == 3 * events.size());

    // An update that names no earlier alert is refused.
    write(d / "orphan.xml", rainstorm("YC-2026-002", "Update"));
    auto orphan = run({"cap", "import", d / "orphan.xml"});
    CHECK(orphan.code == 1);
    CHECK(has(orphan, "<references>"));
}

TEST_CASE("the OASIS examples import, and their areas hold no Yichang school", "[cap]") {
    for (auto f : {"Oasis_A1_HomelandAlert.xml", "Oasis_A2_ThunderstormWarning.xml",
                   "Oasis_A3_EarthquakeUpdate.xml", "Oasis_A4_AmberAlert.xml"}) {
        INFO(f);
        CHECK(xmllint(cap_dir() + "/" + f).code == 0);
        auto r = run({"cap", "import", cap_dir() + "/" + f, "--dry-run"});
        CHECK(r.code == 0);
        CHECK(has(r, "\"schools\":0"));
    }
}

TEST_CASE("hostile, malformed and non-UTF-8 CAP input is refused clearly and nothing is fetched",
          "[cap]") {
    temp_dir d;
    // Listen where the hostile file points, to see that nothing comes.
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(8080);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool listening =
        ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(s, 8) == 0;
    ::fcntl(s, F_SETFL, O_NONBLOCK);

    auto hostile = run({"cap", "import", cap_dir() + "/hostile_xxe.cap", "--dry-run"});
    CHECK(hostile.code == 1);
    CHECK(has(hostile, "DOCTYPE"));
    CHECK_FALSE(has(hostile, "root:"));
    if (listening) CHECK(::accept(s, nullptr, nullptr) < 0);
    ::close(s);

    write(d / "gb.xml", "<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<alert/>");
    auto gb = run({"cap", "import", d / "gb.xml", "--dry-run"});
    CHECK(gb.code == 1);
    CHECK(has(gb, "encoding \"GB2312\" is not supported"));

    write(d / "broken.xml", "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>");
    auto broken = run({"cap", "import", d / "broken.xml", "--dry-run"});
    CHECK(broken.code == 1);
    CHECK(has(broken, "not well-formed XML"));

    auto text = rainstorm("YC-9", "Alert");
    text.replace(text.find("<identifier>YC-9</identifier>"), 29, "");
    write(d / "noid.xml", text);
    auto noid = run({"cap", "import", d / "noid.xml", "--dry-run"});
    CHECK(noid.code == 1);
    CHECK(has(noid, "<identifier> is missing"));

    write(d / "other.xml", "<?xml version=\"1.0\"?><rss/>");
    auto other = run({"cap", "import", d / "other.xml", "--dry-run"});
    CHECK(other.code == 1);
    CHECK(has(other, "not a CAP 1.2 alert"));
}

namespace {

json hazard_at(const std::string& school, const std::string& id, const std::string& severity) {
    return {{"type", "hazard.reported"},
            {"school", school},
            {"status", "Actual"},
            {"severity", severity},
            {"occurred_at", "2026-10-12T09:00:00+08:00"},
            {"body",
             {{"hazard_id", id},
              {"area", "fire"},
              {"grade", "general"},
              {"description", "灭火器过期"},
              {"location", "教学楼"},
              {"found_by", "safety_officer"}}}};
}

json emergency_at(const std::string& school, const std::string& id) {
    return {{"type", "incident.reported"},
            {"school", school},
            {"status", "Actual"},
            {"severity", "Severe"},
            {"occurred_at", "2026-10-12T09:00:00+08:00"},
            {"body",
             {{"incident_id", id},
              {"category", "accident"},
              {"provisional_level", "IV"},
              {"reporter_role", "principal"},
              {"summary", "操场围墙倒塌"}}}};
}

// The files of a directory, by name.
std::set<std::string> files_in(const std::string& dir) {
    std::set<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        v.insert(e.path().filename().string());
    return v;
}

} // namespace

TEST_CASE("cap export without an incident writes one validating alert per incident the filters "
          "pass, and refuses several on standard output",
          "[cap]") {
    temp_dir d;
    broker_process b(d / "store", {"--rules", source_path("config/rules/yichang-default.yaml"),
                                   "--clock", "manual:2026-10-12T09:00:00+08:00"});
    b.export_env();
    REQUIRE(run({"publish", hazard_at("420502K001", "HZ-M1", "Moderate").dump()}).code == 0);
    REQUIRE(run({"publish", hazard_at("420502P001", "HZ-M2", "Severe").dump()}).code == 0);
    REQUIRE(run({"publish", emergency_at("420503P001", "EM-M3").dump()}).code == 0);
    std::map<std::string, json> incidents; // by school
    for (const auto& l : run({"incidents", "list", "--json"}).lines) {
        auto j = json::parse(l);
        incidents[j["school"].get<std::string>()] = j;
    }
    REQUIRE(incidents.size() == 3);
    REQUIRE(run({"incidents", "ack", incidents["420502P001"]["id"].get<std::string>()}).code == 0);

    // Every incident: one file each, named by the alert's identifier, each valid.
    auto all = run({"cap", "export", "--out", d / "all"});
    REQUIRE(all.code == 0);
    CHECK(has(all, "3 alerts written to " + std::string(d / "all")));
    auto names = files_in(d / "all");
    REQUIRE(names.size() == 3);
    std::set<std::string> identifiers, msg_types;
    for (const auto& n : names) {
        INFO(n);
        auto path = std::string(d / "all") + "/" + n;
        auto v = xmllint(path);
        INFO((v.lines.empty() ? std::string() : v.lines[0]));
        CHECK(v.code == 0);
        auto text = read_file(path);
        auto at = text.find("<identifier>"), end = text.find("</identifier>");
        REQUIRE(end != std::string::npos);
        auto identifier = text.substr(at + 12, end - at - 12);
        CHECK(n == identifier + ".xml");
        identifiers.insert(identifier);
        auto mt = text.find("<msgType>");
        msg_types.insert(text.substr(mt + 9, text.find("</msgType>") - mt - 9));
    }
    for (const auto& [school, inc] : incidents) {
        auto id = inc["id"].get<std::string>();
        // The untouched ones are first alerts (identifier: the incident id);
        // the acknowledged one an update (the id and the time of the update).
        bool found = false;
        for (const auto& i : identifiers)
            found = found || (school == "420502P001" ? i.starts_with(id + ".") : i == id);
        CHECK(found);
    }
    CHECK(msg_types == std::set<std::string>{"Alert", "Update"});

    // Filters narrow the set, with the meanings of incidents list.
    auto narrowed = [&](std::vector<std::string> filter, const std::string& out) {
        std::vector<std::string> args{"cap", "export", "--out", d / out};
        args.insert(args.end(), filter.begin(), filter.end());
        auto r = run(args);
        INFO((r.lines.empty() ? std::string() : r.lines[0]));
        REQUIRE(r.code == 0);
        std::set<std::string> listed;
        std::vector<std::string> list{"incidents", "list", "--json"};
        list.insert(list.end(), filter.begin(), filter.end());
        for (const auto& l : run(list).lines)
            listed.insert(json::parse(l)["id"].get<std::string>() + ".xml");
        return std::pair{files_in(d / out), listed};
    };
    auto [district, district_listed] = narrowed({"--district", "420502"}, "xiling");
    CHECK(district.size() == 2);
    CHECK(district.count(incidents["420503P001"]["id"].get<std::string>() + ".xml") == 0);
    auto [kind, kind_listed] = narrowed({"--kind", "emergency"}, "emergency");
    CHECK(kind == kind_listed);
    CHECK(kind == std::set<std::string>{incidents["420503P001"]["id"].get<std::string>() + ".xml"});
    auto [open, open_listed] = narrowed({"--state", "open", "--severity", "Moderate"}, "open");
    CHECK(open == open_listed);
    CHECK(open == std::set<std::string>{incidents["420502K001"]["id"].get<std::string>() + ".xml"});
    auto [none, none_listed] = narrowed({"--mode", "Exercise"}, "exercise");
    CHECK(none.empty());
    CHECK(none_listed.empty());

    // From the store directly, the same alerts.
    REQUIRE(run({"cap", "export", "--out", d / "offline", "--data", d / "store"}).code == 0);
    CHECK(files_in(d / "offline") == names);

    // Several alerts do not go to standard output; one does.
    auto several = run({"cap", "export", "--district", "420502"});
    CHECK(several.code == 2);
    CHECK(has(several, "--out"));
    CHECK_FALSE(has(several, "<alert"));
    auto one = run({"cap", "export", "--kind", "emergency"});
    CHECK(one.code == 0);
    CHECK(has(one,
              "<identifier>" + incidents["420503P001"]["id"].get<std::string>() + "</identifier>"));
    // The filters are for the many: with an incident they are refused.
    CHECK(
        run({"cap", "export", incidents["420503P001"]["id"].get<std::string>(), "--kind", "hazard"})
            .code == 2);
}

TEST_CASE("a withdrawn incident exports as a CAP Cancel of its first alert that validates",
          "[cap]") {
    temp_dir d;
    broker_process b(d / "store", {"--rules", source_path("config/rules/yichang-default.yaml"),
                                   "--clock", "manual:2026-10-12T09:00:00+08:00"});
    b.export_env();
    REQUIRE(run({"publish", emergency_at("420502K001", "EM-W1").dump()}).code == 0);
    REQUIRE(run({"publish", emergency_at("420502P001", "EM-W2").dump()}).code == 0);
    std::map<std::string, std::string> ids; // school -> incident id
    for (const auto& l : run({"incidents", "list", "--json"}).lines) {
        auto j = json::parse(l);
        ids[j["school"].get<std::string>()] = j["id"].get<std::string>();
    }
    REQUIRE(ids.size() == 2);
    auto withdrawn = ids["420502K001"], resolved = ids["420502P001"];
    zmq::context_t ctx(1);
    query_client q(ctx, b.query);
    q.clock(json{{"advance", "20m"}});
    REQUIRE(run({"incidents", "resolve", withdrawn, "--resolution", "误报", "--withdrawn"}).code ==
            0);
    REQUIRE(run({"incidents", "resolve", resolved, "--resolution", "已处置"}).code == 0);

    auto shown = json::parse(run({"incidents", "show", withdrawn, "--json"}).lines.at(0));
    CHECK(shown["state"] == "closed");
    auto milestones = shown["milestones"];
    CHECK(std::find(milestones.begin(), milestones.end(), "withdrawn") != milestones.end());
    bool flagged = false;
    for (const auto& e : shown["timeline"])
        if (e["type"] == "incident.resolved") flagged = e["body"]["withdrawn"] == true;
    CHECK(flagged);
    auto plain = json::parse(run({"incidents", "show", resolved, "--json"}).lines.at(0));
    CHECK(std::find(plain["milestones"].begin(), plain["milestones"].end(), "withdrawn") ==
          plain["milestones"].end());

    auto cancel = d / "cancel.xml";
    REQUIRE(run({"cap", "export", withdrawn, "--out", cancel}).code == 0);
    auto v = xmllint(cancel);
    INFO((v.lines.empty() ? std::string() : v.lines[0]));
    CHECK(v.code == 0);
    auto text = read_file(cancel);
    CHECK(text.find("<msgType>Cancel</msgType>") != std::string::npos);
    CHECK(text.find("<references>pingan@yichang.edu.cn," + withdrawn +
                    ",2026-10-12T09:00:00+08:00</references>") != std::string::npos);
    CHECK(text.find("<urgency>Past</urgency>") != std::string::npos);
    CHECK(text.find("<identifier>" + withdrawn + ".") != std::string::npos);

    // Resolved in the ordinary way: an Update with AllClear, not a Cancel.
    auto update = d / "update.xml";
    REQUIRE(run({"cap", "export", resolved, "--out", update, "--data", d / "store"}).code == 0);
    CHECK(xmllint(update).code == 0);
    auto t2 = read_file(update);
    CHECK(t2.find("<msgType>Update</msgType>") != std::string::npos);
    CHECK(t2.find("<responseType>AllClear</responseType>") != std::string::npos);

    // In a set exported to a directory, the Cancel is there too and validates.
    REQUIRE(run({"cap", "export", "--state", "closed", "--out", d / "closed"}).code == 0);
    auto names = files_in(d / "closed");
    REQUIRE(names.size() == 2);
    int cancels = 0;
    for (const auto& n : names) {
        auto path = std::string(d / "closed") + "/" + n;
        CHECK(xmllint(path).code == 0);
        if (read_file(path).find("<msgType>Cancel</msgType>") != std::string::npos) {
            ++cancels;
            CHECK(n.starts_with(withdrawn + "."));
        }
    }
    CHECK(cancels == 1);
}

TEST_CASE("cap export --type writes each event of the types as a CAP alert that validates, and "
          "refuses the types that carry minors' details",
          "[cap]") {
    temp_dir d;
    broker_process b(d / "store", {"--clock", "manual:2026-10-12T09:00:00+08:00"});
    b.export_env();
    json food = {{"type", "food.alert"},
                 {"school", "420502K001"},
                 {"status", "Actual"},
                 {"severity", "Severe"},
                 {"urgency", "Immediate"},
                 {"certainty", "Likely"},
                 {"occurred_at", "2026-10-12T09:00:00+08:00"},
                 {"body",
                  {{"canteen_id", "CT-1"},
                   {"kind", "illness"},
                   {"cases", 4},
                   {"description", "午餐后4名学生腹泻 <疑似> & 呕吐"}}}};
    REQUIRE(run({"publish", food.dump()}).code == 0);
    food["school"] = "420503P001";
    food["body"]["canteen_id"] = "CT-2";
    REQUIRE(run({"publish", food.dump()}).code == 0);
    REQUIRE(run({"publish", hazard_at("420502P001", "HZ-T1", "Moderate").dump()}).code == 0);
    json psych = {{"type", "psych.alert"},
                  {"school", "420502P001"},
                  {"status", "Actual"},
                  {"scope", "Private"},
                  {"occurred_at", "2026-10-12T09:00:00+08:00"},
                  {"body",
                   {{"alert_id", "PA-1"},
                    {"student_ref", "S-7f3a"},
                    {"risk_level", "orange"},
                    {"source", "teacher"},
                    {"indicator_codes", {"SLP-2"}},
                    {"reported_by_role", "psych_teacher"}}}};
    REQUIRE(run({"publish", psych.dump()}).code == 0);
    std::map<std::string, std::string> ids; // event id -> type
    for (const auto& l : run({"replay", "--json"}).lines)
        if (auto j = json::parse(l); j["type"] == "food.alert" || j["type"] == "hazard.reported")
            ids[j["id"].get<std::string>()] = j["type"].get<std::string>();
    REQUIRE(ids.size() == 3);

    auto r = run({"cap", "export", "--type", "food.alert", "--type", "hazard.reported", "--out",
                  d / "events"});
    REQUIRE(r.code == 0);
    CHECK(has(r, "3 alerts written to"));
    auto names = files_in(d / "events");
    REQUIRE(names.size() == 3);
    for (const auto& [id, type] : ids) {
        INFO(id << " " << type);
        REQUIRE(names.count(id + ".xml") == 1);
        auto path = d / "events/" + id + ".xml";
        auto v = xmllint(path);
        INFO((v.lines.empty() ? std::string() : v.lines[0]));
        CHECK(v.code == 0);
        auto text = read_file(path);
        CHECK(text.find("<identifier>" + id + "</identifier>") != std::string::npos);
        CHECK(text.find("<msgType>Alert</msgType>") != std::string::npos);
        CHECK(text.find("<event>" + type + "</event>") != std::string::npos);
        if (type == "food.alert") {
            CHECK(text.find("<category>Health</category>") != std::string::npos);
            CHECK(text.find("<urgency>Immediate</urgency>") != std::string::npos);
            CHECK(text.find("&lt;疑似&gt; &amp;") != std::string::npos);
        }
    }
    // The export went through the broker and is logged as one.
    auto viewed = run({"replay", "--json", "--type", "access.viewed"});
    REQUIRE(viewed.lines.size() == 1);
    auto v = json::parse(viewed.lines[0]);
    CHECK(v["body"]["what"] == "export");

    // --district narrows; from the store directly, the same files for it.
    REQUIRE(run({"cap", "export", "--type", "food.alert", "--district", "420502", "--out",
                 d / "xiling", "--data", d / "store"})
                .code == 0);
    auto xiling = files_in(d / "xiling");
    REQUIRE(xiling.size() == 1);
    CHECK(ids[xiling.begin()->substr(0, xiling.begin()->size() - 4)] == "food.alert");
    CHECK(read_file(d / "xiling/" + *xiling.begin()).find("420502K001") != std::string::npos);

    // One goes to standard output; several are refused there.
    auto one = run({"cap", "export", "--type", "hazard.reported"});
    CHECK(one.code == 0);
    CHECK(has(one, "<event>hazard.reported</event>"));
    auto several = run({"cap", "export", "--type", "food.alert"});
    CHECK(several.code == 2);
    CHECK(has(several, "--out"));

    // Minors' details are never exported; unknown types are named.
    for (auto t : {"psych.alert", "bullying.reported"}) {
        auto refused = run({"cap", "export", "--type", t, "--out", d / "minors"});
        CHECK(refused.code == 2);
        CHECK(has(refused, "minors' details"));
    }
    CHECK_FALSE(std::filesystem::exists(d / "minors"));
    auto unknown = run({"cap", "export", "--type", "food.alerts", "--out", d / "x"});
    CHECK(unknown.code == 2);
    CHECK(has(unknown, "not an event type"));
}
