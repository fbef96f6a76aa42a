import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t } from '../i18n.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

/**
 * Territories where the caller reviews (coordinator) or audits (régie); an
 * admin sees every territory, creates new ones, and reaches the accounts.
 */
export function Territories({ who }) {
  return who.isAdmin ? html`<${AdminTerritories} who=${who} />` : html`<${MemberTerritories} who=${who} />`;
}

function rolesOf(who, territoryId) {
  return who.memberships
    .filter((m) => m.territoryId === territoryId && (m.role === 'coordinator' || m.role === 'regie_auditor'))
    .map((m) => m.role);
}

function TerritoryCards({ territories }) {
  return html`<ul class="cards" data-testid="territory-list">
    ${territories.map(
      (territory) => html`<li>
        <a class="card-link" href=${`#/t/${territory.id}/dashboard`}>
          <strong>${territory.name}</strong>
          <span>${territory.roles.map((role) => t('role.' + role)).join(', ')}</span>
        </a>
      </li>`,
    )}
  </ul>`;
}

function MemberTerritories({ who }) {
  const byTerritory = new Map();
  for (const m of who.memberships) {
    if (m.role !== 'coordinator' && m.role !== 'regie_auditor') continue;
    byTerritory.set(m.territoryId, { id: m.territoryId, name: m.territoryName, roles: rolesOf(who, m.territoryId) });
  }
  const territories = [...byTerritory.values()].sort((a, b) => (a.name || '').localeCompare(b.name || ''));
  useEffect(() => {
    // One territory: nothing to choose.
    if (territories.length === 1) location.replace(`#/t/${territories[0].id}/dashboard`);
  }, [territories.length]);
  return html`<h1>${t('territories.title')}</h1>
    ${territories.length === 0 ? html`<p>${t('territories.none')}</p>` : html`<${TerritoryCards} territories=${territories} />`}`;
}

function AdminTerritories({ who }) {
  const list = useLoad(() => api.get('/api/territories'), []);
  const [outcome, setOutcome] = useState(null);
  async function create(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const description = String(form.get('description')).trim();
    const created = await attempt(
      setOutcome,
      () => api.post('/api/territories', { name: String(form.get('name')), description: description || null }),
      t('common.done'),
    );
    // Next: its boundary, on its own page.
    if (created) location.hash = `#/t/${created.id}/territory`;
  }
  return html`<h1>${t('territories.title')}</h1>
    <${Loading} state=${list}>
      ${(territories) =>
        territories.length === 0
          ? html`<p>${t('territories.noneYet')}</p>`
          : html`<${TerritoryCards}
              territories=${territories.map((territory) => ({ id: territory.id, name: territory.name, roles: rolesOf(who, territory.id) }))} />`}
    <//>
    <form onSubmit=${create} class="stacked" data-testid="territory-form" aria-labelledby="new-territory-title">
      <h2 id="new-territory-title">${t('territories.new')}</h2>
      <label for="new-territory-name">${t('territory.name')}</label>
      <input id="new-territory-name" name="name" required maxlength="200" />
      <label for="new-territory-description">${t('territory.description')}</label>
      <textarea id="new-territory-description" name="description" rows="2"></textarea>
      <${Outcome} outcome=${outcome} />
      <button type="submit" class="primary">${t('territories.create')}</button>
    </form>`;
}
