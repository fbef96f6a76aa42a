// The territory's invalid records (`GET /api/invalid-records`): what phones
// synced but validation refused, each with its problems by field and the
// record as the phone wrote it. The dashboard's count links here; nothing
// here acts (the volunteer corrects the record in their notebook).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, has, formatDate } from '../i18n.js';
import { useLive } from '../live.js';
import { Loading, useLoad } from '../ui.js';

const PAGE_SIZE = 50;

/** A field's label when the app has one, else its JSON name. */
function fieldLabel(field) {
  return has('field.' + field) ? t('field.' + field) : field;
}

function InvalidRecord({ record }) {
  return html`<li class="panel" data-record-key=${record.recordKey}>
    <h2>${t('invalid.key')} <code>${record.recordKey}</code></h2>
    <dl class="fields">
      <dt>${t('invalid.kind')}</dt>
      <dd data-field="kind">${t('kind.' + record.kind)}</dd>
      <dt>${t('invalid.document')}</dt>
      <dd><code>${record.documentId}</code></dd>
      <dt>${t('invalid.firstSeen')}</dt>
      <dd>${formatDate(record.firstSeenAt)}</dd>
    </dl>
    <h3>${t('invalid.problems')}</h3>
    <ul data-testid="problems">
      ${record.problems.map(
        (problem) => html`<li data-field=${problem.field}>
          <strong>${fieldLabel(problem.field)}</strong> (<code>${problem.field}</code>) :
          <span lang="en">${problem.reason}</span>
        </li>`,
      )}
    </ul>
    <figure class="raw">
      <figcaption>${t('invalid.raw')}</figcaption>
      <pre tabindex="0" data-testid="raw">${JSON.stringify(record.raw, null, 2)}</pre>
    </figure>
  </li>`;
}

export function InvalidRecords({ territory }) {
  const [offset, setOffset] = useState(0);
  const state = useLoad(
    () => api.get('/api/invalid-records', { territory: territory.id, limit: PAGE_SIZE + 1, offset }),
    [territory.id, offset],
  );
  useLive(null, state.reload);
  return html`<h1>${t('invalid.title')}</h1>
    <p>${t('invalid.intro')}</p>
    <${Loading} state=${state}>
      ${(records) => html`
        ${records.length === 0 && html`<p>${t('common.none')}</p>`}
        <ul class="invalid-records" data-testid="invalid-records">
          ${records.slice(0, PAGE_SIZE).map(
            (record) => html`<${InvalidRecord} key=${record.documentId + record.recordKey} record=${record} />`,
          )}
        </ul>
        <nav class="pager" aria-label="pages">
          ${offset > 0 && html`<button type="button" onClick=${() => setOffset(0)}>${t('common.first')}</button>`}
          ${records.length > PAGE_SIZE &&
          html`<button type="button" onClick=${() => setOffset(offset + PAGE_SIZE)}>${t('common.more')}</button>`}
        </nav>
      `}
    <//>`;
}
