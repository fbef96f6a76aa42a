// The people of a territory and their roles. Everyone who reviews or audits
// reads the list. A coordinator removes volunteers (adding them is the
// invitations page's work); an admin also adds coordinators and régie
// auditors — an existing account found by name or email, or a new one with
// its password — changes a member's role, removes any role, and disables an
// account (its sessions and phones are cut off at once) or enables it again.
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t, formatDate } from '../i18n.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

export const ROLES = ['volunteer', 'coordinator', 'regie_auditor'];

/**
 * Disables or enables an account, with `setOutcome` told how it went; a
 * disabling is confirmed first. True once done.
 */
export async function setDisabled(setOutcome, account, disabled) {
  if (disabled && !confirm(t('people.disableConfirm', { name: account.displayName }))) return false;
  const path = `/api/accounts/${account.id}/${disabled ? 'disable' : 'enable'}`;
  return Boolean(await attempt(setOutcome, () => api.post(path, {}), t(disabled ? 'people.disabledDone' : 'people.enabledDone')));
}

function MemberRow({ territory, member, isAdmin, canDecide, onChanged }) {
  const [outcome, setOutcome] = useState(null);
  const base = `/api/territories/${territory.id}/members`;
  const removeRole = () => api.remove(`${base}/${member.accountId}/${member.role}`);
  async function remove() {
    if (!confirm(t('people.removeConfirm', { name: member.displayName, role: t('role.' + member.role) }))) return;
    if (await attempt(setOutcome, removeRole, t('common.done'))) onChanged();
  }
  async function changeRole(event) {
    const role = event.currentTarget.value;
    if (role === member.role) return;
    const changed = await attempt(
      setOutcome,
      async () => {
        await api.post(base, { accountId: member.accountId, role });
        return removeRole();
      },
      t('common.done'),
    );
    if (changed) onChanged();
  }
  async function toggleAccount() {
    const account = { id: member.accountId, displayName: member.displayName };
    if (await setDisabled(setOutcome, account, !member.disabled)) onChanged();
  }
  const mayRemove = isAdmin || (canDecide && member.role === 'volunteer');
  const label = (key) => t(key, { name: member.displayName });
  return html`<tr data-testid="member-row" data-role=${member.role}>
    <th scope="row">${member.displayName}${member.disabled && html` <span class="badge warn">${t('people.disabled')}</span>`}</th>
    <td>${member.email || '—'}</td>
    <td>
      ${isAdmin
        ? html`<select aria-label=${label('people.roleOf')} value=${member.role} onChange=${changeRole} data-testid="member-role">
            ${ROLES.map((role) => html`<option value=${role}>${t('role.' + role)}</option>`)}
          </select>`
        : t('role.' + member.role)}
    </td>
    <td>${member.activeDevices}</td>
    <td>${formatDate(member.grantedAt, false)}</td>
    <td>
      ${mayRemove &&
      html`<button type="button" onClick=${remove} aria-label=${label('people.removeOf')} data-testid="member-remove">
        ${t('people.remove')}</button>`}
      ${isAdmin &&
      html`<button type="button" onClick=${toggleAccount} data-testid="member-account-toggle"
        aria-label=${label(member.disabled ? 'people.enableOf' : 'people.disableOf')}>
        ${t(member.disabled ? 'people.enable' : 'people.disable')}</button>`}
      <${Outcome} outcome=${outcome} />
    </td>
  </tr>`;
}

/** An admin gives a role to an existing account (searched) or to a new one. */
function AddPerson({ territory, onAdded }) {
  const [outcome, setOutcome] = useState(null);
  const [found, setFound] = useState(null);
  const [creating, setCreating] = useState(false);
  const members = `/api/territories/${territory.id}/members`;
  async function search(event) {
    event.preventDefault();
    const q = String(new FormData(event.currentTarget).get('q')).trim();
    setFound(await attempt(setOutcome, () => api.get('/api/accounts', { q, limit: 20 }), (list) => t('people.found', { n: list.length })));
  }
  async function grant(accountId, role) {
    if (await attempt(setOutcome, () => api.post(members, { accountId, role }), t('people.granted'))) onAdded();
  }
  async function create(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const formElement = event.currentTarget;
    const created = await attempt(
      setOutcome,
      async () => {
        const account = await api.post('/api/accounts', {
          displayName: String(form.get('displayName')),
          email: String(form.get('email')),
          password: String(form.get('password')),
        });
        await api.post(members, { accountId: account.id, role: form.get('role') });
        return account;
      },
      (account) => t('people.created', { name: account.displayName }),
    );
    if (created) {
      formElement.reset();
      setCreating(false);
      onAdded();
    }
  }
  return html`<section aria-labelledby="add-person-title" data-testid="add-person">
    <h2 id="add-person-title">${t('people.add')}</h2>
    <form onSubmit=${search} class="inline-form" role="search">
      <label for="person-search">${t('people.search')}</label>
      <input id="person-search" name="q" type="search" />
      <button type="submit">${t('people.searchButton')}</button>
    </form>
    ${found &&
    html`<ul data-testid="account-results">
      ${found.map(
        (account) => html`<li>
          ${account.displayName} ${account.email ? html`<span>(${account.email})</span>` : ''}
          ${ROLES.map(
            (role) => html` <button type="button" onClick=${() => grant(account.id, role)}
              aria-label=${t('people.grantTo', { role: t('role.' + role), name: account.displayName })}>
              ${t('role.' + role)}</button>`,
          )}
        </li>`,
      )}
    </ul>`}
    ${creating
      ? html`<form onSubmit=${create} data-testid="new-account-form">
          <label for="new-name">${t('people.displayName')}</label>
          <input id="new-name" name="displayName" required maxlength="200" />
          <label for="new-email">${t('people.email')}</label>
          <input id="new-email" name="email" type="email" required autocomplete="off" />
          <label for="new-password">${t('people.password')}</label>
          <input id="new-password" name="password" type="password" required minlength="12" autocomplete="new-password" />
          <label for="new-role">${t('people.role')}</label>
          <select id="new-role" name="role">
            <option value="coordinator">${t('role.coordinator')}</option>
            <option value="regie_auditor">${t('role.regie_auditor')}</option>
          </select>
          <button type="submit" class="primary">${t('people.create')}</button>
          <button type="button" onClick=${() => setCreating(false)}>${t('common.cancel')}</button>
        </form>`
      : html`<button type="button" data-testid="new-account" onClick=${() => setCreating(true)}>${t('people.newAccount')}</button>`}
    <${Outcome} outcome=${outcome} />
  </section>`;
}

export function People({ territory, canDecide, isAdmin }) {
  const members = useLoad(() => api.get(`/api/territories/${territory.id}/members`), [territory.id]);
  return html`<h1>${t('people.title')}</h1>
    ${canDecide && !isAdmin && html`<p>${t('people.inviteHint')} <a href=${`#/t/${territory.id}/invitations`}>${t('nav.invitations')}</a></p>`}
    ${isAdmin && html`<${AddPerson} territory=${territory} onAdded=${members.reload} />`}
    <${Loading} state=${members}>
      ${(list) => html`<div class="table-wrap"><table data-testid="members">
        <caption>${t('people.count', { n: list.length })}</caption>
        <thead><tr>
          <th scope="col">${t('people.displayName')}</th><th scope="col">${t('people.email')}</th>
          <th scope="col">${t('people.role')}</th><th scope="col">${t('people.devices')}</th>
          <th scope="col">${t('people.since')}</th><th scope="col"><span class="visually-hidden">${t('sites.actions')}</span></th>
        </tr></thead>
        <tbody>
          ${list.map(
            (member) => html`<${MemberRow} key=${member.accountId + member.role} territory=${territory} member=${member}
              isAdmin=${isAdmin} canDecide=${canDecide} onChanged=${members.reload} />`,
          )}
        </tbody>
      </table></div>`}
    <//>`;
}
