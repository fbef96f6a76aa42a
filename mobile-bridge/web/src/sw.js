// The field app's service worker, served at /field/sw.js (scope /field/).
// Not bundled: vite.config.js fills in the placeholders below at build time
// with the list of every built file and a version hashed from their contents.
//
// Rules:
//   - install: fetch every file of the build into a cache named after the
//     version (bypassing the HTTP cache), so the app opens with no network;
//   - activate: delete the caches of earlier builds, take the open pages;
//   - fetch: the files of the build, cache first (hashed names never change
//     under their URL; index.html is tied to them by the version); a page
//     navigation under the scope gets the cached shell (hash routing, so every
//     page is the shell); everything else, and always /api/ and /sync, goes to
//     the network untouched and is never cached: records travel through
//     automerge-repo (IndexedDB), photos through the upload outbox.
const VERSION = self.__PRECACHE_VERSION__;
const PRECACHE = self.__PRECACHE_URLS__;
const SCOPE = self.__SCOPE__;
const CACHE = `fieldnotes-field-${VERSION}`;
const PRECACHED = new Set(PRECACHE);

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(PRECACHE.map((url) => new Request(url, { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('fieldnotes-field-') && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

function neverCached(url) {
  return url.pathname.startsWith('/api/') || url.pathname === '/sync' || url.pathname.startsWith('/sync/');
}

async function fromCache(key, request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(key);
  if (hit) return hit;
  // Not cached (evicted, or the install is still under way): the network.
  return fetch(request);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || neverCached(url)) return;
  if (PRECACHED.has(url.pathname)) {
    event.respondWith(fromCache(url.pathname, request));
    return;
  }
  if (request.mode === 'navigate' && url.pathname.startsWith(SCOPE)) {
    event.respondWith(fromCache(SCOPE, request));
  }
});

// The page asks which build this worker caches (shown in the settings).
self.addEventListener('message', (event) => {
  if (event.data === 'version' && event.ports[0]) event.ports[0].postMessage(VERSION);
});
