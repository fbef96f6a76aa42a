// Calls to the server's JSON API with the session's bearer token. The token
// lives in sessionStorage: it ends with the tab, and it is never put in a URL.
import { signal } from './state.js';

const TOKEN_KEY = 'fieldnotes.session';

/** The session token, or null when logged out. */
export const session = signal(sessionStorage.getItem(TOKEN_KEY));

export class ApiError extends Error {
  constructor(status, body) {
    const field = body && body.field ? ` (${body.field})` : '';
    super(`${status}: ${(body && (body.message || body.error)) || 'error'}${field}`);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  const token = session.get();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function answer(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { message: text };
  }
  if (response.status === 401 && session.get()) {
    // Expired or revoked: back to the login page.
    logoutLocally();
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
  const response = await fetch(qs ? `${path}?${qs}` : path, { headers: headers() });
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

export async function put(path, body) {
  const response = await fetch(path, {
    method: 'PUT',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body),
  });
  return answer(response);
}

export async function login(email, password) {
  const created = await post('/api/auth/login', { email, password });
  sessionStorage.setItem(TOKEN_KEY, created.token);
  session.set(created.token);
}

function logoutLocally() {
  sessionStorage.removeItem(TOKEN_KEY);
  session.set(null);
}

export async function logout() {
  try {
    await post('/api/auth/logout', {});
  } finally {
    logoutLocally();
  }
}

/** A photo (or its thumbnail) as an object URL: <img> cannot send the token. */
const photoCache = new Map();
export async function photoUrl(sha256, thumbnail) {
  const path = `/api/photos/${sha256}${thumbnail ? '/thumbnail' : ''}`;
  if (!photoCache.has(path)) {
    photoCache.set(
      path,
      fetch(path, { headers: headers() }).then(async (response) => {
        if (!response.ok) throw new ApiError(response.status, null);
        return URL.createObjectURL(await response.blob());
      }),
    );
  }
  return photoCache.get(path);
}

/**
 * Follows the territory's server-sent events with fetch (EventSource cannot
 * send the token). Calls `onChange(kind)` for each change and `onStatus(true
 * | false)` as the stream opens or drops; reconnects after a pause. Returns a
 * function that stops it.
 */
export function followTerritory(territoryId, onChange, onStatus) {
  let stopped = false;
  let controller = null;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch(`/api/territories/${territoryId}/events`, {
          headers: headers({ Accept: 'text/event-stream' }),
          signal: controller.signal,
        });
        if (response.status === 401) {
          logoutLocally();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
            }
            if (event === 'ready') onStatus(true);
            if (event === 'changed') {
              let kind = '*';
              try {
                kind = JSON.parse(data).kind || '*';
              } catch {
                /* a change of everything */
              }
              onChange(kind);
            }
          }
        }
      } catch (error) {
        if (stopped) return;
      }
      onStatus(false);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
