import { useEffect } from 'preact/hooks';
import { html } from 'htm/preact';
import { t } from '../i18n.js';

/** Territories where the caller reviews (coordinator) or audits (régie). */
export function Territories({ who }) {
  const byTerritory = new Map();
  for (const m of who.memberships) {
    if (m.role !== 'coordinator' && m.role !== 'regie_auditor') continue;
    const entry = byTerritory.get(m.territoryId) || { id: m.territoryId, name: m.territoryName, roles: [] };
    entry.roles.push(m.role);
    byTerritory.set(m.territoryId, entry);
  }
  const territories = [...byTerritory.values()].sort((a, b) => (a.name || '').localeCompare(b.name || ''));
  useEffect(() => {
    // One territory: nothing to choose.
    if (territories.length === 1 && !who.isAdmin) location.replace(`#/t/${territories[0].id}/dashboard`);
  }, [territories.length]);
  return html`<h1>${t('territories.title')}</h1>
    ${territories.length === 0
      ? html`<p>${t('territories.none')}</p>`
      : html`<ul class="cards" data-testid="territory-list">
          ${territories.map(
            (territory) => html`<li>
              <a class="card-link" href=${`#/t/${territory.id}/dashboard`}>
                <strong>${territory.name}</strong>
                <span>${territory.roles.map((role) => t('role.' + role)).join(', ')}</span>
              </a>
            </li>`,
          )}
        </ul>`}`;
}
