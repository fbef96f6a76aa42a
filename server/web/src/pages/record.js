import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate } from '../i18n.js';
import { useLive } from '../live.js';
import { attempt, Loading, Outcome, Photo, recordTitle, statusLabel, useLoad, Warnings } from '../ui.js';
import { DecisionForm } from './decide.js';
import { RecordAudit } from './record-audit.js';

const FIELDS = {
  sighting: ['scientificName', 'vernacularName', 'taxonID', 'eventDate', 'individualCount', 'decimalLatitude',
    'decimalLongitude', 'coordinateUncertaintyInMeters', 'site', 'recordedBy', 'notes', 'authorName',
    'validationStatus', 'duplicateOf', 'modifiedAt'],
  degradation_report: ['category', 'categoryDetail', 'observedAt', 'description', 'decimalLatitude',
    'decimalLongitude', 'coordinateUncertaintyInMeters', 'site', 'authorName', 'status', 'statusReason', 'modifiedAt'],
  timesheet_entry: ['workDate', 'startedAt', 'endedAt', 'durationMinutes', 'activity', 'site', 'notes',
    'authorName', 'approvalStatus', 'approvalReason', 'modifiedAt'],
};
const DATES = new Set(['eventDate', 'observedAt', 'startedAt', 'endedAt', 'modifiedAt']);

function fieldValue(record, field) {
  const value = record[field];
  if (value === null || value === undefined || value === '') return '—';
  if (DATES.has(field)) return formatDate(value);
  if (field === 'workDate') return formatDate(value, false);
  if (field === 'category') return t('category.' + value);
  if (field === 'activity') return t('activity.' + value);
  if (field === 'validationStatus' || field === 'status' || field === 'approvalStatus') return statusLabel(record);
  if (field === 'duplicateOf') return html`<a href=${`#/t/${record.territoryId}/record/${value}`}>${value}</a>`;
  return String(value);
}

function historyStatus(kind, status) {
  if (status === null || status === undefined) return '';
  if (kind === 'sighting') return t('status.' + status);
  if (kind === 'degradation_report') return t('followup.' + status);
  return t('approval.' + status);
}

export function RecordDetail({ territory, canDecide, arg: recordId }) {
  const [outcome, setOutcome] = useState(null);
  const base = `/api/territories/${territory.id}/review/records/${recordId}`;
  const state = useLoad(
    () => Promise.all([api.get(base), api.get(`${base}/history`)]).then(([record, history]) => ({ record, history })),
    [recordId],
  );
  useLive(null, state.reload);
  async function decide(decision) {
    const done = await attempt(
      setOutcome,
      () => api.post(`/api/territories/${territory.id}/review/decisions`, { ...decision, records: [recordId] }),
      t('record.applied'),
    );
    if (done) state.reload();
  }
  return html`<p><a href=${`#/t/${territory.id}/table`}>← ${t('record.back')}</a></p>
    <${Loading} state=${state}>
      ${({ record, history }) => html`
        <h1>${t('kind.' + record.kind)} : ${recordTitle(record)}</h1>
        <${Outcome} outcome=${outcome} />
        <${Warnings} warnings=${record.warnings} />
        <div class="columns">
          <section class="panel">
            <h2>${t('record.fields')}</h2>
            <dl class="fields" data-testid="record-fields">
              ${FIELDS[record.kind].map(
                (field) => html`<dt>${t('field.' + field)}</dt>
                  <dd data-field=${field}>${fieldValue({ ...record, territoryId: territory.id }, field)}</dd>`,
              )}
            </dl>
            ${record.hasConflicts &&
            html`<p class="notice"><a href=${`#/t/${territory.id}/conflicts`}>${t('table.flagConflict')} →</a></p>`}
          </section>
          <section class="panel">
            ${record.photos && record.photos.length > 0 &&
            html`<h2>${t('record.photos')}</h2>
              <div class="photos" data-testid="photos">
                ${record.photos.map((sha, i) => html`<${Photo} sha256=${sha} n=${i + 1} />`)}
              </div>`}
            ${canDecide &&
            html`<h2>${t('record.decide')}</h2>
              <${DecisionForm} kind=${record.kind} onDecide=${decide} submitLabel=${t('common.save')} idPrefix="record" />`}
            <h2>${t('record.history')}</h2>
            ${history.history.length === 0
              ? html`<p>${t('record.noHistory')}</p>`
              : html`<ol class="history" data-testid="history">
                  ${history.history.map(
                    (step) => html`<li>
                      <strong>${t('action.' + step.action)}</strong>
                      ${step.previous !== null && step.previous !== undefined ? html` ${historyStatus(record.kind, step.previous)} →` : ''}
                      ${' '}${historyStatus(record.kind, step.status)}
                      — ${step.decidedByName || t('common.unknown')}, ${formatDate(step.decidedAt)}
                      ${step.reason && html`<br /><q>${step.reason}</q>`}
                      ${step.detail && step.detail.field && html`<br /><code>${step.detail.field}</code> = <code>${JSON.stringify(step.detail.value)}</code>`}
                    </li>`,
                  )}
                </ol>`}
          </section>
        </div>
        <${RecordAudit} territory=${territory} recordId=${recordId} />
      `}
    <//>`;
}
