// The app's own IndexedDB database (automerge-repo keeps its documents in
// another one): `kv` holds the enrolment (the device credential among it),
// what the app caches from the API for offline use and the sync marks of the
// records; `photos` holds the photos waiting to be uploaded; `thumbs` the
// small previews shown in the forms and lists.
const DB_NAME = 'fieldnotes-field';
const STORES = ['kv', 'photos', 'thumbs'];

let opening = null;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        for (const name of STORES) {
          if (!request.result.objectStoreNames.contains(name)) request.result.createObjectStore(name);
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function store(name, mode) {
  const db = await open();
  return db.transaction(name, mode).objectStore(name);
}

/** Resolves once the transaction is durable (the browser committed it). */
async function write(name, fn) {
  const db = await open();
  const tx = db.transaction(name, 'readwrite', { durability: 'strict' });
  fn(tx.objectStore(name));
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
}

export const idb = {
  async get(storeName, key) {
    return done((await store(storeName, 'readonly')).get(key));
  },
  put(storeName, key, value) {
    return write(storeName, (s) => s.put(value, key));
  },
  delete(storeName, key) {
    return write(storeName, (s) => s.delete(key));
  },
  async keys(storeName) {
    return done((await store(storeName, 'readonly')).getAllKeys());
  },
  async all(storeName) {
    return done((await store(storeName, 'readonly')).getAll());
  },
  clear(storeName) {
    return write(storeName, (s) => s.clear());
  },
};

export const kv = {
  get: (key) => idb.get('kv', key),
  set: (key, value) => idb.put('kv', key, value),
  delete: (key) => idb.delete('kv', key),
};
