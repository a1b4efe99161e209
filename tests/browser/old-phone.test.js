// The staff's mobile page must work on an old Android phone's browser
// (Android 7's Chrome 51, 2016), not only on the Chromium the other tests
// drive: its script must be ES5 (no let/const, arrow functions, classes,
// template strings, async/await, optional chaining, ...) and use no API that
// Chrome 51 lacks; the service worker, which only browsers with service
// workers (Chrome 40+) run, may use ES2015. Parsed with acorn, from the
// sources compiled into every school service.
//
//   node old-phone.test.js BIN_DIR SOURCE_DIR SCREENSHOT_DIR
//
// Exits 0 when every check passed, 1 otherwise.
"use strict";
const acorn = require("acorn");
const fs = require("fs");
const path = require("path");

const SRC = process.argv[3];
const web = path.join(SRC, "services/common/web");
let failed = 0;
function check(ok, what) {
  console.log((ok ? "ok   " : "FAIL ") + what);
  if (!ok) failed++;
}

// Every inline <script> of the page.
const html = fs.readFileSync(path.join(web, "mobile.html"), "utf8");
const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
check(scripts.length > 0, "the page has its script inline (no CDN, no second request)");
check(!/<script[^>]+src=/.test(html), "the page loads no external script");
scripts.forEach((code, i) => {
  try {
    acorn.parse(code, { ecmaVersion: 5, sourceType: "script" });
    check(true, `script ${i + 1} of mobile.html parses as ES5`);
  } catch (e) {
    const line = code.split("\n")[e.loc.line - 1] || "";
    check(false, `script ${i + 1} of mobile.html is not ES5: ${e.message}: ${line.trim()}`);
  }
  // APIs newer than Chrome 51 (syntax is the parser's job).
  const newer = ["Object.entries", "Object.values", "Object.fromEntries", ".padStart(", ".padEnd(",
    ".flat(", ".flatMap(", ".replaceAll(", "structuredClone", "Promise.allSettled", "Promise.any",
    "Promise.prototype.finally", ".finally(", "queueMicrotask", "AbortController",
    "IntersectionObserver", "globalThis", "BigInt", ".at(-"];
  for (const api of newer)
    check(!code.includes(api), `script ${i + 1} of mobile.html does not use ${api}`);
  // A browser without service workers still gets a working page.
  if (code.includes("serviceWorker"))
    check(/if \("serviceWorker" in navigator\)/.test(code),
      "the service worker is registered only where the browser has them");
});

const sw = fs.readFileSync(path.join(web, "sw.js"), "utf8");
try {
  acorn.parse(sw, { ecmaVersion: 2015, sourceType: "script" });
  check(true, "sw.js parses as ES2015 (service workers came with Chrome 40)");
} catch (e) {
  check(false, `sw.js is not ES2015: ${e.message}`);
}

console.log(failed ? `${failed} check(s) failed` : "every check passed");
process.exit(failed ? 1 : 0);
