// The school staff's mobile page end to end in a real headless Chromium with a
// phone's viewport: a real broker, a real pingan-hazard and pingan-wellbeing
// with credentials issued by the real `pingan credentials`, and the page
// driven the way a safety officer would drive it, online and offline.
//
//   node mobile.test.js BIN_DIR SOURCE_DIR SCREENSHOT_DIR
//
// Exits 0 when every check passed, 1 otherwise.
"use strict";
const { chromium } = require("playwright-core");
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const h = require("./harness")("mobile");
const { BIN, SRC, SHOTS, work, children, check, freePort, start, stop, pingan, replay } = h;
const until = (what, fn, ms = 20000) => h.until(what, fn, ms);

const hazardsIn = (log) => log.filter((e) => e.type === "hazard.reported");

const SCHOOL = "420502K001";
const creds = path.join(work, "credentials.json");
function issue(name, roles) {
  const args = ["credentials", "issue", name, "--file", creds, "--registry", path.join(SRC, "data/schools.csv"),
    "--scope", "school:" + SCHOOL];
  for (const r of roles) args.push("--role", r);
  return pingan(args).trim();
}

// A phone: 390x844, touch, a mobile user agent.
const phone = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  userAgent: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36" };

async function signIn(browser, url, token, who) {
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  page.on("pageerror", (e) => check(false, `${who}: no script error on the page (${e.message})`));
  await page.goto(url);
  await page.fill("#token", token);
  await page.click("#login-submit");
  await page.waitForSelector("#app:not([hidden])");
  return { context, page };
}

async function reportHazard(page, description, location) {
  const form = 'form[data-route="/hazard/report"]';
  await page.selectOption(`${form} [name="area"]`, "fire");
  await page.selectOption(`${form} [name="grade"]`, "general");
  await page.fill(`${form} [name="description"]`, description);
  await page.fill(`${form} [name="location"]`, location);
  await page.click(`${form} button[type="submit"]`);
}

const waitingCount = (page) => page.evaluate(() => Number(document.querySelector("#waiting").getAttribute("data-waiting") || 0));

async function main() {
  const p = await Promise.all([freePort(), freePort(), freePort()]);
  const ep = { ingest: `tcp://127.0.0.1:${p[0]}`, feed: `tcp://127.0.0.1:${p[1]}`, query: `tcp://127.0.0.1:${p[2]}` };
  h.env = { PINGAN_INGEST: ep.ingest, PINGAN_FEED: ep.feed, PINGAN_QUERY: ep.query };
  const registry = path.join(SRC, "data/schools.csv");
  await start("pingan-broker", ["--data", path.join(work, "store"), "--ingest", ep.ingest, "--feed", ep.feed,
    "--query", ep.query, "--registry", registry, "--districts", path.join(SRC, "data/districts.csv"),
    "--rules", path.join(SRC, "config/rules/yichang-default.yaml"), "--log-level", "warn"], /listening ingest=/);

  const officer = issue("zhang.wei", ["safety_officer"]);
  const teacher = issue("wang.fang", ["teacher"]);
  const counsellor = issue("liu.xin", ["psych_teacher"]);
  check((fs.statSync(creds).mode & 0o777) === 0o600, "the credentials file is created with mode 0600");

  const common = ["--http", "127.0.0.1:0", "--registry", registry, "--broker", ep.ingest, "--credentials", creds,
    "--log-level", "warn"];
  const hz = await start("pingan-hazard", ["--data", path.join(work, "hazard"), ...common], /listening http=(\S+)/);
  const hazardUrl = `http://${hz.match[1]}/`;
  const keys = path.join(work, "wellbeing.keys");
  execFileSync(path.join(BIN, "pingan-wellbeing"), ["--make-keys", keys, "--registry", registry]);
  const wb = await start("pingan-wellbeing", ["--data", path.join(work, "wellbeing"), "--keys", keys, ...common],
    /listening http=(\S+)/);
  const wellbeingUrl = `http://${wb.match[1]}/`;

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium", headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"]
  });
  try {
    // A token that is not one is refused on the page.
    {
      const context = await browser.newContext(phone);
      const page = await context.newPage();
      await page.goto(hazardUrl);
      check(await page.isVisible("#login"), "the page opens on the sign-in form");
      check((await page.textContent("#login h2")) === "登录", "the page speaks Chinese first");
      await page.fill("#token", "pgn_000000000000.nope");
      await page.click("#login-submit");
      await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0);
      check(await page.isVisible("#login"), "a wrong token leaves the sign-in form in place");
      await page.click("#lang");
      check((await page.textContent("#login h2")) === "Sign in", "English is one tap away");
      await page.screenshot({ path: path.join(SHOTS, "mobile-login.png") });
      await context.close();
    }

    // Sign in and report a hazard: stored, with the signed-in person as reporter.
    const { context, page } = await signIn(browser, hazardUrl, officer, "zhang.wei");
    check(await page.isVisible('form[data-route="/hazard/report"]'), "a safety officer sees the hazard report form");
    check(await page.isVisible('form[data-route="/hazard/verify"]'), "and the verification form");
    check(await page.evaluate(() => localStorage.getItem("pingan.token") !== null && document.cookie === ""),
      "the token is kept in the page's storage, never in a cookie");
    await page.waitForFunction(() => navigator.serviceWorker && navigator.serviceWorker.controller !== undefined);
    await reportHazard(page, "灭火器过期", "教学楼二楼东侧");
    const first = await until("the report in the broker's log", () => hazardsIn(replay()).find((e) => e.body.description === "灭火器过期"));
    check(first.body.found_by === "zhang.wei", `the stored report names the signed-in person as reporter (found_by ${first.body.found_by})`);
    check(first.source.endsWith("/zhang.wei"), `its source names the person (${first.source})`);
    await page.waitForSelector(`#mine li[data-id="${first.id}"] .tag.stored`, { timeout: 20000 });
    const shown = await page.textContent(`#mine li[data-id="${first.id}"]`);
    check(shown.includes(`偏移 ${first.offset}`), `the page shows the report stored at offset ${first.offset} (${shown})`);
    await page.waitForSelector(`#open-hazards li:has-text("灭火器过期")`);
    check(true, "the school's open hazards list the new hazard");
    await page.screenshot({ path: path.join(SHOTS, "mobile-reported.png"), fullPage: true });

    // Offline: two reports wait on the phone, each with its id made now.
    if (await page.evaluate(() => "serviceWorker" in navigator)) {
      await page.evaluate(() => navigator.serviceWorker.ready);
      check(true, "the service worker that keeps the page is ready");
    }
    await context.setOffline(true);
    await page.waitForSelector("#net.off");
    await reportHazard(page, "楼梯扶手松动", "实验楼三楼");
    await reportHazard(page, "配电箱未上锁", "操场北侧");
    await until("two reports waiting", async () => (await waitingCount(page)) === 2);
    const waitingText = await page.textContent("#waiting-title");
    check(waitingText.includes("2"), `the page says two reports are waiting (${waitingText})`);
    const ids = await page.evaluate(() => window.pingan.queue.map((q) => q.id));
    check(ids.length === 2 && ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)),
      `each waiting report has a UUIDv7 made on the phone (${ids.join(", ")})`);
    await page.screenshot({ path: path.join(SHOTS, "mobile-offline-waiting.png"), fullPage: true });
    // The page reopens without a network (the service worker keeps it) and still waits.
    const reopened = await context.newPage();
    const offlineOpen = await reopened.goto(hazardUrl).then(() => true, () => false);
    if (offlineOpen) {
      await reopened.waitForSelector("#app:not([hidden])");
      await until("the reopened page's queue", async () => (await waitingCount(reopened)) === 2);
      check(true, "the page reopens offline with both reports still waiting");
    } else {
      check(false, "the page reopens offline (service worker cache)");
    }
    await reopened.close();
    check(hazardsIn(replay()).length === 1, "nothing reached the broker while offline");

    await context.setOffline(false);
    await until("the queue to empty", async () => (await waitingCount(page)) === 0, 30000);
    const log = await until("both offline reports stored", () => {
      const h = hazardsIn(replay());
      return ids.every((id) => h.some((e) => e.id === id)) ? h : null;
    });
    for (const id of ids) {
      const n = log.filter((e) => e.id === id).length;
      check(n === 1, `the offline report ${id} is stored exactly once (${n})`);
    }
    check(log.length === 3, `three hazards in the log, no duplicates (${log.length})`);
    check(log.every((e) => e.body.found_by === "zhang.wei"), "every one names zhang.wei as reporter");
    // A resend of one already stored (a lost answer) is stored once still.
    const resend = await page.evaluate(async (id) => {
      const q = { school: "420502K001", id, area: "fire", grade: "general", description: "楼梯扶手松动", location: "实验楼三楼" };
      const r = await fetch("/hazard/report", { method: "POST", body: JSON.stringify(q),
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + localStorage.getItem("pingan.token") } });
      return r.status;
    }, ids[0]);
    check(resend === 200, `a resend of a stored report is answered as a duplicate (${resend})`);
    await page.waitForSelector(`#mine li[data-id="${ids[1]}"] .tag.stored`, { timeout: 20000 });
    check(hazardsIn(replay()).length === 3, "the resend added nothing to the log");
    await page.screenshot({ path: path.join(SHOTS, "mobile-back-online.png"), fullPage: true });
    await context.close();

    // The wellbeing service: the psych form only for a psychology role.
    const t = await signIn(browser, wellbeingUrl, teacher, "wang.fang");
    check(!(await t.page.isVisible('form[data-route="/psych/alert"]')),
      "a teacher without the psychology role does not see the psych alert form");
    await t.page.screenshot({ path: path.join(SHOTS, "mobile-wellbeing-teacher.png"), fullPage: true });
    await t.context.close();
    const c = await signIn(browser, wellbeingUrl, counsellor, "liu.xin");
    check(await c.page.isVisible('form[data-route="/psych/alert"]'), "the psychology teacher sees it");
    const form = 'form[data-route="/psych/alert"]';
    check(await c.page.locator(`${form} textarea`).count() === 0, "the psych form has no free-text field");
    await c.page.fill(`${form} [name="student_id"]`, "2026A0417");
    await c.page.selectOption(`${form} [name="risk_level"]`, "orange");
    await c.page.fill(`${form} [name="indicator_codes"]`, "SI-2, SH-1");
    await c.page.click(`${form} button[type="submit"]`);
    const alert = await until("the psych alert in the log", () => replay().find((e) => e.type === "psych.alert"));
    check(alert.scope === "Private", "the alert is stored with scope Private");
    check(!JSON.stringify(alert).includes("2026A0417"), "the student's number is nowhere in the stored event");
    await c.page.screenshot({ path: path.join(SHOTS, "mobile-wellbeing-counsellor.png"), fullPage: true });
    await c.context.close();
  } finally {
    await browser.close();
    for (const ch of [...children]) await stop(ch);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

h.run(main);
