import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate, formatNumber } from '../i18n.js';
import { useLive } from '../live.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

async function loadHours(territoryId, after) {
  const base = `/api/territories/${territoryId}/review`;
  const [counts, pending] = await Promise.all([
    api.get(`${base}/counts`),
    api.get(`${base}/records`, { kind: 'timesheet_entry', status: 'pending', after, limit: 50 }),
  ]);
  return { totals: counts.timesheetEntries, pending };
}

function EntryRow({ entry, territory, canDecide, onDecided }) {
  const [reason, setReason] = useState('');
  const [outcome, setOutcome] = useState(null);
  async function decide(status) {
    const done = await attempt(
      setOutcome,
      () =>
        api.post(`/api/territories/${territory.id}/review/decisions`, {
          decision: 'approval',
          status,
          reason: reason.trim() || undefined,
          records: [entry.id],
        }),
      t('common.done'),
    );
    if (done) onDecided();
  }
  const id = `return-${entry.id}`;
  return html`<tr data-record-id=${entry.id}>
    <td>${formatDate(entry.workDate, false)}</td>
    <td><a href=${`#/t/${territory.id}/record/${entry.id}`}>${t('activity.' + entry.activity)}</a></td>
    <td>${formatNumber(entry.durationMinutes)} min</td>
    <td>${entry.authorName || ''}</td>
    <td>${entry.site || ''}</td>
    ${canDecide &&
    html`<td class="actions" data-action="approve-or-return">
      <button type="button" class="primary" onClick=${() => decide('approved')}>${t('hours.approve')}</button>
      <label for=${id} class="visually-hidden">${t('hours.returnReason')}</label>
      <input id=${id} placeholder=${t('hours.returnReason')} value=${reason} onInput=${(e) => setReason(e.target.value)} />
      <button type="button" onClick=${() => decide('returned')}>${t('hours.return')}</button>
      <${Outcome} outcome=${outcome} />
    </td>`}
  </tr>`;
}

export function Hours({ territory, canDecide }) {
  const [cursors, setCursors] = useState([]);
  const after = cursors[cursors.length - 1];
  const state = useLoad(() => loadHours(territory.id, after), [territory.id, after]);
  useLive(['timesheet_entry'], state.reload);
  return html`<h1>${t('hours.title')}</h1>
    <${Loading} state=${state}>
      ${({ totals, pending }) => html`
        <section class="tiles" aria-label=${t('hours.totals')} data-testid="hours-totals">
          ${['pending', 'approved', 'returned'].map(
            (status) => html`<div class="tile" data-status=${status}>
              <span class="figure">${formatNumber(((totals.minutesByStatus || {})[status] || 0) / 60, 1)} h</span>
              ${t('approval.' + status)} (${formatNumber(totals.byStatus[status] || 0)})
            </div>`,
          )}
        </section>
        <h2>${t('hours.pending')}</h2>
        <div class="table-wrap">
          <table class="records" data-testid="pending-hours">
            <thead>
              <tr>
                <th scope="col">${t('field.workDate')}</th>
                <th scope="col">${t('field.activity')}</th>
                <th scope="col">${t('field.durationMinutes')}</th>
                <th scope="col">${t('table.author')}</th>
                <th scope="col">${t('table.site')}</th>
                ${canDecide && html`<th scope="col">${t('record.decide')}</th>`}
              </tr>
            </thead>
            <tbody>
              ${pending.items.length === 0 && html`<tr><td colspan="6">${t('common.none')}</td></tr>`}
              ${pending.items.map(
                (entry) => html`<${EntryRow} key=${entry.id} entry=${entry} territory=${territory}
                  canDecide=${canDecide} onDecided=${state.reload} />`,
              )}
            </tbody>
          </table>
        </div>
        <nav class="pager" aria-label="pages">
          ${cursors.length > 0 && html`<button type="button" onClick=${() => setCursors([])}>${t('common.first')}</button>`}
          ${pending.nextCursor && html`<button type="button" onClick=${() => setCursors([...cursors, pending.nextCursor])}>${t('common.more')}</button>`}
        </nav>`}
    <//>`;
}
