// Photos: shrunk in the browser before anything is stored (longest side
// 2048 px, JPEG quality 0.8, so about 0.5 MB; re-encoding drops the EXIF
// block, GPS position included), addressed by the SHA-256 of the JPEG, kept
// in IndexedDB until the server holds them, then deleted from the phone.
//
// Upload: the server's resumable upload (server/src/http/photos.rs).
//   HEAD /api/photos/{sha}?territory=T → 200 held | 404 Upload-Offset: n
//   PUT  same URL, Content-Range: bytes n-m/total → 204 Upload-Offset (next
//        chunk) | 201 stored | 200 already held | 409 Upload-Offset (resume)
// A failure waits and retries with exponential backoff (2 s doubling to
// 5 min); going online retries at once.
import { idb } from './idb.js';
import { errorText } from './i18n.js';
import { request } from '../../../server/web/shared/api.js';
import { signal } from '../../../server/web/shared/state.js';

const LONGEST_SIDE = 2048;
const QUALITY = 0.8;
const THUMB_SIDE = 256;
const CHUNK_BYTES = 256 * 1024;

/** Photos waiting to be uploaded. */
export const waiting = signal(0);
/** The last upload error, or null. */
export const uploadError = signal(null);

async function toCanvas(file, longest) {
  // `from-image` applies the EXIF orientation, as the native client does.
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, longest / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  return canvas;
}

function toBlob(canvas, quality) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('JPEG encoding failed'))), 'image/jpeg', quality),
  );
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Shrinks a camera file, stores it in the outbox and returns its address.
 * `{ sha256, thumb }` (thumb: a data: URL of a 256 px preview).
 */
export async function addPhoto(file, territoryId) {
  const canvas = await toCanvas(file, LONGEST_SIDE);
  const jpeg = await toBlob(canvas, QUALITY);
  const sha256 = hex(await crypto.subtle.digest('SHA-256', await jpeg.arrayBuffer()));
  const small = await toCanvas(jpeg, THUMB_SIDE);
  const thumb = small.toDataURL('image/jpeg', 0.7);
  await idb.put('thumbs', sha256, thumb);
  if (!(await idb.get('photos', sha256))) {
    await idb.put('photos', sha256, { sha256, blob: jpeg, territoryId, addedAt: new Date().toISOString() });
  }
  await refreshCount();
  kick();
  return { sha256, thumb };
}

export function thumbnail(sha256) {
  return idb.get('thumbs', sha256);
}

async function refreshCount() {
  waiting.set((await idb.keys('photos')).length);
}

function offsetOf(response) {
  const value = Number(response.headers.get('Upload-Offset'));
  return Number.isFinite(value) && value >= 0 ? value : 0;
}

class Permanent extends Error {}

async function uploadOne({ sha256, blob, territoryId }) {
  const url = `/api/photos/${sha256}?territory=${encodeURIComponent(territoryId)}`;
  const head = await request(url, { method: 'HEAD', cache: 'no-store' });
  if (head.status === 200) return;
  if (head.status !== 404) throw new Error(`HEAD ${head.status}`);
  let offset = offsetOf(head);
  const total = blob.size;
  for (let guard = 0; guard < 10000; guard++) {
    const end = Math.min(offset + CHUNK_BYTES, total);
    const response = await request(url, {
      method: 'PUT',
      cache: 'no-store',
      headers: { 'Content-Type': 'image/jpeg', 'Content-Range': `bytes ${offset}-${end - 1}/${total}` },
      body: blob.slice(offset, end),
    });
    if (response.status === 200 || response.status === 201) return;
    if (response.status === 204 || response.status === 409) {
      offset = offsetOf(response);
      if (offset >= total) return;
      continue;
    }
    const text = await response.text().catch(() => '');
    const error = new (response.status >= 400 && response.status < 500 && response.status !== 401 && response.status !== 429 ? Permanent : Error)(
      `PUT ${response.status} ${text.slice(0, 200)}`,
    );
    throw error;
  }
  throw new Error('upload did not finish');
}

let running = false;
let delay = 2000;
let timer = null;

/** Uploads every waiting photo; schedules a retry on failure. */
export async function uploadAll() {
  if (running) return;
  running = true;
  clearTimeout(timer);
  timer = null;
  try {
    const photos = await idb.all('photos');
    let failed = false;
    for (const photo of photos) {
      if (photo.failed) continue;
      try {
        await uploadOne(photo);
        await idb.delete('photos', photo.sha256);
        uploadError.set(null);
      } catch (error) {
        if (error instanceof Permanent) {
          // The server will never take these bytes (e.g. not a JPEG): keep
          // them, marked, so nothing is lost silently, and show why.
          await idb.put('photos', photo.sha256, { ...photo, failed: error.message });
        } else {
          failed = true;
        }
        uploadError.set(errorText(error));
      }
    }
    await refreshCount();
    if (failed) {
      timer = setTimeout(uploadAll, delay);
      delay = Math.min(delay * 2, 5 * 60 * 1000);
    } else {
      delay = 2000;
    }
  } finally {
    running = false;
  }
}

/** Tries now (when online). */
export function kick() {
  if (navigator.onLine) uploadAll();
}

export function startUploads() {
  refreshCount();
  window.addEventListener('online', () => {
    delay = 2000;
    kick();
  });
  kick();
}
