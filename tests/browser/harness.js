// What the browser tests share: their arguments, a work folder, checks that
// count failures, real programs started on loopback and stopped at the end,
// and the pingan tool pointed at the test's broker.
//
//   const h = require("./harness")("console");   // node console.test.js BIN_DIR SOURCE_DIR SCREENSHOT_DIR
//   h.run(main);                                   // exits 0 when every check passed, 1 otherwise
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const readline = require("readline");

module.exports = function harness(name) {
  const [BIN, SRC, SHOTS] = process.argv.slice(2);
  if (!BIN || !SRC || !SHOTS) {
    console.error(`usage: node ${name}.test.js BIN_DIR SOURCE_DIR SCREENSHOT_DIR`);
    process.exit(2);
  }
  fs.mkdirSync(SHOTS, { recursive: true });
  const h = {
    BIN, SRC, SHOTS,
    work: fs.mkdtempSync(path.join(os.tmpdir(), `pingan-${name}-e2e-`)),
    children: new Set(),
    failures: 0,
    env: {}, // added to the environment of `pingan` (PINGAN_QUERY, ...)
  };

  h.check = (ok, what) => {
    console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
    if (!ok) h.failures++;
    return ok;
  };

  // A free port on loopback (for a program that must come back on the same port).
  h.freePort = () => new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });

  // Starts a program of BIN and resolves with its first stdout line matching `re`.
  h.start = (prog, args, re) => new Promise((resolve, reject) => {
    const p = spawn(path.join(BIN, prog), args, { stdio: ["ignore", "pipe", "inherit"] });
    h.children.add(p);
    p.once("exit", () => h.children.delete(p));
    const rl = readline.createInterface({ input: p.stdout });
    const timer = setTimeout(() => reject(new Error(`${prog} did not start`)), 20000);
    rl.on("line", (line) => {
      const m = line.match(re);
      if (m) { clearTimeout(timer); resolve({ proc: p, match: m }); }
    });
    p.once("exit", (code) => reject(new Error(`${prog} exited with ${code} before it listened`)));
  });

  // SIGTERM; resolves with the exit code (or the signal that ended it).
  h.stop = (p) => new Promise((resolve) => {
    if (p.exitCode !== null) return resolve(p.exitCode);
    p.once("exit", (code, signal) => resolve(code === null ? signal : code));
    p.kill("SIGTERM");
  });

  h.pingan = (args, input) => execFileSync(path.join(BIN, "pingan"), args, {
    input: input || "", env: { ...process.env, ...h.env }, encoding: "utf8"
  });

  // The whole log, as JSON objects.
  h.replay = () => h.pingan(["replay", "--json", "--from", "1"]).trim().split("\n").filter(Boolean)
    .map((l) => JSON.parse(l));

  // Polls `fn` until it returns something truthy, which it resolves with.
  h.until = async (what, fn, ms = 15000) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error("timed out waiting for " + what);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  // Runs the test, stops what it started, and exits with its verdict.
  h.run = (main) => main().then(() => {
    console.log(h.failures ? `${h.failures} check(s) failed` : "all checks passed");
    process.exit(h.failures ? 1 : 0);
  }, (e) => {
    console.error("FAIL", e.stack || e);
    for (const c of h.children) c.kill("SIGKILL");
    process.exit(1);
  });

  return h;
};
