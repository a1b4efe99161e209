// The staff's mobile page must work on an old Android phone's browser
// (Android 7's Chrome 51, 2016), not only on the Chromium the other tests
// drive: its script must be ES5 (no let/const, arrow functions, classes,
// template strings, async/await, optional chaining, ...) and use no API that
// Chrome 51 lacks; the service worker, which only browsers with service
// workers (Chrome 40+) run, may use ES2015. Its CSS must hold together
// without anything newer than Chrome 51 (flex gap, #rgba colours, grid,
// clamp(), :is(), ...), or give a fallback Chrome 51 understands first
// (position: sticky after a plain position). Parsed with acorn and a small
// CSS reader, from the sources compiled into every school service: a static
// check, not a run on an old engine.
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

// The page's CSS: every declaration of its <style> blocks and style="" attributes.
const css = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]).join("\n")
  .replace(/\/\*[\s\S]*?\*\//g, "");
check(css.trim().length > 0, "the page has its CSS inline");
check(!/<link[^>]+stylesheet/.test(html) && !/@import/.test(css), "the page loads no external stylesheet");
const rules = [...css.matchAll(/([^{}]+)\{([^{}]*)\}/g)].map((m) => ({ selector: m[1].trim(), body: m[2] }));
for (const m of html.matchAll(/\sstyle="([^"]*)"/g)) rules.push({ selector: `style="${m[1]}"`, body: m[1] });
check(rules.length > 10, `the CSS reader found the page's rules (${rules.length})`);
const decls = (body) => body.split(";").map((d) => d.trim()).filter(Boolean).map((d) => {
  const i = d.indexOf(":");
  return { prop: d.slice(0, i).trim().toLowerCase(), value: d.slice(i + 1).trim().toLowerCase() };
});
// Property values newer than Chrome 51, and whether an earlier declaration of
// the same property in the same rule may stand in for them.
const newerValues = [
  { what: "position: sticky (Chrome 56)", prop: /^position$/, value: /\bsticky\b/, fallback: true },
  { what: "display: grid (Chrome 57)", prop: /^display$/, value: /\b(inline-)?grid\b/, fallback: true },
  { what: "#rgba / #rrggbbaa colours (Chrome 62)", prop: /./, value: /#([0-9a-f]{4}|[0-9a-f]{8})\b/, fallback: true },
  { what: "space-separated rgb()/hsl() (Chrome 65)", prop: /./, value: /\b(rgb|hsl)a?\(\s*[\d.%]+\s+[\d.%]/, fallback: true },
  { what: "clamp(), min() or max() (Chrome 79)", prop: /./, value: /\b(clamp|min|max)\(/, fallback: true },
  { what: "env() (Chrome 69)", prop: /./, value: /\benv\(/, fallback: true },
  { what: "dvh/svh/lvh units (Chrome 108)", prop: /./, value: /\d(dvh|svh|lvh|dvw|svw|lvw)\b/, fallback: true },
  { what: "color-mix() (Chrome 111)", prop: /./, value: /\bcolor-mix\(/, fallback: true },
];
// Properties newer than Chrome 51, which a fallback cannot stand in for
// (an old browser drops them and the layout must hold without them).
const newerProps = [
  [/^(gap|row-gap|column-gap|grid-gap)$/, "gap (flex gap: Chrome 84; use margins)"],
  [/^grid(-|$)/, "grid (Chrome 57)"], [/^place-/, "place-* (Chrome 59)"],
  [/^inset(-|$)/, "inset (Chrome 87)"], [/^aspect-ratio$/, "aspect-ratio (Chrome 88)"],
  [/^(margin|padding|border)-(inline|block)/, "logical properties (Chrome 69-87)"],
  [/^backdrop-filter$/, "backdrop-filter (Chrome 76)"], [/^overscroll-behavior/, "overscroll-behavior (Chrome 63)"],
  [/^scroll-behavior$/, "scroll-behavior (Chrome 61)"], [/^accent-color$/, "accent-color (Chrome 93)"],
  [/^contain$/, "contain (Chrome 52)"], [/^content-visibility$/, "content-visibility (Chrome 85)"],
];
const newerSelectors = [
  [/:is\(|:where\(/, ":is()/:where() (Chrome 88)"], [/:has\(/, ":has() (Chrome 105)"],
  [/:focus-within/, ":focus-within (Chrome 60)"], [/:focus-visible/, ":focus-visible (Chrome 86)"],
  [/:not\([^)]*,/, ":not() with a list (Chrome 88)"], [/::?marker/, "::marker (Chrome 86)"],
];
let newer = 0;
for (const r of rules) {
  for (const [re, what] of newerSelectors)
    if (re.test(r.selector)) { newer++; check(false, `CSS ${r.selector} uses ${what}`); }
  const ds = decls(r.body);
  ds.forEach((d, i) => {
    for (const [re, what] of newerProps)
      if (re.test(d.prop)) { newer++; check(false, `CSS ${r.selector} { ${d.prop}: ${d.value} } uses ${what}`); }
    for (const n of newerValues) {
      if (!n.prop.test(d.prop) || !n.value.test(d.value)) continue;
      const old = n.fallback && ds.slice(0, i).some((e) => e.prop === d.prop && !newerValues.some((o) => o.value.test(e.value)));
      if (old) check(true, `CSS ${r.selector}: ${n.what} comes after a fallback for an old browser`);
      else { newer++; check(false, `CSS ${r.selector} { ${d.prop}: ${d.value} } uses ${n.what} without a fallback`); }
    }
  });
}
check(newer === 0, "the page's CSS uses nothing newer than Chrome 51 without a fallback");

const sw = fs.readFileSync(path.join(web, "sw.js"), "utf8");
try {
  acorn.parse(sw, { ecmaVersion: 2015, sourceType: "script" });
  check(true, "sw.js parses as ES2015 (service workers came with Chrome 40)");
} catch (e) {
  check(false, `sw.js is not ES2015: ${e.message}`);
}

console.log(failed ? `${failed} check(s) failed` : "every check passed");
process.exit(failed ? 1 : 0);
