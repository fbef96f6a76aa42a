import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate } from '../i18n.js';
import { useLive } from '../live.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

const STEPS = ['received', 'under_analysis', 'action_taken', 'closed'];

/** Columns of the board: each step's reports (the 100 latest of each). */
async function loadBoard(territoryId) {
  const columns = await Promise.all(
    STEPS.map((status) =>
      api.get(`/api/territories/${territoryId}/review/records`, { kind: 'degradation_report', status, limit: 100 }),
    ),
  );
  return Object.fromEntries(STEPS.map((step, i) => [step, columns[i]]));
}

function ReportCard({ report, territory, canDecide, onMoved }) {
  // The server says where a report may go (`nextStatuses`, its own rule).
  const targets = report.nextStatuses;
  const [choice, setTarget] = useState(targets[0]);
  // A choice the report has since left behind (moved live) falls back to the first.
  const target = targets.includes(choice) ? choice : targets[0];
  const [reason, setReason] = useState('');
  const [outcome, setOutcome] = useState(null);
  async function move(event) {
    event.preventDefault();
    const done = await attempt(
      setOutcome,
      () =>
        api.post(`/api/territories/${territory.id}/review/decisions`, {
          decision: 'follow_up',
          status: target,
          reason: reason.trim(),
          records: [report.id],
        }),
      t('common.done'),
    );
    if (done) onMoved();
  }
  const id = `move-${report.id}`;
  return html`<li class="card" data-record-id=${report.id}>
    <a href=${`#/t/${territory.id}/record/${report.id}`}><strong>${t('category.' + report.category)}</strong></a>
    <p>${report.description}</p>
    <p class="meta">${formatDate(report.observedAt)} · ${report.authorName || ''}${report.site ? ' · ' + report.site : ''}</p>
    ${report.statusReason && html`<p class="meta"><q>${report.statusReason}</q></p>`}
    ${canDecide &&
    targets.length > 0 &&
    html`<form class="move" data-action="move" onSubmit=${move}>
      <label for=${id + '-to'}>${t('reports.move')}</label>
      <select id=${id + '-to'} value=${target} onChange=${(e) => setTarget(e.target.value)}>
        ${targets.map((s) => html`<option value=${s}>${t('followup.' + s)}</option>`)}
      </select>
      <label for=${id + '-reason'}>${t('common.reason')}</label>
      <input id=${id + '-reason'} required value=${reason} onInput=${(e) => setReason(e.target.value)} />
      <button type="submit" class="primary">${t('common.save')}</button>
    </form>`}
    <${Outcome} outcome=${outcome} />
  </li>`;
}

export function Reports({ territory, canDecide }) {
  const state = useLoad(() => loadBoard(territory.id), [territory.id]);
  useLive(['degradation_report'], state.reload);
  return html`<h1>${t('reports.title')}</h1>
    ${canDecide && html`<p>${t('reports.reasonRequired')}</p>`}
    <${Loading} state=${state}>
      ${(board) => html`<div class="board" data-testid="report-board">
        ${STEPS.map(
          (step) => html`<section class="column" data-status=${step} aria-labelledby=${'col-' + step}>
            <h2 id=${'col-' + step}>${t('followup.' + step)} (${board[step].items.length}${board[step].nextCursor ? '+' : ''})</h2>
            <ul>
              ${board[step].items.map(
                (report) => html`<${ReportCard} key=${report.id} report=${report} territory=${territory}
                  canDecide=${canDecide} onMoved=${state.reload} />`,
              )}
            </ul>
          </section>`,
        )}
      </div>`}
    <//>`;
}
