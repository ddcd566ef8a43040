// Service worker of the grid worker page (/report): lets the page start without a network.
//
// Network first, always: with a network everything behaves as if this worker did not exist
// (and the copies are refreshed); without one, the page, its scripts and the last answers of
// the few GET calls it needs at start-up come from the cache. Writes are never touched: the
// page queues reports itself (IndexedDB) and sends them when the network is back.
// Logging out deletes the cached answers (they belong to the user).

const CACHE = "report-offline-v4";
const SHELL = [
  "/report",
  "/static/css/app.css",
  "/static/css/report.css",
  "/static/css/case-detail.css",
  "/static/img/favicon.svg",
  "/static/js/api.js",
  "/static/js/dom.js",
  "/static/js/header.js",
  "/static/js/live.js",
  "/static/js/time.js",
  "/static/js/util.js",
  "/static/js/map.js",
  "/static/js/photos.js",
  "/static/js/report.js",
  "/static/js/report-common.js",
  "/static/js/report-queue.js",
  "/static/js/report-photos.js",
  "/static/js/report-map.js",
  "/static/js/report-new.js",
  "/static/js/report-mine.js",
  "/static/js/report-check.js",
  "/static/js/report-detail.js",
  "/static/js/case-detail.js",
  "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/leaflet/leaflet.js",
];
// GET calls whose last answer is kept for offline start-up and viewing.
const API_CACHED = [/^\/api\/me$/, /^\/api\/labels$/, /^\/api\/categories$/, /^\/api\/jurisdictions\.geojson$/,
                    /^\/api\/cases$/, /^\/api\/cases\/[A-Za-z0-9_-]+$/, /^\/api\/attachments\/[0-9a-f]+$/];

async function store(cache, key, response) {
  if (response && response.ok && response.type === "basic" && !response.redirected) {
    await cache.put(key, response);
  }
}

async function warm(urls) {
  const cache = await caches.open(CACHE);
  await Promise.all(urls.map(async (url) => {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      await store(cache, url, response);
    } catch { /* offline: keep what we have */ }
  }));
}

self.addEventListener("install", (event) => {
  event.waitUntil(warm(SHELL).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "warm" && Array.isArray(data.urls)) {
    const urls = data.urls.filter((u) => typeof u === "string" && u.startsWith("/") && !u.startsWith("//"));
    event.waitUntil(warm(urls).then(() => event.source && event.source.postMessage({ type: "warmed" })));
  }
});

function cacheKey(request, url) {
  if (request.mode === "navigate") return url.pathname === "/report" ? "/report" : null;
  if (url.pathname.startsWith("/static/")) return url.pathname;
  if (API_CACHED.some((re) => re.test(url.pathname))) return url.pathname + url.search;
  return null;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    if (url.pathname === "/api/logout") event.waitUntil(caches.delete(CACHE));
    return;
  }
  const key = cacheKey(request, url);
  if (!key) return;
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      const copy = response.clone();
      event.waitUntil(caches.open(CACHE).then((cache) => store(cache, key, copy)));
      return response;
    } catch (err) {
      const hit = await caches.match(key);
      if (hit) return hit;
      throw err;
    }
  })());
});
