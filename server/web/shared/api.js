// Calls to the server's JSON API with the bearer credential (session.js), and
// the one error both apps show when the server refuses a call.
import { credential, credentialRefused } from './session.js';

/**
 * A call the server refused, as it explains it. Every error answer of the
 * API is `{"error": {"code": …, "field": …, "message": …}}`
 * (server/src/http/error.rs), the field null or absent when no one field is
 * at fault. `code` is the server's stable code (`wrong_password`,
 * `invitation_expired`, …; null when the answer had none), which the apps
 * translate (their `errorText`); `message` is the server's English message,
 * followed by the field in parentheses when one is named: what the apps show
 * for a code they do not translate. An answer that is not that JSON (a
 * proxy's error page) gives its text when it is short plain text, else the
 * HTTP status.
 */
export class ApiError extends Error {
  constructor(status, field, message, code = null) {
    super(field ? `${message} (${field})` : message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
    this.code = code;
  }

  /** The error a refused response carries (its body is read here). */
  static async of(response) {
    return ApiError.fromBody(response.status, response.statusText, await response.text());
  }

  static fromBody(status, statusText, text) {
    let detail = null;
    try {
      detail = JSON.parse(text).error;
    } catch {
      // Not JSON: the fallback below.
    }
    if (detail && typeof detail.message === 'string') {
      return new ApiError(status, detail.field || null, detail.message, detail.code || null);
    }
    const plain = text.trim();
    const readable = plain && !plain.startsWith('<') ? plain.slice(0, 200) : '';
    return new ApiError(status, null, readable || `HTTP ${status}${statusText ? ` ${statusText}` : ''}`);
  }
}

function withCredential(headers = {}) {
  const token = credential.get();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

async function answer(response) {
  const text = await response.text();
  if (!response.ok) {
    if (response.status === 401) credentialRefused();
    throw ApiError.fromBody(response.status, response.statusText, text);
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** GET `path` with `query` (empty values left out); the JSON answer. */
export async function get(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const qs = params.toString();
  // no-store: what the API answers is always read afresh, never from the HTTP cache.
  const response = await fetch(qs ? `${path}?${qs}` : path, { headers: withCredential(), cache: 'no-store' });
  return answer(response);
}

function send(method) {
  return async (path, body) => {
    const response = await fetch(path, {
      method,
      headers: withCredential({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
    });
    return answer(response);
  };
}

/** POST `body` as JSON to `path`; the JSON answer. */
export const post = send('POST');
/** PUT `body` as JSON to `path`; the JSON answer. */
export const put = send('PUT');
/** PATCH `path` with the fields of `body` that change; the JSON answer. */
export const patch = send('PATCH');

/** DELETE `path`: true once done (the server answers 204), or the refusal thrown. */
export async function remove(path) {
  await answer(await fetch(path, { method: 'DELETE', headers: withCredential() }));
  return true;
}

/**
 * A raw request with the credential, for what is not JSON (photos, the event
 * stream): the caller reads the response, and `ApiError.of(response)` when
 * it is refused.
 */
export function request(path, init = {}) {
  return fetch(path, { ...init, headers: withCredential(init.headers) });
}
