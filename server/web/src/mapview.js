// Leaflet maps. Tiles come from the URL the server was configured with
// (`--map-tiles-url`, read from the page's <meta name="fieldnotes-map-tiles">);
// with none, or offline, the map still draws the points, the territory's
// outline and its sites on a plain background.
import L from 'leaflet';

export function tilesUrl() {
  const meta = document.querySelector('meta[name="fieldnotes-map-tiles"]');
  return meta ? meta.content : '';
}

/**
 * A map. `still`: a picture only (no zoom, pan nor focus), for small maps
 * beside the text that already says everything they show.
 */
export function createMap(element, { label, still = false }) {
  const fixed = still
    ? { zoomControl: false, keyboard: false, dragging: false, scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false, touchZoom: false }
    : { keyboard: true };
  const map = L.map(element, { preferCanvas: false, ...fixed });
  element.setAttribute('aria-label', label);
  const url = tilesUrl();
  if (url) {
    L.tileLayer(url, {
      maxZoom: 19,
      attribution: '&copy; OpenStreetMap contributors',
    }).addTo(map);
  }
  return map;
}

export function boundaryLayer(boundary) {
  return L.geoJSON(boundary, {
    style: { color: '#1d4ed8', weight: 2, fill: false, className: 'territory-outline' },
    interactive: false,
  });
}

/** The sites' markers, as a group whose bounds a map can be fitted to. */
export function siteLayer(sites) {
  return L.featureGroup(
    sites.map((site) =>
      L.circleMarker([site.decimalLatitude, site.decimalLongitude], {
        radius: 7,
        color: '#7c2d12',
        weight: 2,
        fillColor: '#fde68a',
        fillOpacity: 1,
        className: 'site-marker',
      }).bindTooltip(site.name),
    ),
  );
}

export function recordMarker(lat, lon, { color = '#047857', title, onClick, interactive = true }) {
  const marker = L.circleMarker([lat, lon], {
    interactive,
    radius: 6,
    color: '#ffffff',
    weight: 1.5,
    fillColor: color,
    fillOpacity: 0.95,
    className: 'record-marker',
  });
  if (title && interactive) marker.bindTooltip(title);
  if (onClick) marker.on('click', onClick);
  return marker;
}

/** Fits the map on what it shows, or on a default view of France. */
export function fit(map, layers) {
  const group = L.featureGroup(layers.filter(Boolean));
  const bounds = group.getLayers().length ? group.getBounds() : null;
  if (bounds && bounds.isValid()) map.fitBounds(bounds.pad(0.1), { maxZoom: 17 });
  else map.setView([46.6, 2.5], 5);
}

export { L };
