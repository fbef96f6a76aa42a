// A record's position: from the phone's GPS (with the accuracy it reports,
// written as coordinateUncertaintyInMeters), or a point placed on the map
// (its uncertainty is what a finger covers at the map's zoom), or typed.
// The map draws the territory's outline and its sites as vectors; tiles only
// when the server names a tile URL (<meta name="fieldnotes-map-tiles">), so
// it works offline too.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import { t, formatNumber } from './i18n.js';
import { useValue } from '../../../server/web/shared/state.js';
import * as vocabulary from '../../../server/web/shared/vocabulary.js';
import { activeSites, profile } from './session.js';

/** WGS 84 bounds, as the record schemas give them. */
const LATITUDE = vocabulary.bounds('sighting', 'decimalLatitude');
const LONGITUDE = vocabulary.bounds('sighting', 'decimalLongitude');

const MAX_UNCERTAINTY = vocabulary.bounds('sighting', 'coordinateUncertaintyInMeters').max;

function tilesUrl() {
  const meta = document.querySelector('meta[name="fieldnotes-map-tiles"]');
  return meta ? meta.content : '';
}

/** Metres a 22 px fingertip covers at `zoom` and latitude `lat`. */
function fingertipMeters(lat, zoom) {
  const metresPerPixel = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / 2 ** (zoom + 8);
  return Math.min(MAX_UNCERTAINTY, Math.max(1, Math.round(22 * metresPerPixel)));
}

/** `value`: `{ lat, lon, accuracy }` or null. */
export function PositionField({ id, value, onChange, invalid }) {
  const [locating, setLocating] = useState(false);
  const [error, setError] = useState(null);
  const { territory, sites } = useValue(profile);
  const mapElement = useRef(null);
  const map = useRef(null);
  const marker = useRef(null);
  const circle = useRef(null);
  const change = useRef(onChange);
  change.current = onChange;

  useEffect(() => {
    const m = L.map(mapElement.current, { keyboard: true, zoomControl: true });
    map.current = m;
    // A view first: vector layers cannot be drawn on a map without one.
    if (value) m.setView([value.lat, value.lon], 17);
    else m.setView([46.6, 2.5], 5);
    const url = tilesUrl();
    if (url) L.tileLayer(url, { maxZoom: 19, attribution: '&copy; OpenStreetMap' }).addTo(m);
    const layers = [];
    if (territory && territory.boundary) {
      layers.push(L.geoJSON(territory.boundary, { style: { color: '#1d4ed8', weight: 2, fill: false }, interactive: false }).addTo(m));
    }
    for (const site of activeSites(sites)) {
      layers.push(
        L.circleMarker([site.decimalLatitude, site.decimalLongitude], {
          radius: 7, color: '#7c2d12', weight: 2, fillColor: '#fde68a', fillOpacity: 1,
        }).bindTooltip(site.name).addTo(m),
      );
    }
    if (!value) {
      const group = L.featureGroup(layers);
      const bounds = layers.length ? group.getBounds() : null;
      if (bounds && bounds.isValid()) m.fitBounds(bounds.pad(0.1), { maxZoom: 17, animate: false });
    }
    m.on('click', (e) => {
      const lat = Number(e.latlng.lat.toFixed(6));
      const lon = Number(L.Util.wrapNum(e.latlng.lng, [-180, 180], true).toFixed(6));
      change.current({ lat, lon, accuracy: fingertipMeters(lat, m.getZoom()), source: 'map' });
    });
    return () => {
      m.stop();
      m.off();
      m.remove();
    };
  }, []);

  useEffect(() => {
    const m = map.current;
    if (!m) return;
    marker.current && marker.current.remove();
    circle.current && circle.current.remove();
    if (!value) return;
    marker.current = L.circleMarker([value.lat, value.lon], {
      radius: 9, color: '#ffffff', weight: 3, fillColor: '#b91c1c', fillOpacity: 1,
    }).addTo(m);
    if (value.accuracy) {
      circle.current = L.circle([value.lat, value.lon], { radius: value.accuracy, color: '#b91c1c', weight: 1, fillOpacity: 0.08, interactive: false }).addTo(m);
    }
    if (value.source !== 'map') m.setView([value.lat, value.lon], Math.max(m.getZoom(), 16), { animate: false });
  }, [value && value.lat, value && value.lon, value && value.accuracy]);

  const locate = () => {
    if (!navigator.geolocation) {
      setError('geolocation');
      return;
    }
    setLocating(true);
    setError(null);
    navigator.geolocation.getCurrentPosition(
      (p) => {
        setLocating(false);
        const accuracy = p.coords.accuracy > 0 ? Math.min(MAX_UNCERTAINTY, Math.round(p.coords.accuracy * 10) / 10) : null;
        onChange({ lat: Number(p.coords.latitude.toFixed(7)), lon: Number(p.coords.longitude.toFixed(7)), accuracy, source: 'gps' });
      },
      (e) => {
        setLocating(false);
        setError(e.message || String(e.code));
      },
      { enableHighAccuracy: true, timeout: 30000, maximumAge: 10000 },
    );
  };

  const typed = (key) => (e) => {
    const n = Number(String(e.currentTarget.value).replace(',', '.'));
    const next = { lat: value ? value.lat : 0, lon: value ? value.lon : 0, accuracy: value ? value.accuracy : null, source: 'typed' };
    if (e.currentTarget.value === '' || !Number.isFinite(n)) return;
    next[key] = n;
    onChange(next);
  };

  return html`<fieldset class="position" id=${id} aria-invalid=${invalid ? 'true' : undefined}>
    <legend>${t('field.position')} <span class="req">${t('form.required')}</span></legend>
    <button type="button" class="big" onClick=${locate} disabled=${locating} data-testid="use-gps">
      ${locating ? t('pos.locating') : t('pos.gps')}
    </button>
    <p class="position-value" role="status" data-testid="position-value">
      ${value
        ? html`${t('pos.value', { lat: formatNumber(value.lat, 6), lon: formatNumber(value.lon, 6) })}
          ${value.accuracy ? html`<br /><span data-testid="position-accuracy">${t('pos.accuracy', { m: formatNumber(value.accuracy, 1) })}</span>` : null}
          ${value.source === 'map' ? html`<br />${t('pos.placed')}` : null}`
        : t('pos.none')}
    </p>
    ${error ? html`<p class="error" role="alert">${t('pos.failed', { reason: error })}</p>` : null}
    <div class="map" ref=${mapElement} role="application" aria-label=${t('pos.map')} data-testid="position-map"></div>
    <div class="row two">
      <div>
        <label for=${`${id}-lat`}>${t('pos.lat')}</label>
        <input id=${`${id}-lat`} type="number" inputmode="decimal" step="any" min=${LATITUDE.min} max=${LATITUDE.max}
          data-testid="position-lat" value=${value ? value.lat : ''} onChange=${typed('lat')} />
      </div>
      <div>
        <label for=${`${id}-lon`}>${t('pos.lon')}</label>
        <input id=${`${id}-lon`} type="number" inputmode="decimal" step="any" min=${LONGITUDE.min} max=${LONGITUDE.max}
          data-testid="position-lon" value=${value ? value.lon : ''} onChange=${typed('lon')} />
      </div>
    </div>
  </fieldset>`;
}
