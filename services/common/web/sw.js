// The mobile page's service worker: keeps the page on the phone so that it
// opens without a network. The page is fetched from the network when there is
// one (an upgraded service gives its new page at once) and from the cache
// when there is not. Reports and reads are never cached: the page keeps
// reports in IndexedDB itself and sends them when the network returns.
"use strict";
const CACHE = "pingan-mobile-v1";
const PAGE = ["/"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(PAGE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname !== "/" && url.pathname !== "/index.html") return;
  e.respondWith(fetch(e.request).then((res) => {
    if (res.ok) { const copy = res.clone(); caches.open(CACHE).then((c) => c.put("/", copy)); }
    return res;
  }).catch(() => caches.match("/")));
});
