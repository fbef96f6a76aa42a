import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate, formatNumber, formatEuros } from '../i18n.js';
import { useLive } from '../live.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

async function loadHours(territoryId, after, approvedAfter) {
  const base = `/api/territories/${territoryId}/review`;
  const [counts, pending, approved, rates] = await Promise.all([
    api.get(`${base}/counts`),
    api.get(`${base}/records`, { kind: 'timesheet_entry', status: 'pending', after, limit: 50 }),
    api.get(`${base}/records`, { kind: 'timesheet_entry', status: 'approved', after: approvedAfter, limit: 50 }),
    api.get(`/api/territories/${territoryId}/hourly-rates`),
  ]);
  return { totals: counts.timesheetEntries, pending, approved, rates };
}

/**
 * The rate in force on `workDate` (`YYYY-MM-DD`): the latest that took effect
 * on or before it, as the hours report values an entry; null before any.
 */
function rateOn(rates, workDate) {
  let inForce = null;
  for (const rate of rates) {
    if (rate.effectiveFrom <= workDate && (!inForce || rate.effectiveFrom > inForce.effectiveFrom)) inForce = rate;
  }
  return inForce;
}

/** An entry's value in cents, rounded to the cent as the hours report rounds. */
function entryCents(entry, rate) {
  return Math.round((entry.durationMinutes * rate.centsPerHour) / 60);
}

function ApprovedHours({ approved, rates, territory, onMore, onFirst, paged }) {
  const valued = approved.items.map((entry) => ({ entry, rate: rateOn(rates, entry.workDate) }));
  // Summed in cent-minutes and rounded once, as the hours report sums.
  const centMinutes = valued.reduce((sum, { entry, rate }) => sum + (rate ? entry.durationMinutes * rate.centsPerHour : 0), 0);
  const pageCents = Math.round(centMinutes / 60);
  const pageMinutes = approved.items.reduce((sum, entry) => sum + entry.durationMinutes, 0);
  return html`<h2>${t('hours.approved')}</h2>
    ${rates.length === 0 && html`<p class="notice">${t('hours.ratesNone')}</p>`}
    <div class="table-wrap">
      <table class="records" data-testid="approved-hours">
        <thead>
          <tr>
            <th scope="col">${t('field.workDate')}</th>
            <th scope="col">${t('field.activity')}</th>
            <th scope="col">${t('field.durationMinutes')}</th>
            <th scope="col">${t('table.author')}</th>
            <th scope="col">${t('hours.rate')}</th>
            <th scope="col">${t('hours.value')}</th>
          </tr>
        </thead>
        <tbody>
          ${valued.length === 0 && html`<tr><td colspan="6">${t('common.none')}</td></tr>`}
          ${valued.map(
            ({ entry, rate }) => html`<tr data-record-id=${entry.id}>
              <td>${formatDate(entry.workDate, false)}</td>
              <td><a href=${`#/t/${territory.id}/record/${entry.id}`}>${t('activity.' + entry.activity)}</a></td>
              <td>${formatNumber(entry.durationMinutes)} min</td>
              <td>${entry.authorName || ''}</td>
              <td>${rate ? formatEuros(rate.centsPerHour) + ' / h' : t('hours.noRate')}</td>
              <td data-testid="euros">${rate ? formatEuros(entryCents(entry, rate)) : '—'}</td>
            </tr>`,
          )}
        </tbody>
        ${valued.length > 0 &&
        html`<tfoot>
          <tr>
            <th scope="row" colspan="2">${t('hours.pageTotal')}</th>
            <td>${formatNumber(pageMinutes)} min</td>
            <td colspan="2"></td>
            <td data-testid="euros-total">${formatEuros(pageCents)}</td>
          </tr>
        </tfoot>`}
      </table>
    </div>
    <nav class="pager" aria-label="pages">
      ${paged && html`<button type="button" onClick=${onFirst}>${t('common.first')}</button>`}
      ${approved.nextCursor && html`<button type="button" onClick=${() => onMore(approved.nextCursor)}>${t('common.more')}</button>`}
    </nav>`;
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
  const [approvedCursors, setApprovedCursors] = useState([]);
  const approvedAfter = approvedCursors[approvedCursors.length - 1];
  const state = useLoad(() => loadHours(territory.id, after, approvedAfter), [territory.id, after, approvedAfter]);
  useLive(['timesheet_entry'], state.reload);
  return html`<h1>${t('hours.title')}</h1>
    <${Loading} state=${state}>
      ${({ totals, pending, approved, rates }) => html`
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
        </nav>
        <${ApprovedHours} approved=${approved} rates=${rates} territory=${territory} paged=${approvedCursors.length > 0}
          onFirst=${() => setApprovedCursors([])} onMore=${(cursor) => setApprovedCursors([...approvedCursors, cursor])} />`}
    <//>`;
}
