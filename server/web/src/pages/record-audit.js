// On a record's page, what the audit trail knows of it: every attributed
// step (who changed which fields from what to what, with which device; every
// decision), and the record exactly as the server held it at a chosen moment
// (read from the notebook's history by the server).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate } from '../i18n.js';
import { Loading, useLoad } from '../ui.js';
import { BeforeAfter, Detail, shown } from './audit.js';

/** `Date` as a `datetime-local` value (local time, to the second). */
function localInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(
    date.getMinutes(),
  )}:${pad(date.getSeconds())}`;
}

function fieldLabel(field) {
  const key = 'field.' + field;
  return t(key) === key ? field : t(key);
}

function PastState({ past }) {
  if (!past.exists) return html`<p data-testid="state-absent">${t('record.stateAbsent')}</p>`;
  const fields = Object.entries(past.fields || {}).filter(([, value]) => value !== null && value !== '');
  return html`${past.valid === false &&
    html`<p class="notice">${t('record.stateInvalid')} : ${(past.problems || []).map((p) => `${p.field} (${p.reason})`).join(', ')}</p>`}
    <dl class="fields" data-testid="state-fields">
      ${fields.map(([field, value]) => html`<dt>${fieldLabel(field)}</dt><dd data-field=${field}>${shown(value)}</dd>`)}
    </dl>
    ${past.conflicts && past.conflicts.length > 0 &&
    html`<h4>${t('record.stateConflicts')}</h4>
      <ul data-testid="state-conflicts">
        ${past.conflicts.map((c) => html`<li>${fieldLabel(c.field)} : ${(c.values || []).map(shown).join(' / ')}</li>`)}
      </ul>`}`;
}

export function RecordAudit({ territory, recordId }) {
  const base = `/api/territories/${territory.id}/records/${recordId}`;
  const audit = useLoad(
    () =>
      api.get(`${base}/audit`).catch((error) => {
        // Nothing audited about it yet: an empty history, not an error.
        if (error.status === 404) return { steps: [] };
        throw error;
      }),
    [recordId],
  );
  const [at, setAt] = useState('');
  const [past, setPast] = useState(null);
  async function show(moment) {
    setPast(null);
    try {
      setPast({ at: moment, found: await api.get(`${base}/state`, { at: moment }) });
    } catch (error) {
      setPast({ at: moment, error: error.message });
    }
  }
  function submit(event) {
    event.preventDefault();
    const moment = new Date(at);
    show(Number.isNaN(moment.getTime()) ? at : moment.toISOString());
  }
  function showStep(step) {
    setAt(localInput(new Date(step.recordedAt)));
    // The step's own moment, to the microsecond: the input keeps seconds only.
    show(step.recordedAt);
  }
  return html`<section class="panel" aria-labelledby="audit-title">
      <h2 id="audit-title">${t('record.audit')}</h2>
      <${Loading} state=${audit}>
        ${({ steps }) =>
          steps.length === 0
            ? html`<p>${t('record.auditNone')}</p>`
            : html`<ol class="trail" data-testid="record-audit">
                ${steps.map(
                  (step, i) => html`<li class="entry" data-seq=${step.seq ?? ''}>
                    <p class="entry-head">
                      <strong>${step.seq ? `${t('audit.seq')} ${step.seq}` : t('record.pending')}</strong>
                      · ${formatDate(step.recordedAt)} ·
                      <span class="badge">${t('action.' + step.action)}</span>
                      · ${t('audit.who')} ${step.actorName || step.actorId}
                      ${step.deviceId ? html` (${step.deviceName || step.deviceId})` : step.sessionId ? html` (${t('audit.device.web')})` : ''}
                    </p>
                    <${BeforeAfter} before=${step.before} after=${step.after} />
                    <${Detail} action=${step.action} detail=${step.detail} />
                    <button type="button" class="link-button" data-step=${i} onClick=${() => showStep(step)}>
                      ${t('record.auditStep')}
                    </button>
                  </li>`,
                )}
              </ol>`}
      <//>
    </section>
    <section class="panel" aria-labelledby="state-title">
      <h2 id="state-title">${t('record.stateTitle')}</h2>
      <form class="filters" data-testid="state-form" onSubmit=${submit}>
        <div>
          <label for="state-at">${t('record.stateAt')}</label>
          <input id="state-at" type="datetime-local" step="1" required value=${at} onInput=${(e) => setAt(e.target.value)} />
        </div>
        <div class="filter-actions"><button type="submit" class="primary">${t('record.stateShow')}</button></div>
      </form>
      ${past &&
      (past.error
        ? html`<p role="alert" class="error">${t('common.error', { reason: past.error })}</p>`
        : html`<div data-testid="record-state" aria-live="polite">
            <h3>${t('record.stateAtLabel', { at: formatDate(past.at) })}</h3>
            <${PastState} past=${past.found} />
          </div>`)}
    </section>`;
}
