import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { FilterForm, filters, query } from '../filters.js';
import { t } from '../i18n.js';
import { useLive } from '../live.js';
import { boundaryLayer, createMap, fit, L, recordMarker, siteLayer } from '../mapview.js';
import { useValue } from '../../shared/state.js';
import { recordTitle, useLoad } from '../ui.js';

/** At most this many records on the map (newest first): a map of more says little. */
const MAX_POINTS = 2000;

async function loadPoints(territoryId, filter) {
  const points = [];
  let after;
  do {
    const page = await api.get(`/api/territories/${territoryId}/review/records`, {
      ...query(filter),
      after,
      limit: 500,
    });
    points.push(...page.items.filter((r) => r.decimalLatitude !== null && r.decimalLatitude !== undefined));
    after = page.nextCursor;
  } while (after && points.length < MAX_POINTS);
  return { points: points.slice(0, MAX_POINTS), capped: Boolean(after) };
}

const COLORS = { 0: '#6b7280', 1: '#047857', 2: '#0e7490', 3: '#b45309', 4: '#b91c1c', 5: '#6d28d9', 6: '#374151' };

export function MapPage({ territory }) {
  const filter = useValue(filters);
  const element = useRef(null);
  const map = useRef(null);
  const layer = useRef(null);
  const [sites, setSites] = useState([]);
  const state = useLoad(() => loadPoints(territory.id, filter), [territory.id, JSON.stringify(filter)]);
  useLive([filter.kind], state.reload);

  useEffect(() => {
    api.get(`/api/territories/${territory.id}/sites`).then(
      (list) => setSites(Array.isArray(list) ? list : list.items || []),
      () => setSites([]),
    );
    map.current = createMap(element.current, { label: t('map.label') });
    return () => map.current.remove();
  }, [territory.id]);

  useEffect(() => {
    if (!map.current || !state.data) return;
    if (layer.current) layer.current.remove();
    const outline = territory.boundary ? boundaryLayer(territory.boundary) : null;
    const siteMarkers = siteLayer(sites);
    const markers = state.data.points.map((record) =>
      recordMarker(record.decimalLatitude, record.decimalLongitude, {
        color: record.kind === 'sighting' ? COLORS[record.validationStatus] : '#b45309',
        title: recordTitle(record),
        onClick: () => (location.hash = `#/t/${territory.id}/record/${record.id}`),
      }),
    );
    const recordsLayer = L.featureGroup(markers);
    layer.current = L.layerGroup([outline, siteMarkers, recordsLayer].filter(Boolean)).addTo(map.current);
    fit(map.current, [outline, recordsLayer.getLayers().length ? recordsLayer : null, ...siteMarkers.getLayers()]);
  }, [state.data, sites]);

  return html`<h1>${t('map.title', { kind: t('kind.' + filter.kind) })}</h1>
    <${FilterForm} territoryId=${territory.id} />
    <p role="status" data-testid="map-count">
      ${state.data ? t('map.points', { n: state.data.points.length }) : t('common.loading')}
      ${state.data && state.data.capped ? ' ' + t('map.capped', { n: MAX_POINTS }) : ''}
    </p>
    <div class="map" ref=${element} data-testid="map" role="region"></div>
    <p class="legend">
      <span class="swatch outline"></span> ${t('map.territory')}
      <span class="swatch site"></span> ${t('map.sites')}
    </p>`;
}
