// The caller's own account: change the password (the old one required; the
// other sessions end), see the open web sessions and end any of them.
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { download } from '../download.js';
import { t, formatDate } from '../i18n.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

function PasswordForm({ onChanged }) {
  const [oldPassword, setOldPassword] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [confirmation, setConfirmation] = useState('');
  const [outcome, setOutcome] = useState(null);
  async function submit(event) {
    event.preventDefault();
    if (newPassword !== confirmation) {
      setOutcome({ error: t('account.mismatch') });
      return;
    }
    const done = await attempt(
      setOutcome,
      () => api.put('/api/me/password', { oldPassword, newPassword }),
      (result) => t('account.changed', { n: result.sessionsEnded }),
    );
    if (done) {
      onChanged();
      setOldPassword('');
      setNewPassword('');
      setConfirmation('');
    }
  }
  return html`<form onSubmit=${submit} aria-labelledby="password-title" data-testid="password-form">
    <h2 id="password-title">${t('account.password')}</h2>
    <label for="old-password">${t('account.old')}</label>
    <input id="old-password" type="password" autocomplete="current-password" required
      value=${oldPassword} onInput=${(e) => setOldPassword(e.target.value)} />
    <label for="new-password">${t('account.new')}</label>
    <input id="new-password" type="password" autocomplete="new-password" required minlength="12"
      value=${newPassword} onInput=${(e) => setNewPassword(e.target.value)} />
    <label for="confirm-password">${t('account.confirm')}</label>
    <input id="confirm-password" type="password" autocomplete="new-password" required
      value=${confirmation} onInput=${(e) => setConfirmation(e.target.value)} />
    <${Outcome} outcome=${outcome} />
    <button type="submit" class="primary">${t('account.change')}</button>
  </form>`;
}

function Sessions({ sessions }) {
  const [outcome, setOutcome] = useState(null);
  async function end(id) {
    if (await attempt(setOutcome, () => api.remove(`/api/me/sessions/${id}`), t('account.ended'))) sessions.reload();
  }
  return html`<section aria-labelledby="sessions-title">
    <h2 id="sessions-title">${t('account.sessions')}</h2>
    <${Outcome} outcome=${outcome} />
    <${Loading} state=${sessions}>
      ${(list) => html`<table data-testid="sessions">
        <thead><tr><th scope="col">${t('account.opened')}</th><th scope="col">${t('account.expires')}</th><th scope="col" aria-label=${t('account.actions')}></th></tr></thead>
        <tbody>
          ${list.map(
            (session) => html`<tr data-session-id=${session.id}>
              <td>${formatDate(session.createdAt)}${session.current ? html` <strong>(${t('account.current')})</strong>` : ''}</td>
              <td>${formatDate(session.expiresAt)}</td>
              <td>${session.current
                ? ''
                : html`<button type="button" onClick=${() => end(session.id)}>${t('account.end')}</button>`}</td>
            </tr>`,
          )}
        </tbody>
      </table>`}
    <//>
  </section>`;
}

/** Admins: a one-time reset code for a person who forgot their password. */
function IssueReset() {
  const [email, setEmail] = useState('');
  const [issued, setIssued] = useState(null);
  const [outcome, setOutcome] = useState(null);
  async function submit(event) {
    event.preventDefault();
    setIssued(await attempt(setOutcome, () => api.post('/api/password-resets', { email: email.trim() }), t('reset.issued')));
  }
  const link = issued && `${location.origin}${location.pathname}#/reset?code=${encodeURIComponent(issued.code)}`;
  return html`<form onSubmit=${submit} aria-labelledby="issue-title" data-testid="issue-reset">
    <h2 id="issue-title">${t('reset.issueTitle')}</h2>
    <label for="reset-email">${t('login.email')}</label>
    <input id="reset-email" type="email" required value=${email} onInput=${(e) => setEmail(e.target.value)} />
    <${Outcome} outcome=${outcome} />
    ${issued &&
    html`<p>${t('reset.passOn', { date: formatDate(issued.expiresAt) })}</p>
      <p><code class="hash" data-testid="reset-code">${issued.code}</code></p>
      <p><a href=${link} data-testid="reset-link">${link}</a></p>`}
    <button type="submit">${t('reset.issue')}</button>
  </form>`;
}

/** What the service holds about oneself, as a JSON file (RGPD art. 15 and 20). */
function MyData() {
  const [outcome, setOutcome] = useState(null);
  return html`<section aria-labelledby="my-data-title">
    <h2 id="my-data-title">${t('account.myData')}</h2>
    <p>${t('account.myDataIntro')}</p>
    <button type="button" data-testid="my-data"
      onClick=${() => attempt(setOutcome, () => download('/api/me/data', 'fieldnotes-my-data.json'), t('account.myDataDone'))}>
      ${t('account.myDataDownload')}</button>
    <${Outcome} outcome=${outcome} />
  </section>`;
}

export function Account({ isAdmin }) {
  const sessions = useLoad(() => api.get('/api/me/sessions'), []);
  return html`<h1>${t('account.title')}</h1>
    <${PasswordForm} onChanged=${sessions.reload} />
    <${Sessions} sessions=${sessions} />
    <${MyData} />
    ${isAdmin && html`<${IssueReset} />`}`;
}
