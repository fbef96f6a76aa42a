// The coordinator's session: the token a password login returns, kept in
// sessionStorage (it ends with the tab, and it is never put in a URL) and
// sent by the shared API client as the bearer credential.
import * as api from '../shared/api.js';
import { credential, whenCredentialRefused } from '../shared/session.js';

const TOKEN_KEY = 'fieldnotes.session';

// The token of this tab's login, if any, before the first call.
credential.set(sessionStorage.getItem(TOKEN_KEY));

/** Forgets the session here (the server already has, or is told apart). */
function logoutLocally() {
  sessionStorage.removeItem(TOKEN_KEY);
  credential.set(null);
}

// Expired or revoked: back to the login page.
whenCredentialRefused(logoutLocally);

export async function login(email, password) {
  const created = await api.post('/api/auth/login', { email, password });
  sessionStorage.setItem(TOKEN_KEY, created.token);
  credential.set(created.token);
}

export async function logout() {
  try {
    await api.post('/api/auth/logout', {});
  } finally {
    logoutLocally();
  }
}
