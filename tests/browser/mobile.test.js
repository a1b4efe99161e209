// The school staff's mobile page end to end in a real headless Chromium with a
// phone's viewport: a real broker, a real pingan-hazard, pingan-drill,
// pingan-canteen and pingan-wellbeing with credentials issued by the real
// `pingan credentials`, and the page driven the way school staff would drive
// it, online and offline, with photos of a hazard, its rectification and its
// verification; and the bureau's pingan-console, running from the start,
// showing the report in its live feed and the photos on the incident page,
// fetched from the school service with the bureau's credential.
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
function issue(name, roles, scope) {
  const args = ["credentials", "issue", name, "--file", creds, "--registry", path.join(SRC, "data/schools.csv"),
    "--scope", scope || "school:" + SCHOOL];
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

// A camera's JPEG: drawn in the page (smooth, or noise that compresses
// badly), with an Exif block carrying a GPS position spliced in after SOI.
const GPS_LATITUDE = [30, 1, 41, 1, 5200, 100]; // 30°41'52.00"
async function cameraJpeg(page, w, h, noise) {
  const b64 = await page.evaluate(({ w, h, noise }) => {
    const c = document.createElement("canvas"); c.width = w; c.height = h;
    const g = c.getContext("2d");
    if (noise) {
      const img = g.createImageData(w, h);
      for (let i = 0; i < img.data.length; i++) img.data[i] = (i % 4 === 3) ? 255 : Math.random() * 256;
      g.putImageData(img, 0, 0);
    } else {
      const grad = g.createLinearGradient(0, 0, w, h);
      grad.addColorStop(0, "#c0392b"); grad.addColorStop(1, "#2980b9");
      g.fillStyle = grad; g.fillRect(0, 0, w, h);
      g.fillStyle = "#fff"; g.font = "120px sans-serif"; g.fillText("隐患 HAZARD", 100, h / 2);
    }
    return c.toDataURL("image/jpeg", 0.92).split(",")[1];
  }, { w, h, noise });
  const jpeg = Buffer.from(b64, "base64");
  // TIFF (little-endian): IFD0 with GPSInfo -> GPS IFD with the latitude.
  const t = Buffer.alloc(8 + 18 + 30 + 24);
  t.write("II", 0); t.writeUInt16LE(42, 2); t.writeUInt32LE(8, 4);
  t.writeUInt16LE(1, 8); t.writeUInt16LE(0x8825, 10); t.writeUInt16LE(4, 12); t.writeUInt32LE(1, 14); t.writeUInt32LE(26, 18);
  t.writeUInt32LE(0, 22);
  t.writeUInt16LE(2, 26);
  t.writeUInt16LE(1, 28); t.writeUInt16LE(2, 30); t.writeUInt32LE(2, 32); t.write("N\0", 36);
  t.writeUInt16LE(2, 40); t.writeUInt16LE(5, 42); t.writeUInt32LE(3, 44); t.writeUInt32LE(56, 48);
  t.writeUInt32LE(0, 52);
  GPS_LATITUDE.forEach((v, i) => t.writeUInt32LE(v, 56 + 4 * i));
  const exif = Buffer.concat([Buffer.from("Exif\0\0", "binary"), t]);
  const app1 = Buffer.alloc(4); app1[0] = 0xff; app1[1] = 0xe1; app1.writeUInt16BE(exif.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), app1, exif, jpeg.subarray(2)]);
}
function gpsBytes() {
  const b = Buffer.alloc(24);
  GPS_LATITUDE.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
  return b;
}
// A JPEG's dimensions from its frame header.
function jpegSize(b) {
  for (let i = 2; i + 9 < b.length;) {
    if (b[i] !== 0xff) return null;
    const m = b[i + 1], len = b.readUInt16BE(i + 2);
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc)
      return { h: b.readUInt16BE(i + 5), w: b.readUInt16BE(i + 7) };
    i += 2 + len;
  }
  return null;
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
  const fixer = issue("zhao.gang", ["facilities_manager"]);
  const drillLeader = issue("sun.li", ["drill_leader"]);
  const canteenManager = issue("zhou.min", ["canteen_manager"]);
  const bureau = issue("xiling.bureau", ["bureau"], "district:420502");
  const bureauToken = path.join(work, "bureau.token");
  fs.writeFileSync(bureauToken, bureau + "\n", { mode: 0o600 });
  check((fs.statSync(creds).mode & 0o777) === 0o600, "the credentials file is created with mode 0600");

  const common = ["--http", "127.0.0.1:0", "--registry", registry, "--broker", ep.ingest, "--credentials", creds,
    "--query", ep.query, "--incidents-every", "300ms", "--log-level", "warn"];
  const PHOTO_LIMIT = 300000;
  const hz = await start("pingan-hazard", ["--data", path.join(work, "hazard"), "--max-photo-bytes", String(PHOTO_LIMIT),
    ...common], /listening http=(\S+)/);
  const hazardUrl = `http://${hz.match[1]}/`;
  const keys = path.join(work, "wellbeing.keys");
  execFileSync(path.join(BIN, "pingan-wellbeing"), ["--make-keys", keys, "--registry", registry]);
  const wb = await start("pingan-wellbeing", ["--data", path.join(work, "wellbeing"), "--keys", keys, ...common],
    /listening http=(\S+)/);
  const wellbeingUrl = `http://${wb.match[1]}/`;
  const dr = await start("pingan-drill", ["--data", path.join(work, "drill"), ...common], /listening http=(\S+)/);
  const drillUrl = `http://${dr.match[1]}/`;
  const ct = await start("pingan-canteen", ["--data", path.join(work, "canteen"), "--udp", "", "--tcp", "", ...common],
    /listening http=(\S+)/);
  const canteenUrl = `http://${ct.match[1]}/`;

  // The bureau's console runs from before the first report.
  const users = path.join(work, "users.json");
  pingan(["users", "add", "chen", "--file", users, "--scope", "city", "--role", "supervisor", "--password-stdin"], "chen-password-1\n");
  const con = await start("pingan-console", ["--http", "127.0.0.1:0", "--users", users, "--registry", registry,
    "--ingest", ep.ingest, "--feed", ep.feed, "--query", ep.query, "--photo-source", hazardUrl,
    "--photo-token-file", bureauToken, "--data", path.join(work, "console"), "--log-level", "warn"], /listening http=(\S+)/);

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium", headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"]
  });
  try {
    const desk = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const cp = await desk.newPage();
    cp.on("pageerror", (e) => check(false, `console: no script error on the page (${e.message})`));
    await cp.goto(`http://${con.match[1]}/`);
    await cp.fill("#login-user", "chen");
    await cp.fill("#login-password", "chen-password-1");
    await cp.click("#login-submit");
    // The console's live feed: a row for the event at `offset`, of `type`.
    const feedRow = async (offset, type, text) => {
      await cp.click('button[data-view="feed"]');
      const row = `#feed-body tr[data-offset="${offset}"][data-type="${type}"]`;
      await cp.waitForSelector(row, { timeout: 20000 });
      const shown = await cp.textContent(row);
      check(shown.includes(text), `the console's live feed shows the ${type} at offset ${offset} (${shown})`);
      return row;
    };
    // A photo on the console's incident page, loaded and as wide as stored.
    const consolePhoto = (hash, width) => cp.waitForFunction(({ hash, width }) => {
      const img = document.querySelector(`[data-test="timeline"] img[data-hash="${hash}"]`);
      return img && img.complete && img.naturalWidth === width;
    }, { hash, width }, { timeout: 20000 });

    // A token that is not one is refused on the page.
    {
      const context = await browser.newContext(phone);
      const page = await context.newPage();
      await page.goto(hazardUrl);
      // The page's script shows the form once it has read its storage.
      const shown = await page.waitForSelector("#login", { state: "visible", timeout: 10000 })
        .then(() => true, () => false);
      check(shown, "the page opens on the sign-in form");
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

    // The incident the report opened is acknowledged: the page says so, with the time.
    const incident = await until("the report's incident", () => pingan(["incidents", "list", "--json"]).trim()
      .split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((i) => i.cause === first.id));
    pingan(["incidents", "ack", incident.id]);
    await page.waitForSelector(`#mine li[data-id="${first.id}"] .tag.acked`, { timeout: 40000 });
    const acked = await page.textContent(`#mine li[data-id="${first.id}"] .tag.acked`);
    check(/已确认 · \d\d:\d\d/.test(acked), `the page shows the report's incident acknowledged, with the time (${acked})`);
    await page.screenshot({ path: path.join(SHOTS, "mobile-acknowledged.png"), fullPage: true });

    // A hazard with a photo: a 2400x1800 camera JPEG with a GPS position,
    // made smaller on the phone, stored by hash, named in the stored event.
    const hform = 'form[data-route="/hazard/report"]';
    const photo = await cameraJpeg(page, 2400, 1800, false);
    check(photo.includes(gpsBytes()), "the camera photo carries a GPS position");
    await page.setInputFiles(`${hform} [name="photo"]`, { name: "hazard.jpg", mimeType: "image/jpeg", buffer: photo });
    await reportHazard(page, "消防通道堵塞", "食堂后门");
    const withPhoto = await until("the report with its photo", () => hazardsIn(replay()).find((e) => e.body.description === "消防通道堵塞"));
    const refs = withPhoto.body.photo_refs || [];
    check(refs.length === 1 && /^[0-9a-f]{64}$/.test(refs[0].hash) && refs[0].type === "image/jpeg",
      `the stored report names its photo by hash, size and type (${JSON.stringify(refs)})`);
    const res = await fetch(`${hazardUrl}photos/${refs[0].hash}`, { headers: { Authorization: "Bearer " + officer } });
    const stored = Buffer.from(await res.arrayBuffer());
    check(res.status === 200 && stored.length === refs[0].size, `the service serves the photo's ${refs[0].size} bytes (${res.status}, ${stored.length})`);
    const dims = jpegSize(stored);
    check(dims && dims.w === 1600 && dims.h === 1200, `the phone made it 1600x1200 (${JSON.stringify(dims)})`);
    check(!stored.includes(gpsBytes()) && !stored.includes(Buffer.from("Exif")), "no GPS position and no Exif block in the stored photo");
    await page.waitForFunction((hash) => {
      const img = document.querySelector(`#open-hazards img[data-hash="${hash}"]`);
      return img && img.complete && img.naturalWidth === 1600;
    }, refs[0].hash, { timeout: 20000 });
    check(true, "the open hazard shows its photo on the phone");
    await page.screenshot({ path: path.join(SHOTS, "mobile-photo.png"), fullPage: true });

    // The console, running all along, shows the report in its live feed, and
    // the photo on the incident the hazard opened, fetched from the school
    // service with the bureau's credential.
    const reportRow = await feedRow(withPhoto.offset, "hazard.reported", "消防通道堵塞");
    await cp.screenshot({ path: path.join(SHOTS, "console-feed-report.png"), fullPage: true });
    const photoIncident = await until("the photo hazard's incident on the console", () => cp.evaluate((hid) =>
      [...(window.pingan.incidents || new Map()).values()].find((i) => i.subject === hid || (i.title || "").includes(hid)), withPhoto.body.hazard_id));
    await cp.click('button[data-view="alerts"]');
    await cp.click(`[data-incident="${photoIncident.id}"] [data-action="open"]`);
    await consolePhoto(refs[0].hash, 1600);
    check(true, "the console's incident page shows the hazard's photo");
    const viaConsole = await cp.evaluate(async (hash) => (await fetch("/photos/" + hash)).status, refs[0].hash);
    check(viaConsole === 200, `the console serves the photo to a user who may see the event (${viaConsole})`);
    const unnamed = await cp.evaluate(async () => (await fetch("/photos/" + "0".repeat(64))).status);
    check(unnamed === 404, `a hash no visible event names is not fetched (${unnamed})`);
    await cp.screenshot({ path: path.join(SHOTS, "console-incident-photo.png"), fullPage: true });

    // A file that is not an image, and a photo still too large when made smaller: clear messages, nothing queued.
    await page.setInputFiles(`${hform} [name="photo"]`, { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a photo") });
    await reportHazard(page, "不是图片", "某处");
    await page.waitForFunction((f) => document.querySelector(`${f} [data-form-error]`).textContent.length > 0, hform);
    const notImage = await page.textContent(`${hform} [data-form-error]`);
    check(notImage.includes("notes.txt") && notImage.includes("不是可以读取的图片"), `a non-image is refused on the phone, naming the file (${notImage})`);
    await page.screenshot({ path: path.join(SHOTS, "mobile-photo-not-an-image.png"), fullPage: true });
    const noisy = await cameraJpeg(page, 1600, 1200, true);
    await page.setInputFiles(`${hform} [name="photo"]`, { name: "noise.jpg", mimeType: "image/jpeg", buffer: noisy });
    await page.click(`${hform} button[type="submit"]`);
    await page.waitForFunction((f) => document.querySelector(`${f} [data-form-error]`).textContent.includes("超过上限"), hform);
    const tooLarge = await page.textContent(`${hform} [data-form-error]`);
    check(tooLarge.includes("noise.jpg") && tooLarge.includes(String(PHOTO_LIMIT)), `an oversize photo is refused on the phone with the limit (${tooLarge})`);
    await page.screenshot({ path: path.join(SHOTS, "mobile-photo-too-large.png"), fullPage: true });
    check(await waitingCount(page) === 0, "neither was queued");
    check(!hazardsIn(replay()).some((e) => e.body.description === "不是图片"), "nor stored");
    // The service refuses them too, with messages the page can show.
    const direct = await page.evaluate(async (n) => {
      const post = async (body, type) => {
        const r = await fetch("/photos?school=420502K001", { method: "POST", body,
          headers: { "Content-Type": type, "Authorization": "Bearer " + localStorage.getItem("pingan.token") } });
        return { status: r.status, message: (await r.json()).errors[0].message };
      };
      return [await post(new Uint8Array(n), "image/jpeg"), await post("GIF89a not really", "image/gif")];
    }, PHOTO_LIMIT + 1000);
    check(direct[0].status === 413 && direct[0].message.includes(`the limit is ${PHOTO_LIMIT} bytes`),
      `an oversize upload is answered 413 with the limit, read by the browser (${JSON.stringify(direct[0])})`);
    check(direct[1].status === 415 && direct[1].message.includes("not a JPEG or PNG image"),
      `a non-image upload is answered 415 saying what it is not (${JSON.stringify(direct[1])})`);
    await page.setInputFiles(`${hform} [name="photo"]`, []);
    await page.fill(`${hform} [name="description"]`, "");
    await page.fill(`${hform} [name="location"]`, "");

    // Offline: two reports wait on the phone, each with its id made now.
    if (await page.evaluate(() => "serviceWorker" in navigator)) {
      await page.evaluate(() => navigator.serviceWorker.ready);
      check(true, "the service worker that keeps the page is ready");
    }
    const before = hazardsIn(replay()).length; // what was reported online
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
    check(hazardsIn(replay()).length === before, "nothing reached the broker while offline");

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
    check(log.length === before + 2, `the two offline hazards added once each, no duplicates (${log.length})`);
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
    check(hazardsIn(replay()).length === before + 2, "the resend added nothing to the log");
    await page.screenshot({ path: path.join(SHOTS, "mobile-back-online.png"), fullPage: true });

    // The hazard with the photo is rectified by the facilities manager and
    // verified by the safety officer, each with a photo of their own.
    const storedOf = async (type, hazardId) => {
      const e = await until(`the ${type} in the broker's log`,
        () => replay().find((x) => x.type === type && x.body.hazard_id === hazardId));
      const r = e.body.photo_refs || [];
      check(r.length === 1 && /^[0-9a-f]{64}$/.test(r[0].hash) && r[0].type === "image/jpeg" && r[0].size > 0,
        `the stored ${type} names its photo by hash, size and type (${JSON.stringify(r)})`);
      if (r.length !== 1) throw new Error(`the ${type} has no photo to follow`);
      const got = await fetch(`${hazardUrl}photos/${r[0].hash}`, { headers: { Authorization: "Bearer " + officer } });
      const bytes = Buffer.from(await got.arrayBuffer());
      check(got.status === 200 && bytes.length === r[0].size,
        `the school service serves the ${type} photo (${got.status}, ${bytes.length} bytes)`);
      return e;
    };
    const hid = withPhoto.body.hazard_id;
    const f = await signIn(browser, hazardUrl, fixer, "zhao.gang");
    const rform = 'form[data-route="/hazard/rectify"]';
    check(await f.page.isVisible(rform), "a facilities manager sees the rectification form");
    await f.page.waitForSelector(`${rform} select[name="hazard_id"] option[value="${hid}"]`, { state: "attached" });
    await f.page.selectOption(`${rform} [name="hazard_id"]`, hid);
    await f.page.fill(`${rform} [name="description"]`, "清理通道杂物，张贴禁止堆放标识");
    await f.page.setInputFiles(`${rform} [name="photo"]`,
      { name: "rectified.jpg", mimeType: "image/jpeg", buffer: await cameraJpeg(f.page, 1200, 900, false) });
    await f.page.click(`${rform} button[type="submit"]`);
    const rectified = await storedOf("hazard.rectified", hid);
    check(rectified.body.rectified_by === "zhao.gang" && rectified.source.endsWith("/zhao.gang"),
      `the rectification names the signed-in person (${rectified.body.rectified_by}, ${rectified.source})`);
    check(!rectified.body.photo_refs.some((r) => r.hash === refs[0].hash), "its photo is its own, not the report's");
    await f.page.screenshot({ path: path.join(SHOTS, "mobile-rectified.png"), fullPage: true });
    await f.context.close();

    const vform = 'form[data-route="/hazard/verify"]';
    await page.reload();
    await page.waitForSelector(`${vform} select[name="hazard_id"] option[value="${hid}"]`, { state: "attached" });
    await page.selectOption(`${vform} [name="hazard_id"]`, hid);
    await page.selectOption(`${vform} [name="result"]`, "pass");
    await page.fill(`${vform} [name="evidence"]`, "通道畅通，标识已张贴");
    await page.setInputFiles(`${vform} [name="photo"]`,
      { name: "verified.jpg", mimeType: "image/jpeg", buffer: await cameraJpeg(page, 1000, 750, false) });
    await page.click(`${vform} button[type="submit"]`);
    const verified = await storedOf("hazard.verified", hid);
    check(verified.body.verifier === "zhang.wei" && verified.body.result === "pass" && verified.source.endsWith("/zhang.wei"),
      `the verification names the signed-in person and passes (${verified.body.verifier}, ${verified.body.result})`);
    await page.screenshot({ path: path.join(SHOTS, "mobile-verified.png"), fullPage: true });
    await context.close();

    // Both in the console's feed, and their photos on the incident page.
    await feedRow(rectified.offset, "hazard.rectified", "zhao.gang");
    await feedRow(verified.offset, "hazard.verified", "zhang.wei");
    await cp.click(`#feed-body tr[data-offset="${rectified.offset}"] a`);
    await consolePhoto(rectified.body.photo_refs[0].hash, 1200);
    check(true, "the console's incident page shows the rectification's photo");
    await cp.click('button[data-view="feed"]');
    await cp.click(`#feed-body tr[data-offset="${verified.offset}"] a`);
    await consolePhoto(verified.body.photo_refs[0].hash, 1000);
    check(true, "and the verification's photo");
    const copied = await cp.evaluate(async (hs) => Promise.all(hs.map(async (hash) => (await fetch("/photos/" + hash)).status)),
      [rectified.body.photo_refs[0].hash, verified.body.photo_refs[0].hash]);
    check(copied.every((s) => s === 200), `the console serves both photos (${copied.join(", ")})`);
    await cp.screenshot({ path: path.join(SHOTS, "console-incident-rectified-verified.png"), fullPage: true });
    await desk.close();
    await stop(con.proc);

    // A drill, a canteen sample and an illness report through the page, each
    // by a person with the role for it, each stored with them as reporter.
    const submitted = async (url, token, who, route, fill, type, match) => {
      const s = await signIn(browser, url, token, who);
      const form = `form[data-route="${route}"]`;
      check(await s.page.isVisible(form), `${who} sees the ${route} form`);
      const before = new Set(replay().map((e) => e.id));
      await fill(s.page, form);
      await s.page.click(`${form} button[type="submit"]`);
      const e = await until(`the ${type} in the broker's log`,
        () => replay().find((x) => x.type === type && !before.has(x.id) && match(x.body)));
      check(e.source.endsWith("/" + who), `the ${type} is stored with ${who} as reporter (${e.source})`);
      await s.page.waitForSelector(`#mine li[data-id="${e.id}"] .tag.stored`, { timeout: 20000 });
      await s.page.screenshot({ path: path.join(SHOTS, `mobile-${type}.png`), fullPage: true });
      await s.context.close();
      return e;
    };
    const drill = await submitted(drillUrl, drillLeader, "sun.li", "/drill/record", async (p, form) => {
      await p.selectOption(`${form} [name="drill_type"]`, "earthquake");
      await p.selectOption(`${form} [name="mode"]`, "live");
      await p.fill(`${form} [name="started_at"]`, "2026-11-30T09:00");
      await p.fill(`${form} [name="all_clear_at"]`, "2026-11-30T09:03");
      await p.fill(`${form} [name="participants"]`, "640");
      await p.fill(`${form} [name="headcount_expected"]`, "640");
      await p.fill(`${form} [name="headcount_reported"]`, "640");
      await p.fill(`${form} [name="problems"]`, "三楼西侧楼梯拥堵");
    }, "drill.recorded", (b) => b.drill_type === "earthquake");
    check(drill.body.participants === 640 && drill.body.evacuation_seconds === 180 &&
      (drill.body.problems || []).includes("三楼西侧楼梯拥堵"),
      `the drill is stored as entered: 640 people, 180 s, its problem (${JSON.stringify(drill.body)})`);
    const sample = await submitted(canteenUrl, canteenManager, "zhou.min", "/canteen/sample", async (p, form) => {
      await p.fill(`${form} [name="meal_id"]`, "2026-11-30-lunch");
      await p.fill(`${form} [name="dish"]`, "番茄炒蛋");
      await p.fill(`${form} [name="grams"]`, "150");
    }, "food.sample", (b) => b.dish === "番茄炒蛋");
    check(sample.body.meal_id === "2026-11-30-lunch" && sample.body.grams === 150,
      `the canteen sample is stored as entered (${JSON.stringify(sample.body)})`);
    const illness = await submitted(canteenUrl, canteenManager, "zhou.min", "/canteen/illness", async (p, form) => {
      await p.fill(`${form} [name="meal_id"]`, "2026-11-30-lunch");
      await p.fill(`${form} [name="cases"]`, "3");
      await p.check(`${form} [name="samples_sealed"]`);
      await p.fill(`${form} [name="description"]`, "午餐后三名学生腹痛");
    }, "food.alert", (b) => b.kind === "illness");
    check(illness.body.cases === 3 && illness.body.samples_sealed === true && illness.body.meal_id === "2026-11-30-lunch",
      `the illness report is stored as entered (${JSON.stringify(illness.body)})`);

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

    // On a secured broker the tier of an acknowledgement is that of the key
    // that made it: the district bureau's key acknowledges a report's
    // incident, and the reporter's phone says the district confirmed it.
    const keys = path.join(work, "keys");
    fs.mkdirSync(keys, { mode: 0o700 });
    const keygen = (name) => pingan(["keygen", path.join(keys, name + ".key")]).trim();
    const serverPub = keygen("broker"), servicePub = keygen("service"), bureauPub = keygen("bureau");
    fs.writeFileSync(path.join(keys, "access.yaml"), [
      "clients:",
      `  - {identity: "school:${SCHOOL}", key: "${servicePub}", scope: {school: "${SCHOOL}"}, may: [publish, query]}`,
      `  - {identity: "bureau:420502", key: "${bureauPub}", scope: {district: "420502"}, may: [query, act]}`, ""].join("\n"));
    const sp = await Promise.all([freePort(), freePort(), freePort()]);
    const sec = { PINGAN_INGEST: `tcp://127.0.0.1:${sp[0]}`, PINGAN_FEED: `tcp://127.0.0.1:${sp[1]}`, PINGAN_QUERY: `tcp://127.0.0.1:${sp[2]}`,
      PINGAN_KEY: path.join(keys, "bureau.key"), PINGAN_SERVER_KEY: "z85:" + serverPub };
    await start("pingan-broker", ["--data", path.join(work, "secured-store"), "--ingest", sec.PINGAN_INGEST, "--feed", sec.PINGAN_FEED,
      "--query", sec.PINGAN_QUERY, "--registry", registry, "--districts", path.join(SRC, "data/districts.csv"),
      "--rules", path.join(SRC, "config/rules/yichang-default.yaml"), "--server-key", path.join(keys, "broker.key"),
      "--clients", path.join(keys, "access.yaml"), "--log-level", "warn"], /listening ingest=/);
    const shz = await start("pingan-hazard", ["--data", path.join(work, "secured-hazard"), "--http", "127.0.0.1:0",
      "--registry", registry, "--broker", sec.PINGAN_INGEST, "--query", sec.PINGAN_QUERY, "--credentials", creds,
      "--key", path.join(keys, "service.key"), "--server-key", "z85:" + serverPub, "--incidents-every", "300ms",
      "--log-level", "warn"], /listening http=(\S+)/);
    const asBureau = (args) => execFileSync(path.join(BIN, "pingan"), args, { env: { ...process.env, ...sec }, encoding: "utf8" });
    const bureauLog = () => asBureau(["replay", "--json", "--from", "1"]).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const d = await signIn(browser, `http://${shz.match[1]}/`, officer, "zhang.wei");
    await reportHazard(d.page, "围墙裂缝", "操场北侧");
    const cracked = await until("the report in the secured broker's log", () =>
      hazardsIn(bureauLog()).find((e) => e.body.description === "围墙裂缝"));
    await d.page.waitForSelector(`#mine li[data-id="${cracked.id}"] .tag[data-incident="open"]`);
    const opened = await until("the report's incident on the secured broker", () => asBureau(["incidents", "list", "--json"]).trim()
      .split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((i) => i.cause === cracked.id));
    asBureau(["incidents", "ack", opened.id, "--note", "区教育局已派人核查"]);
    const byBureau = await until("the district's acknowledgement in the log", () =>
      bureauLog().find((e) => e.type === "incident.acknowledged" && e.body.incident_id === opened.id));
    check(byBureau.actor === "bureau:420502", `the broker records the district's key as the acknowledgement's actor (${byBureau.actor})`);
    const districtTag = `#mine li[data-id="${cracked.id}"] .tag.acked[data-tier="district"]`;
    await d.page.waitForSelector(districtTag, { timeout: 40000 });
    const cst = new Date(Date.parse(byBureau.received_at) + 8 * 3600 * 1000);
    const hhmm = `${String(cst.getUTCHours()).padStart(2, "0")}:${String(cst.getUTCMinutes()).padStart(2, "0")}`;
    const districtText = await d.page.textContent(districtTag);
    check(districtText === `区县已确认 · ${hhmm}`,
      `the reporter's phone shows the district's acknowledgement with its time in CST (${districtText}, acknowledged ${byBureau.received_at})`);
    check(!(await d.page.textContent("#mine")).includes("bureau:420502"), "the phone shows the tier, not the acknowledging key's identity");
    await d.page.screenshot({ path: path.join(SHOTS, "mobile-district-acknowledged.png"), fullPage: true });
    await d.context.close();
  } finally {
    await browser.close();
    for (const ch of [...children]) await stop(ch);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

h.run(main);
