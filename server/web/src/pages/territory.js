// A territory's identity, for its coordinators and admins (régie auditors
// read it): its name and description, and its boundary — drawn on the map
// point by point (by clicking, or by moving the map and adding its centre,
// which the keyboard can do), or uploaded as a GeoJSON file from a GIS. The
// server checks the shape (a valid polygon in WGS 84) and says what is wrong.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t } from '../i18n.js';
import { boundaryLayer, createMap, fit, L } from '../mapview.js';
import { attempt, Outcome } from '../ui.js';

/** Largest GeoJSON file read in the page; the server takes 2 MiB of JSON. */
const MAX_BOUNDARY_FILE_BYTES = 2 * 1024 * 1024;

function Identity({ territory, canDecide, onSaved }) {
  const [outcome, setOutcome] = useState(null);
  async function save(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const saved = await attempt(
      setOutcome,
      () =>
        api.patch(`/api/territories/${territory.id}`, {
          name: String(form.get('name')),
          description: String(form.get('description')),
        }),
      t('common.done'),
    );
    if (saved) onSaved(saved);
  }
  if (!canDecide) {
    return html`<dl class="detail" data-testid="territory-identity">
      <dt>${t('territory.name')}</dt><dd>${territory.name}</dd>
      <dt>${t('territory.description')}</dt><dd>${territory.description || '—'}</dd>
    </dl>`;
  }
  return html`<form onSubmit=${save} class="stacked" data-testid="territory-identity">
    <label for="territory-name">${t('territory.name')}</label>
    <input id="territory-name" name="name" required maxlength="200" value=${territory.name} />
    <label for="territory-description">${t('territory.description')}</label>
    <textarea id="territory-description" name="description" rows="3">${territory.description || ''}</textarea>
    <${Outcome} outcome=${outcome} />
    <button type="submit">${t('settings.save')}</button>
  </form>`;
}

/**
 * The polygon or multipolygon of a GeoJSON text: a geometry, a Feature, or
 * a FeatureCollection of polygons (merged into one MultiPolygon). Throws an
 * Error saying what the file holds instead.
 */
export function boundaryOfGeoJson(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(t('territory.fileNotJson'));
  }
  const geometries = [];
  const collect = (item) => {
    if (!item || typeof item !== 'object') return;
    if (item.type === 'FeatureCollection') (item.features || []).forEach(collect);
    else if (item.type === 'Feature') collect(item.geometry);
    else if (item.type === 'GeometryCollection') (item.geometries || []).forEach(collect);
    else if (item.type === 'Polygon' || item.type === 'MultiPolygon') geometries.push(item);
  };
  collect(value);
  if (geometries.length === 0) throw new Error(t('territory.fileNoPolygon'));
  if (geometries.length === 1) return geometries[0];
  return {
    type: 'MultiPolygon',
    coordinates: geometries.flatMap((g) => (g.type === 'Polygon' ? [g.coordinates] : g.coordinates)),
  };
}

/** A drawn ring (latitude, longitude points) as a closed GeoJSON Polygon. */
function polygonOf(points) {
  const ring = points.map(([lat, lon]) => [lon, lat]);
  ring.push(ring[0]);
  return { type: 'Polygon', coordinates: [ring] };
}

const round = (n) => Math.round(n * 1e6) / 1e6;

function Boundary({ territory, canDecide, onSaved }) {
  const element = useRef(null);
  const map = useRef(null);
  const saved = useRef(null);
  const pending = useRef(null);
  // null: not drawing; else the points placed so far, as [lat, lon].
  const [points, setPoints] = useState(null);
  // A boundary read from a file, not saved yet.
  const [uploaded, setUploaded] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const drawing = points !== null;

  useEffect(() => {
    map.current = createMap(element.current, { label: t('territory.mapLabel') });
    return () => map.current.remove();
  }, [territory.id]);

  // The saved boundary, fitted once per boundary.
  useEffect(() => {
    if (saved.current) saved.current.remove();
    saved.current = territory.boundary ? boundaryLayer(territory.boundary).addTo(map.current) : null;
    fit(map.current, [saved.current]);
  }, [territory.boundary]);

  // Clicks place points while drawing.
  useEffect(() => {
    if (!drawing) return undefined;
    const place = (event) => setPoints((current) => [...(current || []), [round(event.latlng.lat), round(event.latlng.lng)]]);
    map.current.on('click', place);
    element.current.classList.add('drawing');
    return () => {
      map.current.off('click', place);
      element.current && element.current.classList.remove('drawing');
    };
  }, [drawing]);

  // What is being drawn or was uploaded, over the saved boundary.
  useEffect(() => {
    if (pending.current) pending.current.remove();
    pending.current = null;
    const style = { color: '#b45309', weight: 2, dashArray: '6 4', className: 'boundary-pending' };
    if (uploaded) {
      pending.current = L.geoJSON(uploaded, { style, interactive: false }).addTo(map.current);
      fit(map.current, [pending.current]);
    } else if (points && points.length) {
      pending.current = L.layerGroup([
        points.length > 2 ? L.polygon(points, { ...style, interactive: false }) : L.polyline(points, { ...style, interactive: false }),
        ...points.map((p) => L.circleMarker(p, { radius: 5, color: '#b45309', interactive: false, className: 'boundary-vertex' })),
      ]).addTo(map.current);
    }
  }, [points, uploaded]);

  async function save(boundary) {
    const done = await attempt(
      setOutcome,
      () => api.patch(`/api/territories/${territory.id}`, { boundary }),
      boundary ? t('territory.boundarySaved') : t('territory.boundaryRemoved'),
    );
    if (done) {
      setPoints(null);
      setUploaded(null);
      onSaved(done);
    }
  }

  async function upload(event) {
    const file = event.currentTarget.files[0];
    event.currentTarget.value = '';
    setPoints(null);
    setUploaded(null);
    setOutcome(null);
    if (!file) return;
    if (file.size > MAX_BOUNDARY_FILE_BYTES) {
      setOutcome({ error: t('territory.fileTooLarge') });
      return;
    }
    try {
      setUploaded(boundaryOfGeoJson(await file.text()));
    } catch (error) {
      setOutcome({ error: error.message });
    }
  }

  const addCentre = () => {
    const centre = map.current.getCenter();
    setPoints((current) => [...(current || []), [round(centre.lat), round(centre.lng)]]);
  };

  return html`<section aria-labelledby="boundary-title">
    <h2 id="boundary-title">${t('territory.boundary')}</h2>
    <p data-testid="boundary-state">${territory.boundary ? t('territory.hasBoundary') : t('territory.noBoundary')}</p>
    <div class="map boundary-map" ref=${element} data-testid="boundary-map"></div>
    ${canDecide &&
    html`<div class="boundary-tools" data-testid="boundary-tools">
      ${drawing
        ? html`<p role="status" data-testid="draw-status">${t('territory.drawHelp', { n: points.length })}</p>
            <button type="button" onClick=${addCentre}>${t('territory.addCentre')}</button>
            <button type="button" disabled=${points.length === 0} onClick=${() => setPoints(points.slice(0, -1))}>${t('territory.undoPoint')}</button>
            <button type="button" class="primary" data-testid="save-drawn" disabled=${points.length < 3}
              onClick=${() => save(polygonOf(points))}>${t('territory.saveDrawn')}</button>
            <button type="button" onClick=${() => setPoints(null)}>${t('common.cancel')}</button>`
        : html`<button type="button" data-testid="start-drawing" onClick=${() => { setUploaded(null); setOutcome(null); setPoints([]); }}>
              ${t('territory.draw')}</button>
            <label for="boundary-file">${t('territory.upload')}</label>
            <input id="boundary-file" type="file" accept=".geojson,.json,application/geo+json,application/json" onChange=${upload} />
            ${uploaded &&
            html`<button type="button" class="primary" data-testid="save-uploaded" onClick=${() => save(uploaded)}>
              ${t('territory.saveUploaded')}</button>`}
            ${territory.boundary &&
            html`<button type="button" data-testid="remove-boundary"
              onClick=${() => confirm(t('territory.removeConfirm')) && save(null)}>${t('territory.removeBoundary')}</button>`}`}
      <${Outcome} outcome=${outcome} />
    </div>`}
  </section>`;
}

export function TerritoryPage({ territory, canDecide, onTerritoryChanged }) {
  return html`<h1>${t('territory.title')}</h1>
    <${Identity} territory=${territory} canDecide=${canDecide} onSaved=${onTerritoryChanged} />
    <${Boundary} territory=${territory} canDecide=${canDecide} onSaved=${onTerritoryChanged} />`;
}
