import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate } from '../i18n.js';
import { useLive } from '../live.js';
import { attempt, Loading, Outcome, recordTitle, useLoad } from '../ui.js';

const KINDS = ['sighting', 'degradation_report', 'timesheet_entry'];

/** What a person types as "another value": JSON if it parses, else the text. */
function typedValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function show(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function ConflictField({ territory, record, conflict, canDecide, onResolved }) {
  const [other, setOther] = useState('');
  const [outcome, setOutcome] = useState(null);
  const id = `${record.id}-${conflict.field}`;
  async function resolve(value) {
    const done = await attempt(
      setOutcome,
      () =>
        api.post(`/api/territories/${territory.id}/review/conflicts/${record.id}/resolution`, {
          field: conflict.field,
          value,
        }),
      t('conflicts.resolved', { field: t('field.' + conflict.field) }),
    );
    if (done) onResolved();
  }
  return html`<fieldset class="conflict" data-field=${conflict.field}>
    <legend>${t('conflicts.field', { field: t('field.' + conflict.field) })}</legend>
    <div class="side-by-side">
      ${conflict.values.map((candidate) => {
        const by = candidate.writtenBy || {};
        return html`<div class="candidate" data-testid="conflict-value">
          <p class="value"><strong>${show(candidate.value)}</strong>
            ${show(candidate.value) === show(conflict.winner) && html` <span class="badge muted">${t('conflicts.current')}</span>`}</p>
          <p>${t('conflicts.by')} : ${by.displayName || t('common.unknown')}${by.deviceName ? ` (${by.deviceName})` : ''}</p>
          <p>${t('conflicts.when')} : ${formatDate(candidate.writtenAt || by.receivedAt)}</p>
          ${canDecide &&
          html`<button type="button" class="primary" data-action="resolve" onClick=${() => resolve(candidate.value)}>
            ${t('conflicts.pick')} « ${show(candidate.value)} »
          </button>`}
        </div>`;
      })}
    </div>
    ${canDecide &&
    html`<form class="inline" data-action="resolve" onSubmit=${(e) => { e.preventDefault(); resolve(typedValue(other)); }}>
      <label for=${'other-' + id}>${t('conflicts.other')}</label>
      <input id=${'other-' + id} value=${other} required onInput=${(e) => setOther(e.target.value)} />
      <button type="submit">${t('conflicts.useOther')}</button>
    </form>`}
    <${Outcome} outcome=${outcome} />
  </fieldset>`;
}

export function Conflicts({ territory, canDecide }) {
  const state = useLoad(
    () =>
      Promise.all(
        KINDS.map((kind) => api.get(`/api/territories/${territory.id}/review/conflicts`, { kind, limit: 50 })),
      ).then((pages) => pages.flatMap((page) => page.items)),
    [territory.id],
  );
  useLive(null, state.reload);
  return html`<h1>${t('conflicts.title')}</h1>
    <${Loading} state=${state}>
      ${(records) =>
        records.length === 0
          ? html`<p data-testid="conflicts-empty">${t('common.none')}</p>`
          : html`<ul class="queue" data-testid="conflict-queue">
              ${records.map(
                (record) => html`<li class="panel" data-record-id=${record.id}>
                  <h2><a href=${`#/t/${territory.id}/record/${record.id}`}>${t('kind.' + record.kind)} : ${recordTitle(record)}</a>
                    — ${record.authorName || ''}</h2>
                  ${record.conflicts.map(
                    (conflict) => html`<${ConflictField} territory=${territory} record=${record}
                      conflict=${conflict} canDecide=${canDecide} onResolved=${state.reload} />`,
                  )}
                </li>`,
              )}
            </ul>`}
    <//>`;
}
