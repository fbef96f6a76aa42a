// The review table's filters, shared with the map (the map shows what the
// table lists) and kept for the tab's life.
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import * as api from '../shared/api.js';
import { t } from './i18n.js';
import { signal, useValue } from '../shared/state.js';

export const EMPTY = {
  kind: 'sighting', taxon: '', site: '', author: '', from: '', to: '', status: '', conflicts: '', duplicates: '', bbox: '',
};

export const filters = signal({ ...EMPTY });

export const STATUSES = {
  sighting: ['0', '1', '2', '3', '4', '5', '6'].map((s) => [s, 'status.' + s]),
  degradation_report: ['received', 'under_analysis', 'action_taken', 'closed'].map((s) => [s, 'followup.' + s]),
  timesheet_entry: ['pending', 'approved', 'returned'].map((s) => [s, 'approval.' + s]),
};

/** The filter as the review API's query parameters. */
export function query(filter) {
  const q = { kind: filter.kind };
  for (const key of ['taxon', 'site', 'author', 'status', 'conflicts', 'duplicates', 'bbox']) {
    if (filter[key] !== '') q[key] = filter[key];
  }
  if (filter.from) q.from = filter.from;
  if (filter.to) q.to = filter.to;
  if (filter.kind !== 'sighting') {
    delete q.taxon;
    delete q.duplicates;
  }
  return q;
}

function useTerritoryChoices(territoryId) {
  const [choices, setChoices] = useState({ sites: [], authors: [] });
  useEffect(() => {
    api.get(`/api/territories/${territoryId}/sites`).then(
      (sites) => setChoices((c) => ({ ...c, sites: Array.isArray(sites) ? sites : sites.items || [] })),
      () => {},
    );
  }, [territoryId]);
  return choices;
}

export function FilterForm({ territoryId, onApply, showKind = true }) {
  const current = useValue(filters);
  const [draft, setDraft] = useState(current);
  const choices = useTerritoryChoices(territoryId);
  useEffect(() => setDraft(current), [current]);
  const set = (key) => (event) => {
    const value = event.target.type === 'checkbox' ? event.target.checked : event.target.value;
    setDraft({ ...draft, [key]: value });
  };
  function apply(event) {
    event.preventDefault();
    filters.set({ ...draft });
    onApply && onApply();
  }
  function reset() {
    filters.set({ ...EMPTY, kind: draft.kind });
    onApply && onApply();
  }
  const id = (name) => `filter-${name}`;
  return html`<form class="filters" onSubmit=${apply} aria-label=${t('filter.title')} data-testid="filters">
    ${showKind &&
    html`<div>
      <label for=${id('kind')}>${t('filter.kind')}</label>
      <select id=${id('kind')} value=${draft.kind} onChange=${(e) => setDraft({ ...draft, kind: e.target.value, status: '' })}>
        ${Object.keys(STATUSES).map((kind) => html`<option value=${kind}>${t('kind.' + kind)}</option>`)}
      </select>
    </div>`}
    ${draft.kind === 'sighting' &&
    html`<div>
      <label for=${id('taxon')}>${t('filter.taxon')}</label>
      <input id=${id('taxon')} value=${draft.taxon} onInput=${set('taxon')} />
    </div>`}
    <div>
      <label for=${id('site')}>${t('filter.site')}</label>
      <select id=${id('site')} value=${draft.site} onChange=${set('site')}>
        <option value="">${t('filter.any')}</option>
        ${choices.sites.map((site) => html`<option value=${site.name}>${site.name}</option>`)}
      </select>
    </div>
    <div>
      <label for=${id('from')}>${t('filter.from')}</label>
      <input id=${id('from')} type="date" value=${draft.from} onInput=${set('from')} />
    </div>
    <div>
      <label for=${id('to')}>${t('filter.to')}</label>
      <input id=${id('to')} type="date" value=${draft.to} onInput=${set('to')} />
    </div>
    <div>
      <label for=${id('status')}>${t('filter.status')}</label>
      <select id=${id('status')} value=${draft.status} onChange=${set('status')}>
        <option value="">${t('filter.any')}</option>
        ${STATUSES[draft.kind].map(([value, label]) => html`<option value=${value}>${t(label)}</option>`)}
      </select>
    </div>
    <div>
      <label for=${id('conflicts')}>${t('filter.conflicts')}</label>
      <select id=${id('conflicts')} value=${draft.conflicts} onChange=${set('conflicts')}>
        <option value="">${t('filter.any')}</option>
        <option value="true">${t('filter.yes')}</option>
        <option value="false">${t('filter.no')}</option>
      </select>
    </div>
    ${draft.kind === 'sighting' &&
    html`<div>
      <label for=${id('duplicates')}>${t('filter.duplicates')}</label>
      <select id=${id('duplicates')} value=${draft.duplicates} onChange=${set('duplicates')}>
        <option value="">${t('filter.any')}</option>
        <option value="true">${t('filter.yes')}</option>
        <option value="false">${t('filter.no')}</option>
      </select>
    </div>`}
    ${draft.author &&
    html`<div>
      <label for=${id('author')}>${t('filter.author')}</label>
      <input id=${id('author')} value=${draft.author} onInput=${set('author')} />
    </div>`}
    <div class="filter-actions">
      <button type="submit" class="primary" data-testid="filter-apply">${t('filter.apply')}</button>
      <button type="button" onClick=${reset}>${t('filter.reset')}</button>
    </div>
  </form>`;
}
