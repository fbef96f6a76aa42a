import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { login } from '../session.js';
import { t } from '../i18n.js';
import { LanguageToggle } from '../ui.js';

export function Login() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email.trim(), password);
      setPassword('');
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  }
  return html`<main id="main" class="login">
    <div class="login-lang"><${LanguageToggle} /></div>
    <h1>${t('app.name')}</h1>
    <form onSubmit=${submit} aria-labelledby="login-title">
      <h2 id="login-title">${t('login.title')}</h2>
      <label for="login-email">${t('login.email')}</label>
      <input id="login-email" name="email" type="email" autocomplete="username" required
        value=${email} onInput=${(e) => setEmail(e.target.value)} />
      <label for="login-password">${t('login.password')}</label>
      <input id="login-password" name="password" type="password" autocomplete="current-password" required
        value=${password} onInput=${(e) => setPassword(e.target.value)} />
      ${error && html`<p role="alert" class="error">${t('login.failed', { reason: error })}</p>`}
      <button type="submit" class="primary" disabled=${busy}>${t('login.submit')}</button>
      <p><a href="#/reset">${t('login.forgotten')}</a></p>
    </form>
  </main>`;
}
