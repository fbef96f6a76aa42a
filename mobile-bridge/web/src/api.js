// Calls to the server's JSON API with the device credential as bearer token.
// The credential is the phone's secret: it is kept in IndexedDB (idb.js),
// sent only in the Authorization header (and, for the WebSocket, which cannot
// carry headers, in the /sync URL), and never logged.
export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.error ? body.error : body;
    const field = detail && detail.field ? ` (${detail.field})` : '';
    super(`${status}: ${(detail && detail.message) || 'error'}${field}`);
    this.status = status;
    this.body = body;
  }
}

let credential = null;

export function setCredential(value) {
  credential = value;
}

function headers(extra = {}) {
  return credential ? { ...extra, Authorization: `Bearer ${credential}` } : extra;
}

async function answer(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: { message: text.slice(0, 200) } };
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function get(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const qs = params.toString();
  const response = await fetch(qs ? `${path}?${qs}` : path, { headers: headers(), cache: 'no-store' });
  return answer(response);
}

export async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body),
  });
  return answer(response);
}

/** A raw request with the credential (photo uploads). */
export function request(path, init = {}) {
  return fetch(path, { ...init, headers: headers(init.headers || {}), cache: 'no-store' });
}

/** `automerge:<id>` or `<id>` → `<id>`. */
export function bareDocumentId(id) {
  return String(id || '').replace(/^automerge:/, '');
}
