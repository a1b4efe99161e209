// pingan-console end to end in a real headless Chromium: a real broker (the
// default rule pack, a manual clock), a real pingan-console, real users made
// with `pingan users`, and the page driven the way a person would drive it.
//
//   node console.test.js BIN_DIR SOURCE_DIR SCREENSHOT_DIR
//
// Exits 0 when every check passed, 1 with the first failure otherwise.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");
const h = require("./harness")("console");
const { BIN, SRC, SHOTS, work, children, check, freePort, start, stop, pingan, replay } = h;
const { until } = h;

function publish(obj) {
  const out = JSON.parse(pingan(["publish", JSON.stringify(obj)]).trim().split("\n").pop());
  if (!out.offset) throw new Error("publish failed: " + JSON.stringify(out));
  return out.offset;
}

const AT = "2026-11-30T09:00:00+08:00";
const psych = (id, school, status) => ({
  type: "psych.alert", school, status: status || "Actual", severity: "Severe", scope: "Private", occurred_at: AT,
  body: { alert_id: id, student_ref: "stu-" + id, risk_level: "red", source: "teacher", indicator_codes: ["SI-2", "SH-1"], reported_by_role: "counsellor" }
});
const hazard = (id, school, status) => ({
  type: "hazard.reported", school, status: status || "Actual", severity: "Moderate", occurred_at: AT,
  body: { hazard_id: id, area: "fire", grade: "general", description: "灭火器过期", location: "教学楼2层", found_by: "wang" }
});
const reading = (school, c) => ({
  type: "food.temp_reading", school, status: "Actual", occurred_at: AT,
  body: { canteen_id: "C1", sensor_id: "S1", zone: "cold_storage", celsius: c }
});

async function login(browser, user, password) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => check(false, `${user}: no script error on the page (${e.message})`));
  await page.goto(consoleUrl);
  await page.fill("#login-user", user);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForFunction(() => window.pingan && window.pingan.me && document.querySelector("#conn") &&
    !document.querySelector("#conn").classList.contains("down"));
  return page;
}

// Every offset the page holds, as a sorted list.
const offsetsOf = (page) => page.evaluate(() => window.pingan.events.map((e) => e.offset));
const has = (page, off) => page.evaluate((o) => window.pingan.byOffset.has(o), off);

let consoleUrl = "";

async function main() {
  const p = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const ep = { ingest: `tcp://127.0.0.1:${p[0]}`, feed: `tcp://127.0.0.1:${p[1]}`, query: `tcp://127.0.0.1:${p[2]}` };
  h.env = { PINGAN_INGEST: ep.ingest, PINGAN_FEED: ep.feed, PINGAN_QUERY: ep.query };
  const brokerArgs = ["--data", path.join(work, "store"), "--ingest", ep.ingest, "--feed", ep.feed, "--query", ep.query,
    "--registry", path.join(SRC, "data/schools.csv"), "--districts", path.join(SRC, "data/districts.csv"),
    "--rules", path.join(SRC, "config/rules/yichang-default.yaml"), "--clock", "manual:" + AT, "--log-level", "warn"];
  let broker = (await start("pingan-broker", brokerArgs, /listening ingest=/)).proc;

  // Users: a city supervisor, a cleared city counsellor, a district responder.
  const users = path.join(work, "users.json");
  pingan(["users", "add", "chen", "--file", users, "--scope", "city", "--role", "supervisor", "--password-stdin"], "chen-password-1\n");
  pingan(["users", "add", "wu", "--file", users, "--scope", "city", "--role", "viewer", "--clearance", "minors", "--password-stdin"], "wu-password-1\n");
  pingan(["users", "add", "li", "--file", users, "--scope", "district:420503", "--role", "responder", "--password-stdin"], "li-password-1\n");
  check((fs.statSync(users).mode & 0o777) === 0o600, "the users file is created with mode 0600");

  const consoleArgs = ["--http", `127.0.0.1:${p[3]}`, "--users", users, "--sessions", path.join(work, "sessions.json"), "--registry", path.join(SRC, "data/schools.csv"),
    "--ingest", ep.ingest, "--feed", ep.feed, "--query", ep.query, "--log-level", "warn"];
  let con = (await start("pingan-console", consoleArgs, /listening http=(\S+)/));
  consoleUrl = `http://${con.match[1]}/`;
  con = con.proc;

  // Events before any page is open.
  publish(psych("A1", "420502K001"));
  publish(hazard("H-X1", "420503P001", "Exercise"));
  publish(reading("420502K001", 3.5));

  // Each browser gets a fresh profile (--user-data-dir, given by playwright
  // from the folder passed here): one for the city supervisor's page that
  // lives through the restarts, one for the other users in turn.
  const launch = () => chromium.launchPersistentContext(fs.mkdtempSync(path.join(work, "chromium-")), {
    executablePath: "/usr/bin/chromium", headless: true, viewport: { width: 1280, height: 860 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"]
  });
  const browser = await launch();
  const others = await launch();
  try {
    // A wrong password is refused.
    const bad = await others.newPage();
    await bad.goto(consoleUrl);
    await bad.fill("#login-user", "chen");
    await bad.fill("#login-password", "wrong-password");
    await bad.click("#login-submit");
    await bad.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
    check(await bad.isVisible("#login"), "a wrong password leaves the login form in place");
    await bad.screenshot({ path: path.join(SHOTS, "login.png") });
    await bad.close();

    const chen = await login(browser, "chen", "chen-password-1");
    await chen.waitForSelector("[data-incident]");

    // An event published after the page loaded appears on it.
    const live = publish(hazard("H-L1", "420502K001"));
    await chen.waitForFunction((o) => window.pingan.byOffset.has(o), live);
    await chen.waitForSelector(`[data-incident][data-mode="Actual"] >> text=H-L1`);
    check(true, "an event published after the page loaded appears on it");
    // The broker's clock stands at 09:00 and the hazard is due in 7 days:
    // the countdown runs on the broker's clock, not the browser's.
    await chen.waitForFunction(() => window.pingan.skew !== 0);
    const left = await chen.textContent(`[data-incident][data-mode="Actual"]:has-text("H-L1") .countdown`);
    check(/^(7d 00:00:0\d|6d 23:59:\d\d)$/.test(left), `the deadline counts down on the broker's clock (${left})`);

    // Minors' details: redacted for a user without clearance.
    const a1 = await chen.evaluate(() => window.pingan.events.find((e) => e.type === "psych.alert"));
    check(a1 && a1.body.student_ref === "redacted" && a1.body.indicator_codes.every((c) => c === "redacted"),
      "a psych alert is redacted for a user without clearance");
    check(!(await chen.content()).includes("stu-A1") &&
      !(await chen.evaluate(() => JSON.stringify([window.pingan.events, [...window.pingan.incidents.values()]]))).includes("stu-A1"),
      "the page of a user without clearance never holds the student reference, not even in a page's text");

    // An alert card shows the message last sent and every tier and roles told,
    // as the broker's pages in the log say; a school-tier page of an incident
    // on minors is redacted for a user without clearance, who was told is not.
    const inc = await chen.evaluate(() => [...window.pingan.incidents.values()].find((i) => i.kind.startsWith("psych")).id);
    const card = chen.locator(`[data-incident="${inc}"]`);
    const pagesOf = (id) => replay().filter((e) => e.type === "notification.requested" && e.body.incident_id === id);
    const cardShows = async (id, what, message) => {
      const pages = pagesOf(id);
      const told = [...new Set(pages.map((n) => `${n.body.tier}: ${n.body.roles.join(", ")}`))];
      const want = message === undefined ? (pages.length ? pages[pages.length - 1].body.text : "") : message;
      const c = chen.locator(`[data-incident="${id}"]`);
      let last = null;
      const ok = await until(what, async () => {
        last = { msg: await c.locator("dd.msg").textContent(), told: await c.locator("dd.msg + dt + dd").textContent() };
        return pages.length > 0 && last.msg === want && told.every((w) => last.told.includes(w));
      }, 5000).catch(() => false);
      check(ok, `${what}: the message sent (${last && last.msg}) and who was told (${told.join("；")})`);
      return pages;
    };
    const hl1 = await chen.evaluate(() => [...window.pingan.incidents.values()].find((i) => i.subject === "H-L1").id);
    await cardShows(hl1, "the hazard's alert card");
    const pages = await cardShows(inc, "the psych alert's card, for a user without clearance", "redacted");

    // Two minutes pass on the broker's clock before anyone acknowledges.
    pingan(["clock", "--advance", "2m"]);
    // Acknowledge the psych incident with its button.
    await card.locator('[data-test="note-text"]').fill("值班员已到场");
    await card.locator('[data-action="ack"]').click();
    const ack = await until("the acknowledgement in the log", () =>
      replay().find((e) => e.type === "incident.acknowledged" && e.body.incident_id === inc));
    check(ack.body.note.includes("console user chen") && ack.body.note.includes("值班员已到场"),
      `the acknowledgement is in the log with the user's identity (${ack.body.note})`);
    check(ack.source.startsWith("pingan-console/"), "the acknowledgement's source is the console");
    await chen.waitForSelector(`[data-incident="${inc}"][data-state="acknowledged"]`);
    await chen.screenshot({ path: path.join(SHOTS, "alerts.png"), fullPage: true });

    // A note: its own event type, with the user's identity, changing nothing of the state.
    await card.locator('[data-test="note-text"]').fill("家长已联系");
    await card.locator('[data-action="note"]').click();
    const note = await until("the note in the log", () =>
      replay().find((e) => e.type === "incident.note" && e.body.incident_id === inc));
    check(note.body.text.includes("console user chen") && note.body.text.includes("家长已联系"),
      `the note is in the log as incident.note with the user's identity (${note.body.text})`);
    check(!replay().some((e) => e.type === "incident.acknowledged" && e.body.incident_id === inc && e.body.note.includes("(note)")),
      "a note is not recorded as an acknowledgement");
    await chen.waitForSelector(`[data-incident="${inc}"][data-state="acknowledged"]`);

    // The incident page: the timeline from the report through the rules and pages.
    await card.locator('[data-action="open"]').click();
    await chen.waitForSelector('[data-test="timeline"] li[data-type="incident.acknowledged"]');
    await chen.waitForSelector('[data-test="timeline"] li[data-type="incident.note"]');
    const types = await chen.$$eval('[data-test="timeline"] li', (l) => l.map((x) => x.dataset.type));
    check(types[0] === "psych.alert" && types.includes("incident.opened") && types.includes("notification.requested"),
      `the timeline runs from the report through the rule and pages (${types.join(", ")})`);
    check((await chen.textContent('[data-test="timeline"]')).includes("psych."), "the timeline names the rule");
    // Each page in the timeline carries its rule's basis tag (as the rule pack
    // says) and the hash of the rule set that decided it.
    const pack = fs.readFileSync(path.join(SRC, "config/rules/yichang-default.yaml"), "utf8");
    const basisOf = (rule) => (pack.match(new RegExp(`- id: ${rule.replace(/\./g, "\\.")}\\n\\s+basis: ([SLM])\\b`)) || [])[1];
    for (const n of pages) {
      const meta = await chen.textContent(`[data-test="timeline"] li[data-offset="${n.offset}"] .meta`);
      const basis = basisOf(n.body.rule_id);
      check(basis !== undefined && n.body.basis === basis && meta.includes(`依据 ${basis}`),
        `the page at #${n.offset} shows its rule's basis tag ${basis} (${meta})`);
      check(/^[0-9a-f]{16}/.test(n.body.ruleset_hash) && meta.includes(`规则集 ${n.body.ruleset_hash.slice(0, 16)}`),
        `the page at #${n.offset} shows the rule-set hash (${meta})`);
    }
    // The time between steps: the acknowledgement came two minutes after the page before it.
    const ackDur = await chen.$eval('[data-test="timeline"] li[data-type="incident.acknowledged"]',
      (li) => li.previousElementSibling && li.previousElementSibling.classList.contains("dur") ? li.previousElementSibling.textContent : null);
    check(ackDur === "+2m 0s", `the timeline shows the two minutes before the acknowledgement (${ackDur})`);
    await chen.screenshot({ path: path.join(SHOTS, "incident.png"), fullPage: true });

    // Test traffic is hidden until "show Test" is ticked, and hidden again after.
    await chen.click('nav button[data-view="alerts"]');
    const testOff = publish(hazard("H-T1", "420502K001", "Test"));
    const afterTest = publish(hazard("H-T2", "420502K001"));
    await chen.waitForSelector(`[data-incident][data-mode="Actual"] >> text=H-T2`);
    const testShown = () => chen.evaluate((o) => ({
      event: window.pingan.byOffset.has(o),
      card: [...document.querySelectorAll('[data-incident][data-mode="Test"]')].some((c) => c.textContent.includes("H-T1"))
    }), testOff);
    let seen = await testShown();
    check(!seen.event && !seen.card && await chen.evaluate((o) => window.pingan.lastOffset >= o, afterTest),
      `Test traffic is hidden by default (${JSON.stringify(seen)})`);
    await chen.check("#show-test");
    await chen.waitForFunction((o) => window.pingan.byOffset.has(o), testOff);
    await chen.waitForSelector(`[data-incident][data-mode="Test"] >> text=H-T1`);
    check((await chen.textContent(`[data-incident][data-mode="Test"]:has-text("H-T1") h3`)).includes("TEST"),
      "with show Test ticked the Test event and its incident show, tagged TEST");
    await chen.uncheck("#show-test");
    await chen.waitForFunction((o) => window.pingan.lastOffset >= o && window.pingan.byOffset.has(o), afterTest);
    await chen.waitForSelector(`[data-incident][data-mode="Actual"] >> text=H-T2`);
    seen = await testShown();
    check(!seen.event && !seen.card, `unticking show Test hides Test traffic again (${JSON.stringify(seen)})`);

    // The live feed, with readings folded away, and the district grid.
    await chen.click('nav button[data-view="feed"]');
    await chen.waitForSelector("#feed-body tr");
    check(await chen.locator('#feed-body tr[data-type="food.temp_reading"]').count() === 0, "sensor readings are folded away by default");
    await chen.check("#f-readings");
    check(await chen.locator('#feed-body tr[data-type="food.temp_reading"]').count() === 1, "sensor readings show when asked");
    check((await chen.textContent("#feed-body")).includes("西陵区第1幼儿园"), "the feed names schools in Chinese from the registry");
    check((await chen.textContent("#feed-body")).includes("CST"), "the feed shows times in CST");

    // The feed's filters: two events of different districts, schools, types
    // and severities; each filter shows exactly the events that match it
    // (the newest first), and clearing it shows them all again.
    await chen.uncheck("#f-readings");
    const f1 = publish({ ...hazard("H-F1", "420504P001"), severity: "Minor" });
    const f2 = publish(psych("A-F2", "420505P001"));
    await chen.waitForFunction(([a, b]) => window.pingan.byOffset.has(a) && window.pingan.byOffset.has(b), [f1, f2]);
    const feedShows = async (what, keep, want, not) => {
      let last = null;
      const rows = await until(what, async () => {
        last = await chen.evaluate(() => ({
          rows: [...document.querySelectorAll("#feed-body tr")].map((tr) => Number(tr.dataset.offset)),
          events: window.pingan.events.map((e) => ({ offset: e.offset, type: e.type, district: e.district, school: e.school, severity: e.severity }))
        }));
        const expected = last.events.filter((e) => e.type !== "food.temp_reading" && keep(e)).map((e) => e.offset).reverse().slice(0, 500);
        return last.rows.length === expected.length && last.rows.every((o, i) => o === expected[i]) ? last.rows : null;
      }, 5000).catch(() => null);
      check(rows !== null && want.every((o) => rows.includes(o)) && !not.some((o) => rows.includes(o)),
        `${what}: only the matching rows show (${rows ? rows.length : "rows " + JSON.stringify(last && last.rows)} of ${last ? last.events.length : 0} events)`);
    };
    await feedShows("no filter", () => true, [f1, f2], []);
    await chen.selectOption("#f-district", "420504");
    await feedShows("the district filter", (e) => e.district === "420504", [f1], [f2]);
    const districtCells = await chen.$$eval("#feed-body tr td:nth-child(2)", (l) => l.map((x) => x.textContent));
    check(districtCells.length > 0 && districtCells.every((x) => x === "点军区"), `the district filter's rows all name 点军区 (${[...new Set(districtCells)]})`);
    await chen.selectOption("#f-district", "");
    await feedShows("the district filter cleared", () => true, [f1, f2], []);
    await chen.selectOption("#f-school", "420505P001");
    await feedShows("the school filter", (e) => e.school === "420505P001", [f2], [f1]);
    await chen.selectOption("#f-school", "");
    await chen.selectOption("#f-type", "psych.alert");
    await feedShows("the type filter", (e) => e.type === "psych.alert", [f2], [f1]);
    await chen.selectOption("#f-type", "");
    await chen.selectOption("#f-severity", "Minor");
    await feedShows("the severity filter", (e) => e.severity === "Minor", [f1], [f2]);
    await chen.selectOption("#f-severity", "");
    await feedShows("every filter cleared", () => true, [f1, f2], []);
    await chen.screenshot({ path: path.join(SHOTS, "feed.png"), fullPage: true });
    await chen.click('nav button[data-view="where"]');
    await chen.waitForSelector("[data-district]");
    check(await chen.locator("[data-district]").count() === 13, "the district grid shows the 13 districts");
    await chen.screenshot({ path: path.join(SHOTS, "where.png"), fullPage: true });
    await chen.click('[data-district="420502"]');
    await chen.waitForSelector('[data-school="420502K001"]');
    await chen.screenshot({ path: path.join(SHOTS, "where-district.png"), fullPage: true });
    // A school's cell counts its open incidents; a click opens the feed filtered to it.
    const openHere = await chen.evaluate(() => [...window.pingan.incidents.values()].filter((i) => i.school === "420502K001" && i.state !== "closed").length);
    const cellCount = await chen.textContent('[data-school="420502K001"] .n');
    check(openHere > 0 && cellCount === String(openHere), `the school's cell counts its open incidents (${cellCount} of ${openHere})`);
    await chen.click('[data-school="420502K001"]');
    await chen.waitForSelector("#view-feed:not(.hidden)");
    check(await chen.inputValue("#f-district") === "420502" && await chen.inputValue("#f-school") === "420502K001",
      "a click on a school opens the feed with its district and school selected");
    await feedShows("the feed of the school clicked in the grid", (e) => e.school === "420502K001", [live, afterTest], [f1, f2]);
    const schoolCells = await chen.$$eval("#feed-body tr td:nth-child(3)", (l) => l.map((x) => x.textContent));
    check(schoolCells.length > 0 && schoolCells.every((x) => x === "西陵区第1幼儿园"),
      `the school's feed rows all name 西陵区第1幼儿园 (${[...new Set(schoolCells)]})`);
    await chen.selectOption("#f-district", "");
    await chen.click("#lang");
    await chen.click('nav button[data-view="alerts"]');
    check((await chen.textContent("nav")).includes("Alerts"), "English is available");
    await chen.screenshot({ path: path.join(SHOTS, "alerts-en.png"), fullPage: true });
    await chen.click("#lang");

    // A cleared user sees the details, and the view is logged.
    const wu = await login(others, "wu", "wu-password-1");
    await wu.waitForFunction(() => window.pingan.events.some((e) => e.type === "psych.alert"));
    const a1c = await wu.evaluate(() => window.pingan.events.find((e) => e.type === "psych.alert"));
    check(a1c.body.student_ref === "stu-A1", "a cleared user sees the student reference");
    const viewed = await until("access.viewed in the log", () =>
      replay().find((e) => e.type === "access.viewed" && e.body.viewer === "console user wu"));
    check(viewed.body.count >= 1 && viewed.body.schools.includes("420502K001"), "the cleared user's view is logged as access.viewed");
    check(await wu.locator('[data-action="ack"]').count() === 0, "a viewer gets no acknowledge button");
    await wu.click("#logout");
    await wu.waitForSelector("#login", { state: "visible" });
    check((await wu.evaluate(async () => (await fetch("/api/me")).status)) === 401, "after logging out the session is gone");
    await wu.close();

    // A district user sees only the district; the exercise shows its banner.
    const li = await login(others, "li", "li-password-1");
    await li.waitForSelector("[data-incident]");
    const liIncidents = await li.evaluate(() => [...window.pingan.incidents.values()].map((i) => i.district));
    check(liIncidents.length > 0 && liIncidents.every((d) => d === "420503"), "a district user does not see another district's incident");
    check(await li.evaluate(() => window.pingan.events.every((e) => e.district === "420503")), "a district user gets no other district's events");
    check(await li.isVisible('[data-test="exercise-banner"]'), "the EXERCISE banner shows for an exercise event");
    check((await li.textContent('[data-test="exercise-banner"]')).includes("EXERCISE"), "the banner says EXERCISE");
    await li.screenshot({ path: path.join(SHOTS, "district-exercise.png"), fullPage: true });
    // The server refuses what the page does not offer: acting on another district's incident.
    const refused = await li.evaluate(async (id) => {
      const me = await (await fetch("/api/me")).json();
      const r = await fetch(`/api/incidents/${id}/ack`, { method: "POST", headers: { "X-CSRF-Token": me.csrf }, body: "{}" });
      return r.status;
    }, inc);
    check(refused === 404, `a district user cannot acknowledge another district's incident (HTTP ${refused})`);
    const nocsrf = await li.evaluate(async () => (await fetch("/api/incidents/x/ack", { method: "POST", body: "{}" })).status);
    check(nocsrf === 403, `an action without the CSRF token is refused (HTTP ${nocsrf})`);
    // A body of the wrong shape is answered 400, and the console keeps serving.
    const badShape = await li.evaluate(async () => {
      const me = await (await fetch("/api/me")).json();
      const id = [...window.pingan.incidents.keys()][0];
      const r = await fetch(`/api/incidents/${id}/ack`, { method: "POST", headers: { "X-CSRF-Token": me.csrf }, body: '{"text": 5}' });
      return [r.status, (await fetch("/api/me")).status];
    });
    check(badShape[0] === 400 && badShape[1] === 200, `a text that is not a string is refused and the console goes on (HTTP ${badShape})`);
    await li.close();

    // The page survives a console restart without a gap or a duplicate.
    check(await stop(con) === 0, "the console stops cleanly on SIGTERM");
    const whileDown = publish(hazard("H-R1", "420504P001"));
    // Down long enough for the page to find the console unreachable and keep trying.
    await new Promise((r) => setTimeout(r, 2500));
    check(await chen.evaluate(() => window.pingan.ws === null), "the page notices that the console is down");
    con = (await start("pingan-console", consoleArgs, /listening http=/)).proc;
    await chen.waitForFunction((o) => window.pingan.byOffset.has(o), whileDown, { timeout: 30000 });
    check(true, "an event published while the console was down reaches the page after the restart");

    // ... and a broker restart.
    check(await stop(broker) === 0, "the broker stops cleanly");
    broker = (await start("pingan-broker", brokerArgs, /listening ingest=/)).proc;
    const after = publish(psych("A2", "420505P001"));
    await chen.waitForFunction((o) => window.pingan.byOffset.has(o), after, { timeout: 30000 });
    check(true, "an event published after a broker restart reaches the page");

    // Nothing skipped, nothing twice: the page holds exactly the log's offsets.
    const head = await until("the page at the head", async () => {
      const log = replay().filter((e) => e.status !== "Test").map((e) => e.offset);
      const mine = await offsetsOf(chen);
      return log.length && mine.length === log.length && mine.every((o, i) => o === log[i]) ? log : null;
    }).catch(() => null);
    const mine = await offsetsOf(chen);
    check(head !== null, `the page holds every offset of the log once, in order (${mine.length} events, last ${mine[mine.length - 1]})`);
    check(await chen.evaluate(() => window.pingan.dups) === 0, "the page received no event twice");
    await chen.click('nav button[data-view="alerts"]');
    await chen.screenshot({ path: path.join(SHOTS, "after-restarts.png"), fullPage: true });
  } finally {
    await browser.close();
    await others.close();
    for (const c of [...children]) await stop(c);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

h.run(main);
