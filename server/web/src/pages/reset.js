// Setting a new password with the one-time code an admin issued
// (`#/reset?code=…`, the link the admin passes on): public, before login.
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t } from '../i18n.js';
import { LanguageToggle } from '../ui.js';

function codeInLink() {
  return new URLSearchParams(location.hash.split('?')[1] || '').get('code') || '';
}

export function ResetPassword() {
  const [code, setCode] = useState(codeInLink());
  const [password, setPassword] = useState('');
  const [confirmation, setConfirmation] = useState('');
  const [error, setError] = useState(null);
  const [done, setDone] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setError(null);
    if (password !== confirmation) {
      setError(t('account.mismatch'));
      return;
    }
    try {
      const response = await api.request('/api/auth/password-reset', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ code: code.trim(), newPassword: password }),
      });
      if (!response.ok) throw await api.ApiError.of(response);
      setDone(true);
    } catch (e) {
      setError(e.message);
    }
  }
  return html`<main id="main" class="login">
    <div class="login-lang"><${LanguageToggle} /></div>
    <h1>${t('app.name')}</h1>
    ${done
      ? html`<p role="status" class="success" data-testid="reset-done">${t('reset.done')}</p>
          <p><a href="#/">${t('reset.login')}</a></p>`
      : html`<form onSubmit=${submit} aria-labelledby="reset-title" data-testid="reset-form">
          <h2 id="reset-title">${t('reset.title')}</h2>
          <label for="reset-code">${t('reset.code')}</label>
          <input id="reset-code" autocomplete="one-time-code" required value=${code} onInput=${(e) => setCode(e.target.value)} />
          <label for="reset-password">${t('account.new')}</label>
          <input id="reset-password" type="password" autocomplete="new-password" required minlength="12"
            value=${password} onInput=${(e) => setPassword(e.target.value)} />
          <label for="reset-confirm">${t('account.confirm')}</label>
          <input id="reset-confirm" type="password" autocomplete="new-password" required
            value=${confirmation} onInput=${(e) => setConfirmation(e.target.value)} />
          ${error && html`<p role="alert" class="error">${t('common.error', { reason: error })}</p>`}
          <button type="submit" class="primary">${t('reset.submit')}</button>
          <p><a href="#/">${t('reset.login')}</a></p>
        </form>`}
  </main>`;
}
