import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { FilterForm, filters, query } from '../filters.js';
import { t, formatNumber } from '../i18n.js';
import { useLive } from '../live.js';
import { useValue } from '../../shared/state.js';
import { attempt, Loading, Outcome, recordDate, recordTitle, statusLabel, useLoad, Warnings } from '../ui.js';
import { DecisionForm } from './decide.js';

const PAGE_SIZE = 50;

export function ReviewTable({ territory, canDecide }) {
  const filter = useValue(filters);
  // Keyset paging: the cursors of the pages before this one, for "back".
  const [cursors, setCursors] = useState([]);
  const after = cursors[cursors.length - 1];
  const [selected, setSelected] = useState(new Set());
  const [outcome, setOutcome] = useState(null);
  const state = useLoad(
    () => api.get(`/api/territories/${territory.id}/review/records`, { ...query(filter), after, limit: PAGE_SIZE }),
    [territory.id, JSON.stringify(filter), after],
  );
  // New rows arrive at the top: the first page reloads, a deep page stays put.
  useLive([filter.kind], () => {
    if (!after) state.reload();
  });
  const restart = () => {
    setCursors([]);
    setSelected(new Set());
  };
  const toggle = (id) => {
    const next = new Set(selected);
    next.has(id) ? next.delete(id) : next.add(id);
    setSelected(next);
  };
  async function decide(decision, everyFiltered) {
    const selection = everyFiltered ? { filter: query(filter) } : { records: [...selected] };
    const done = await attempt(
      setOutcome,
      () => api.post(`/api/territories/${territory.id}/review/decisions`, { ...decision, ...selection }),
      (result) => t('table.bulkDone', { changed: result.changed, unchanged: result.unchanged }),
    );
    if (done) {
      setSelected(new Set());
      state.reload();
    }
  }
  return html`<h1>${t('table.title', { kind: t('kind.' + filter.kind) })}</h1>
    <${FilterForm} territoryId=${territory.id} onApply=${restart} />
    <${Outcome} outcome=${outcome} />
    <${Loading} state=${state}>
      ${(page) => html`
        ${canDecide &&
        html`<section class="bulk" data-action="bulk" aria-label=${t('table.bulk')}>
          <span role="status" data-testid="selected-count">${t('table.selected', { n: selected.size })}</span>
          <${DecisionForm} kind=${filter.kind} disabled=${selected.size === 0} onDecide=${(d) => decide(d, false)}
            onDecideAll=${(d) => decide(d, true)}
            submitLabel=${t('table.bulkApply')} idPrefix="bulk" />
        </section>`}
        <div class="table-wrap">
          <table class="records" data-testid="review-table">
            <thead>
              <tr>
                ${canDecide &&
                html`<th scope="col">
                  <input type="checkbox" aria-label=${t('table.selectAll')}
                    checked=${page.items.length > 0 && page.items.every((r) => selected.has(r.id))}
                    onChange=${(e) => setSelected(e.target.checked ? new Set(page.items.map((r) => r.id)) : new Set())} />
                </th>`}
                <th scope="col">${t('table.date')}</th>
                <th scope="col">${t('table.what')}</th>
                <th scope="col">${filter.kind === 'timesheet_entry' ? t('table.minutes') : t('table.count')}</th>
                <th scope="col">${t('table.author')}</th>
                <th scope="col">${t('table.site')}</th>
                <th scope="col">${t('table.status')}</th>
                <th scope="col">${t('table.flags')}</th>
              </tr>
            </thead>
            <tbody>
              ${page.items.length === 0 &&
              html`<tr><td colspan="8">${t('common.none')}</td></tr>`}
              ${page.items.map(
                (record) => html`<tr data-record-id=${record.id} class=${selected.has(record.id) ? 'selected' : ''}>
                  ${canDecide &&
                  html`<td>
                    <input type="checkbox" aria-label=${t('table.select') + ' ' + recordTitle(record)}
                      checked=${selected.has(record.id)} onChange=${() => toggle(record.id)} />
                  </td>`}
                  <td>${recordDate(record)}</td>
                  <td><a href=${`#/t/${territory.id}/record/${record.id}`}>${recordTitle(record)}</a></td>
                  <td>${record.kind === 'timesheet_entry' ? formatNumber(record.durationMinutes) : record.individualCount ?? ''}</td>
                  <td>${record.authorName || ''}</td>
                  <td>${record.site || ''}</td>
                  <td data-testid="status">${statusLabel(record)}</td>
                  <td>
                    ${record.hasConflicts && html`<span class="badge warn">${t('table.flagConflict')}</span>`}
                    ${record.possibleDuplicate && html`<span class="badge">${t('table.flagDuplicate')}</span>`}
                    ${record.duplicateOf && html`<span class="badge muted">${t('table.flagDuplicateOf')}</span>`}
                    <${Warnings} warnings=${record.warnings} compact />
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>
        <nav class="pager" aria-label="pages">
          ${cursors.length > 0 && html`<button type="button" onClick=${restart}>${t('common.first')}</button>`}
          ${page.nextCursor &&
          html`<button type="button" data-testid="next-page"
            onClick=${() => setCursors([...cursors, page.nextCursor])}>${t('common.more')}</button>`}
        </nav>
      `}
    <//>`;
}
