// The enrolled phone: what POST /api/enrol answered (the credential among
// it), and what the app keeps from the API so it opens offline: who the
// volunteer is, the territory and its sites, the ids of the documents to
// sync, and the server's list of this volunteer's invalid records.
import * as api from '../../../server/web/shared/api.js';
import { credential } from '../../../server/web/shared/session.js';
import { kv } from './idb.js';
import { errorText } from './i18n.js';
import { signal } from '../../../server/web/shared/state.js';
import * as sync from './sync.js';
import { startUploads } from './photos.js';

/** `{ accountId, deviceId, deviceName, credential, territoryId }` or null. */
export const enrolment = signal(undefined);
/** `{ me, territory, sites }` as last fetched. */
export const profile = signal({ me: null, territory: null, sites: [] });
/**
 * The sites offered for new records: those not deactivated (a list kept from
 * before sites had `active` counts as all active).
 */
export function activeSites(sites) {
  return (sites || []).filter((site) => site.active !== false);
}
/** The caller's invalid records (GET /api/invalid-records). */
export const invalid = signal([]);
export const lastError = signal(null);

export async function load() {
  const saved = await kv.get('enrolment');
  if (!saved) {
    enrolment.set(null);
    return;
  }
  credential.set(saved.credential);
  profile.set({
    me: (await kv.get('me')) || null,
    territory: (await kv.get('territory')) || null,
    sites: (await kv.get('sites')) || [],
  });
  invalid.set((await kv.get('invalid')) || []);
  enrolment.set(saved);
  await begin(saved);
}

export async function enrol(code, deviceName) {
  const answer = await api.post('/api/enrol', { code: code.trim(), deviceName: deviceName.trim() });
  const saved = { ...answer, deviceName: deviceName.trim() };
  await kv.set('enrolment', saved);
  credential.set(saved.credential);
  // Ask for persistent storage so the browser does not evict the records.
  navigator.storage?.persist?.().catch(() => {});
  await refresh(saved).catch((e) => lastError.set(errorText(e)));
  enrolment.set(saved);
  await begin(saved);
}

let begun = false;

async function begin(saved) {
  if (begun) return;
  begun = true;
  await sync.start(saved);
  let notebookId = await kv.get('notebookId');
  if (!notebookId && navigator.onLine) {
    // A second phone of the same person edits the same notebook.
    try {
      const { notebooks } = await api.get(`/api/territories/${saved.territoryId}/notebooks`);
      if (notebooks && notebooks.length) notebookId = sync.bareDocumentId(notebooks[0].documentId);
    } catch (e) {
      if (!(e instanceof api.ApiError && e.status === 404)) lastError.set(errorText(e));
    }
  }
  const opened = await sync.openNotebook({
    documentId: notebookId,
    territoryId: saved.territoryId,
    ownerId: saved.accountId,
  });
  await kv.set('notebookId', opened);
  await followDocuments();
  startUploads();
  // After each complete sync, what the server made of the notebook; when the
  // network returns, everything the server says.
  sync.synced.watch(() => refreshInvalid(saved).catch(() => {}));
  window.addEventListener('online', () => refresh(saved).catch(() => {}));
  if (navigator.onLine) refresh(saved).catch((e) => lastError.set(errorText(e)));
}

async function followDocuments() {
  const speciesId = await kv.get('speciesListId');
  const reviewId = await kv.get('reviewDocId');
  if (speciesId) sync.follow(speciesId, sync.speciesList).catch(() => {});
  if (reviewId) sync.follow(reviewId, sync.review).catch(() => {});
}

/** One request at a time per kind of refresh: a call while one runs gets one more run after it. */
function coalesced(run) {
  let running = null;
  let next = null;
  const call = (saved = enrolment.get()) => {
    if (!saved) return Promise.resolve();
    if (!running) {
      running = run(saved).finally(() => {
        running = null;
      });
      return running;
    }
    // Asked during a run: the answer must be what is true after it (a sync
    // just committed), so one more run follows; calls meanwhile share it.
    if (!next) {
      next = running.then(
        () => {
          next = null;
          return call(saved);
        },
        () => {
          next = null;
          return call(saved);
        },
      );
    }
    return next;
  };
  return call;
}

/** GETs `path`, keeps the answer (mapped) under `key`; undefined if it failed. */
async function fetchAndKeep(key, path, query, map = (x) => x) {
  try {
    const value = map(await api.get(path, query));
    await kv.set(key, value);
    return value;
  } catch (e) {
    // 404: the server has no such route yet, or nothing to say.
    if (!(e instanceof api.ApiError && e.status === 404)) lastError.set(errorText(e));
    return undefined;
  }
}

/** Refetches everything the app keeps from the API; each part on its own. */
export const refresh = coalesced(async (saved) => {
  const t = saved.territoryId;
  const [me, territory, sites] = await Promise.all([
    fetchAndKeep('me', '/api/me'),
    fetchAndKeep('territory', `/api/territories/${t}`),
    fetchAndKeep('sites', `/api/territories/${t}/sites`),
  ]);
  const current = profile.get();
  profile.set({ me: me ?? current.me, territory: territory ?? current.territory, sites: sites ?? current.sites });
  const species = await fetchAndKeep('speciesListId', `/api/territories/${t}/species-list`, {}, (x) => x.documentId);
  const reviewDoc = await fetchAndKeep('reviewDocId', `/api/territories/${t}/review-document`, {}, (x) => x.documentId);
  if (species) sync.follow(species, sync.speciesList).catch(() => {});
  if (reviewDoc) sync.follow(reviewDoc, sync.review).catch(() => {});
  await refreshInvalid(saved);
});

/**
 * The server's list of this volunteer's invalid records: the one thing a
 * sync of the notebook can change (after each one, not the whole refresh).
 */
const refreshInvalid = coalesced(async (saved) => {
  const rows = await fetchAndKeep('invalid', '/api/invalid-records', { territory: saved.territoryId, limit: 500 });
  if (rows) invalid.set(rows);
});

/** Forgets the enrolment and every local record (the settings' last resort). */
export async function forget() {
  await sync.shutdown();
  await new Promise((resolve) => {
    const r = indexedDB.deleteDatabase('fieldnotes-automerge');
    r.onsuccess = r.onerror = r.onblocked = resolve;
  });
  for (const key of ['enrolment', 'me', 'territory', 'sites', 'speciesListId', 'reviewDocId', 'notebookId', 'invalid', 'marks', 'lastSync', 'timer']) {
    await kv.delete(key);
  }
  location.reload();
}
