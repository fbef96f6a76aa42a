import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate, formatNumber } from '../i18n.js';
import { useLive } from '../live.js';
import { createMap, fit, L, recordMarker } from '../mapview.js';
import { attempt, Loading, Outcome, Photo, statusLabel, useLoad } from '../ui.js';

function PairMap({ a, b }) {
  const element = useRef(null);
  useEffect(() => {
    const map = createMap(element.current, { label: `${a.scientificName} ×2`, still: true });
    const markers = L.featureGroup([
      recordMarker(a.decimalLatitude, a.decimalLongitude, { color: '#1d4ed8', interactive: false }),
      recordMarker(b.decimalLatitude, b.decimalLongitude, { color: '#b45309', interactive: false }),
    ]).addTo(map);
    fit(map, [markers]);
    return () => map.remove();
  }, [a.id, b.id]);
  return html`<div class="map small" ref=${element} role="figure"></div>`;
}

function Side({ record, n, territory }) {
  return html`<div class="candidate">
    <h3><a href=${`#/t/${territory.id}/record/${record.id}`}>${n}. ${record.scientificName}</a></h3>
    <p>${formatDate(record.eventDate)} · ${record.authorName || ''}</p>
    <p>${t('field.individualCount')} : ${record.individualCount ?? '—'} · ${record.site || ''}</p>
    <p>${t('field.validationStatus')} : ${statusLabel({ ...record, kind: 'sighting' })}</p>
    ${(record.photos || []).map((sha, i) => html`<${Photo} sha256=${sha} n=${i + 1} />`)}
  </div>`;
}

function PairCard({ pair, territory, canDecide, onDone }) {
  const [outcome, setOutcome] = useState(null);
  const base = `/api/territories/${territory.id}/review/duplicates`;
  async function act(path, body, message) {
    const done = await attempt(setOutcome, () => api.post(`${base}/${path}`, body), message);
    if (done) onDone();
  }
  const { a, b } = pair;
  return html`<li class="panel pair" data-pair=${`${a.id}:${b.id}`}>
    <p>${t('duplicates.apart', { m: formatNumber(pair.distanceM, 1), h: formatNumber(pair.hoursApart, 2) })}</p>
    <div class="side-by-side">
      <${Side} record=${a} n=${1} territory=${territory} />
      <${PairMap} a=${a} b=${b} />
      <${Side} record=${b} n=${2} territory=${territory} />
    </div>
    ${canDecide &&
    html`<div class="actions" data-action="merge-or-dismiss">
      <button type="button" class="primary" onClick=${() => act('merge', { reference: a.id, duplicate: b.id }, t('duplicates.merged'))}>
        ${t('duplicates.keepA')}</button>
      <button type="button" class="primary" onClick=${() => act('merge', { reference: b.id, duplicate: a.id }, t('duplicates.merged'))}>
        ${t('duplicates.keepB')}</button>
      <button type="button" onClick=${() => act('dismiss', { reference: a.id, duplicate: b.id }, t('duplicates.dismissed'))}>
        ${t('duplicates.dismiss')}</button>
    </div>`}
    <${Outcome} outcome=${outcome} />
  </li>`;
}

export function Duplicates({ territory, canDecide }) {
  const [cursors, setCursors] = useState([]);
  const after = cursors[cursors.length - 1];
  const state = useLoad(
    () => api.get(`/api/territories/${territory.id}/review/duplicates`, { after, limit: 20 }),
    [territory.id, after],
  );
  useLive(['sighting'], () => !after && state.reload());
  return html`<h1>${t('duplicates.title')}</h1>
    <${Loading} state=${state}>
      ${(page) => html`
        ${page.items.length === 0
          ? html`<p data-testid="duplicates-empty">${t('common.none')}</p>`
          : html`<ul class="queue" data-testid="duplicate-queue">
              ${page.items.map(
                (pair) => html`<${PairCard} key=${pair.a.id + pair.b.id} pair=${pair} territory=${territory}
                  canDecide=${canDecide} onDone=${state.reload} />`,
              )}
            </ul>`}
        <nav class="pager" aria-label="pages">
          ${cursors.length > 0 && html`<button type="button" onClick=${() => setCursors([])}>${t('common.first')}</button>`}
          ${page.nextCursor && html`<button type="button" onClick=${() => setCursors([...cursors, page.nextCursor])}>${t('common.more')}</button>`}
        </nav>`}
    <//>`;
}
