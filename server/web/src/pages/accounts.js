// Admins: every account (found by name or email), with its roles by
// territory; a new account for a coordinator, a régie auditor or another
// admin; an account disabled (its sessions and phones cut off at once) or
// enabled again; a person erased at their request (RGPD art. 17: see
// docs/PRIVACY.md). Roles are given on each territory's people page.
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t, formatDate } from '../i18n.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';
import { setDisabled } from './people.js';

function AccountRow({ account, me, onChanged }) {
  const [outcome, setOutcome] = useState(null);
  async function toggle() {
    if (await setDisabled(setOutcome, account, !account.disabled)) onChanged();
  }
  async function erase() {
    if (!confirm(t('accounts.eraseConfirm', { name: account.displayName }))) return;
    const erased = await attempt(
      setOutcome,
      () => api.post(`/api/accounts/${account.id}/erasure`, {}),
      (report) => t('accounts.erased', { pseudonym: report.pseudonym, notebooks: report.notebooks.length }),
    );
    if (erased) onChanged();
  }
  return html`<tr data-testid="account-row" data-disabled=${account.disabled ? 'true' : 'false'}
      data-erased=${account.erased ? 'true' : 'false'}>
    <th scope="row">${account.displayName}${account.isAdmin && html` <span class="badge">${t('role.admin')}</span>`}
      ${account.erased
        ? html` <span class="badge warn">${t('accounts.erasedBadge')}</span>`
        : account.disabled && html` <span class="badge warn">${t('people.disabled')}</span>`}</th>
    <td>${account.email || '—'}</td>
    <td>
      ${account.memberships.length === 0
        ? '—'
        : html`<ul class="plain">
            ${account.memberships.map(
              (m) => html`<li><a href=${`#/t/${m.territoryId}/people`}>${m.territoryName}</a> : ${t('role.' + m.role)}</li>`,
            )}
          </ul>`}
    </td>
    <td>${formatDate(account.createdAt, false)}</td>
    <td>
      ${account.id !== me && !account.erased &&
      html`<button type="button" data-testid="account-toggle" onClick=${toggle}
        aria-label=${t(account.disabled ? 'people.enableOf' : 'people.disableOf', { name: account.displayName })}>
        ${t(account.disabled ? 'people.enable' : 'people.disable')}</button>
        <button type="button" class="danger" data-testid="account-erase" onClick=${erase}
          aria-label=${t('accounts.eraseOf', { name: account.displayName })}>${t('accounts.erase')}</button>`}
      <${Outcome} outcome=${outcome} />
    </td>
  </tr>`;
}

function NewAccount({ onCreated }) {
  const [outcome, setOutcome] = useState(null);
  async function create(event) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const created = await attempt(
      setOutcome,
      () =>
        api.post('/api/accounts', {
          displayName: String(form.get('displayName')),
          email: String(form.get('email')),
          password: String(form.get('password')),
          isAdmin: form.get('isAdmin') === 'on',
        }),
      (account) => t('people.created', { name: account.displayName }),
    );
    if (created) {
      formElement.reset();
      onCreated();
    }
  }
  return html`<form onSubmit=${create} data-testid="account-form" aria-labelledby="new-account-title">
    <h2 id="new-account-title">${t('accounts.new')}</h2>
    <label for="account-name">${t('people.displayName')}</label>
    <input id="account-name" name="displayName" required maxlength="200" />
    <label for="account-email">${t('people.email')}</label>
    <input id="account-email" name="email" type="email" required autocomplete="off" />
    <label for="account-password">${t('people.password')}</label>
    <input id="account-password" name="password" type="password" required minlength="12" autocomplete="new-password" />
    <label class="check"><input type="checkbox" name="isAdmin" /> ${t('accounts.isAdmin')}</label>
    <${Outcome} outcome=${outcome} />
    <button type="submit" class="primary">${t('people.create')}</button>
  </form>`;
}

export function Accounts({ who }) {
  const [q, setQ] = useState('');
  const accounts = useLoad(() => api.get('/api/accounts', { q }), [q]);
  function search(event) {
    event.preventDefault();
    setQ(String(new FormData(event.currentTarget).get('q')).trim());
  }
  return html`<h1>${t('accounts.title')}</h1>
    <${NewAccount} onCreated=${accounts.reload} />
    <section aria-labelledby="accounts-list-title">
      <h2 id="accounts-list-title">${t('accounts.list')}</h2>
      <form onSubmit=${search} class="inline-form" role="search">
        <label for="accounts-search">${t('people.search')}</label>
        <input id="accounts-search" name="q" type="search" value=${q} />
        <button type="submit">${t('people.searchButton')}</button>
      </form>
      <${Loading} state=${accounts}>
        ${(list) => html`<div class="table-wrap"><table data-testid="accounts">
          <caption>${t('accounts.count', { n: list.length })}</caption>
          <thead><tr>
            <th scope="col">${t('people.displayName')}</th><th scope="col">${t('people.email')}</th>
            <th scope="col">${t('accounts.roles')}</th><th scope="col">${t('accounts.created')}</th>
            <th scope="col"><span class="visually-hidden">${t('sites.actions')}</span></th>
          </tr></thead>
          <tbody>
            ${list.map((account) => html`<${AccountRow} key=${account.id} account=${account} me=${who.accountId} onChanged=${accounts.reload} />`)}
          </tbody>
        </table></div>`}
      <//>
    </section>`;
}
