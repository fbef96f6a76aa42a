// The phone's side of the sync: one automerge-repo Repo, its documents kept in
// IndexedDB, one WebSocket to the server's /sync.
//
// Documents: the volunteer's notebook (read and written), the territory's
// species list and the volunteer's review document (read only: the server
// refuses any change to them). The share policy names exactly these three:
// the phone announces and serves nothing else.
//
// Sync marks, per record: the notebook's heads just after the record's last
// local change, and when the server's heads were seen covering them. A
// record is "synced" once the server peer reports heads that include the
// record's heads (the sync state's `theirHeads`), or that cover every local
// head; its mark is kept in IndexedDB so a reload shows the same thing.
import { Repo, initializeWasm, decodeHeads } from '@automerge/automerge-repo/slim';
import { IndexedDBStorageAdapter } from '@automerge/automerge-repo-storage-indexeddb';
import { BrowserWebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket';
import wasmUrl from '@automerge/automerge/automerge.wasm?url';
import { signal } from '../../../server/web/shared/state.js';
import { kv } from './idb.js';

/** `{ connected, online, lastSync, pending: number }`. */
export const status = signal({ connected: false, online: navigator.onLine, lastSync: null, pending: 0 });
/** The notebook as a plain object (null until loaded). */
export const notebook = signal(null);
/** The species list document (null until it reached the phone). */
export const speciesList = signal(null);
/** The review document (null until it reached the phone). */
export const review = signal(null);
/** Record id → `{ heads, syncedAt }`. */
export const marks = signal({});
/** Called after each complete sync of the notebook (refreshes invalid records). */
export const synced = signal(0);

let repo = null;
let adapter = null;
let notebookHandle = null;
const wanted = new Set();
const readOnly = new Map(); // documentId → signal
const following = new Map(); // signal → { id, stop } of the document it shows

const sameSet = (a, b) => a.length === b.length && a.every((h) => b.includes(h));

function setStatus(patch) {
  status.set({ ...status.get(), ...patch });
}

function countPending(all) {
  return Object.values(all).filter((m) => !m.syncedAt).length;
}

async function saveMarks(next) {
  marks.set(next);
  setStatus({ pending: countPending(next) });
  await kv.set('marks', next);
}

/**
 * The sync address, which holds no credential: a browser prints a
 * WebSocket's URL in its console when it cannot connect (offline, every few
 * seconds). The credential goes in the `fieldnotes_sync` cookie instead, sent
 * only to `/sync` of this origin (the server also checks the page's origin).
 */
function syncUrl(credential) {
  const secure = location.protocol === 'https:';
  document.cookie =
    `fieldnotes_sync=${encodeURIComponent(credential)}; path=/sync; SameSite=Strict` + (secure ? '; Secure' : '');
  return `${secure ? 'wss:' : 'ws:'}//${location.host}/sync`;
}

window.addEventListener('online', () => setStatus({ online: true }));
window.addEventListener('offline', () => setStatus({ online: false }));

/** Starts the repo for an enrolled phone. Safe to call once. */
export async function start({ deviceId, credential }) {
  if (repo) return repo;
  await initializeWasm(wasmUrl);
  const loadedMarks = (await kv.get('marks')) || {};
  marks.set(loadedMarks);
  setStatus({ pending: countPending(loadedMarks), lastSync: (await kv.get('lastSync')) || null });

  const allowed = async (_peer, documentId) => documentId !== undefined && wanted.has(documentId);
  repo = new Repo({
    peerId: `device-${deviceId}`,
    storage: new IndexedDBStorageAdapter('fieldnotes-automerge'),
    network: [],
    shareConfig: { announce: allowed, access: allowed },
    // Writes reach IndexedDB quickly; `saveRecord` also flushes before it
    // tells the volunteer the record is saved.
    saveDebounceRate: 20,
  });
  repo.networkSubsystem.on('peer', () => setStatus({ connected: true }));
  repo.networkSubsystem.on('peer-disconnected', () => setStatus({ connected: repo.peers.length > 0 }));
  repo.synchronizer.on('sync-state', onSyncState);
  adapter = new BrowserWebSocketClientAdapter(syncUrl(credential), 5000);
  repo.networkSubsystem.addNetworkAdapter(adapter);
  return repo;
}

function onSyncState({ documentId, syncState }) {
  if (!notebookHandle || documentId !== notebookHandle.documentId || !syncState.theirHeads) return;
  const theirs = [...syncState.theirHeads];
  const mine = decodeHeads(notebookHandle.heads());
  const all = mine.every((h) => theirs.includes(h));
  const now = new Date().toISOString();
  const current = marks.get();
  let changed = false;
  const next = { ...current };
  for (const [id, mark] of Object.entries(current)) {
    if (mark.syncedAt) continue;
    if (all || mark.heads.every((h) => theirs.includes(h))) {
      next[id] = { ...mark, syncedAt: now };
      changed = true;
    }
  }
  if (changed) saveMarks(next);
  if (all) {
    setStatus({ lastSync: now });
    kv.set('lastSync', now);
    synced.set(synced.get() + 1);
  }
}

function toPlain(doc) {
  // Text objects and strings both read as strings through JSON.
  return doc ? JSON.parse(JSON.stringify(doc)) : null;
}

/** Publishes `handle`'s document into `target` as it changes; returns how to stop. */
function watch(handle, target) {
  const publish = () => {
    if (handle.isReady()) target.set(toPlain(handle.doc()));
  };
  handle.on('change', publish);
  publish();
  return () => handle.off('change', publish);
}

/** `automerge:<id>` or `<id>` → `<id>`. */
export function bareDocumentId(id) {
  return String(id || '').replace(/^automerge:/, '');
}

/**
 * Opens the volunteer's notebook: `documentId` when known, else a new one
 * with the header the server expects (sync/src/documents/notebook.rs). Returns its id.
 */
export async function openNotebook({ documentId, territoryId, ownerId }) {
  let handle;
  if (documentId) {
    const id = bareDocumentId(documentId);
    wanted.add(id);
    repo.shareConfigChanged();
    // A notebook made on another phone reaches this one when the server
    // sends it; until then the handle waits (it becomes ready then).
    handle = await repo.find(id, { allowableStates: ['ready', 'unavailable'] });
  } else {
    handle = repo.create({
      type: 'fieldnotes.notebook',
      schemaVersion: 1,
      territoryId,
      ownerId,
      sightings: {},
      degradationReports: {},
      timesheetEntries: {},
    });
    wanted.add(handle.documentId);
    repo.shareConfigChanged();
    await repo.flush([handle.documentId]);
  }
  notebookHandle = handle;
  watch(handle, notebook);
  return handle.documentId;
}

/** Follows a read-only document (species list, review document). */
export async function follow(documentId, target) {
  if (!documentId || !repo) return;
  const id = bareDocumentId(documentId);
  if (readOnly.has(id)) return;
  // The server may move a document to a new id (a species list re-imported
  // until its history outweighed it is rewritten as a fresh one): the one
  // followed before into the same target is let go, so it cannot overwrite
  // the new one, and is no longer synced.
  const former = following.get(target);
  if (former) {
    former.stop();
    readOnly.delete(former.id);
    wanted.delete(former.id);
  }
  const entry = { id, stop: () => {} };
  following.set(target, entry);
  readOnly.set(id, target);
  wanted.add(id);
  repo.shareConfigChanged();
  const handle = await repo.find(id, { allowableStates: ['ready', 'unavailable'] });
  // Moved again while this one was being found.
  if (following.get(target) !== entry) return;
  entry.stop = watch(handle, target);
}

export const COLLECTIONS = {
  sighting: 'sightings',
  degradation_report: 'degradationReports',
  timesheet_entry: 'timesheetEntries',
};

/**
 * Writes a record: creates it with `fields`, or sets only the fields that
 * changed (each field is its own register, so two phones editing different
 * fields merge cleanly) and deletes those in `removed`. Resolves once the
 * change is in IndexedDB.
 */
export async function saveRecord(kind, id, fields, removed = []) {
  if (!notebookHandle || !notebookHandle.isReady()) throw new Error('notebook not loaded');
  const collection = COLLECTIONS[kind];
  notebookHandle.change((doc) => {
    if (!doc[collection]) doc[collection] = {};
    const records = doc[collection];
    if (!records[id]) {
      records[id] = fields;
      return;
    }
    const record = records[id];
    for (const [key, value] of Object.entries(fields)) {
      const before = record[key];
      const same = JSON.stringify(before === undefined ? null : before) === JSON.stringify(value);
      if (!same) record[key] = value;
    }
    for (const key of removed) {
      if (key in record) delete record[key];
    }
  });
  await repo.flush([notebookHandle.documentId]);
  const heads = decodeHeads(notebookHandle.heads());
  await saveMarks({ ...marks.get(), [id]: { heads, syncedAt: null } });
}

/** The notebook's records of `kind`, plain objects, or `{}`. */
export function recordsOf(doc, kind) {
  return (doc && doc[COLLECTIONS[kind]]) || {};
}

export function findRecord(doc, id) {
  for (const kind of Object.keys(COLLECTIONS)) {
    const record = recordsOf(doc, kind)[id];
    if (record) return { kind, record };
  }
  return null;
}

/** Drops the socket and opens a new one (the "sync now" button). */
export function reconnect() {
  if (!repo || !adapter) return;
  if (repo.peers.length === 0) {
    const url = adapter.url;
    repo.networkSubsystem.removeNetworkAdapter?.(adapter);
    adapter.disconnect();
    adapter = new BrowserWebSocketClientAdapter(url, 5000);
    repo.networkSubsystem.addNetworkAdapter(adapter);
  }
}

export async function shutdown() {
  if (repo) await repo.shutdown();
  repo = null;
  // The phone forgets its credential: the cookie goes with it.
  document.cookie = 'fieldnotes_sync=; path=/sync; SameSite=Strict; Max-Age=0';
}
