// A territory's sites (the named places volunteers pick when they record),
// for its coordinators and admins (régie auditors read them): listed with
// their position, added by name and position (typed, or a click on the map),
// renamed, moved, deactivated (phones stop offering a deactivated site; the
// records that name it keep it) and reactivated.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t, formatNumber } from '../i18n.js';
import { boundaryLayer, createMap, fit, siteLayer } from '../mapview.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

/** A coordinate typed with a decimal comma or point, as a number (NaN if not one). */
const coordinate = (value) => Number(String(value).trim().replace(',', '.'));

function SiteMap({ territory, sites, onPick }) {
  const element = useRef(null);
  const map = useRef(null);
  const layers = useRef([]);
  useEffect(() => {
    map.current = createMap(element.current, { label: t('sites.mapLabel') });
    return () => map.current.remove();
  }, [territory.id]);
  useEffect(() => {
    if (!onPick) return undefined;
    const pick = (event) => onPick(event.latlng);
    map.current.on('click', pick);
    return () => map.current.off('click', pick);
  }, [onPick]);
  useEffect(() => {
    layers.current.forEach((layer) => layer.remove());
    layers.current = [
      territory.boundary ? boundaryLayer(territory.boundary) : null,
      siteLayer(sites.filter((site) => site.active)),
    ].filter(Boolean);
    layers.current.forEach((layer) => layer.addTo(map.current));
    fit(map.current, layers.current);
  }, [sites, territory.boundary]);
  return html`<div class="map sites-map" ref=${element} data-testid="sites-map"></div>`;
}

function SiteRow({ territory, site, canDecide, onChanged }) {
  const [editing, setEditing] = useState(false);
  const [outcome, setOutcome] = useState(null);
  const path = `/api/territories/${territory.id}/sites/${site.id}`;
  async function change(body) {
    if (await attempt(setOutcome, () => api.patch(path, body), t('common.done'))) {
      setEditing(false);
      onChanged();
    }
  }
  function save(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    change({
      name: String(form.get('name')),
      decimalLatitude: coordinate(form.get('lat')),
      decimalLongitude: coordinate(form.get('lon')),
    });
  }
  const id = `site-${site.id}`;
  return html`<tr data-testid="site-row" data-active=${site.active ? 'true' : 'false'}>
    ${editing
      ? html`<td colspan="4">
          <form onSubmit=${save} class="inline-form" aria-label=${t('sites.editOf', { name: site.name })}>
            <label for=${id + '-name'}>${t('sites.name')}</label>
            <input id=${id + '-name'} name="name" required maxlength="200" value=${site.name} />
            <label for=${id + '-lat'}>${t('sites.latitude')}</label>
            <input id=${id + '-lat'} name="lat" inputmode="decimal" required value=${site.decimalLatitude} />
            <label for=${id + '-lon'}>${t('sites.longitude')}</label>
            <input id=${id + '-lon'} name="lon" inputmode="decimal" required value=${site.decimalLongitude} />
            <button type="submit" class="primary">${t('common.save')}</button>
            <button type="button" onClick=${() => setEditing(false)}>${t('common.cancel')}</button>
          </form>
        </td>`
      : html`<th scope="row">${site.name}</th>
          <td data-testid="site-position">${t('sites.latLon', { lat: formatNumber(site.decimalLatitude, 6), lon: formatNumber(site.decimalLongitude, 6) })}</td>
          <td>${site.active ? t('sites.active') : t('sites.inactive')}</td>
          <td>
            ${canDecide &&
            html`<button type="button" onClick=${() => setEditing(true)} aria-label=${t('sites.editOf', { name: site.name })}>
                ${t('sites.edit')}</button>
              <button type="button" data-testid="site-toggle" onClick=${() => change({ active: !site.active })}
                aria-label=${t(site.active ? 'sites.deactivateOf' : 'sites.reactivateOf', { name: site.name })}>
                ${t(site.active ? 'sites.deactivate' : 'sites.reactivate')}</button>`}
            <${Outcome} outcome=${outcome} />
          </td>`}
  </tr>`;
}

function NewSite({ territory, picked, onAdded }) {
  const [outcome, setOutcome] = useState(null);
  const [position, setPosition] = useState({ lat: '', lon: '' });
  useEffect(() => {
    if (picked) setPosition({ lat: String(picked.lat.toFixed(6)), lon: String(picked.lng.toFixed(6)) });
  }, [picked]);
  async function add(event) {
    event.preventDefault();
    const formElement = event.currentTarget;
    const form = new FormData(formElement);
    const added = await attempt(
      setOutcome,
      () =>
        api.post(`/api/territories/${territory.id}/sites`, {
          name: String(form.get('name')),
          decimalLatitude: coordinate(position.lat),
          decimalLongitude: coordinate(position.lon),
        }),
      (site) => t('sites.added', { name: site.name }),
    );
    if (added) {
      formElement.reset();
      setPosition({ lat: '', lon: '' });
      onAdded();
    }
  }
  return html`<form onSubmit=${add} data-testid="site-form" aria-labelledby="new-site-title">
    <h2 id="new-site-title">${t('sites.new')}</h2>
    <p>${t('sites.pickHelp')}</p>
    <label for="site-name">${t('sites.name')}</label>
    <input id="site-name" name="name" required maxlength="200" />
    <label for="site-lat">${t('sites.latitude')}</label>
    <input id="site-lat" name="lat" inputmode="decimal" required value=${position.lat}
      onInput=${(e) => setPosition({ ...position, lat: e.currentTarget.value })} />
    <label for="site-lon">${t('sites.longitude')}</label>
    <input id="site-lon" name="lon" inputmode="decimal" required value=${position.lon}
      onInput=${(e) => setPosition({ ...position, lon: e.currentTarget.value })} />
    <${Outcome} outcome=${outcome} />
    <button type="submit" class="primary">${t('sites.add')}</button>
  </form>`;
}

export function Sites({ territory, canDecide }) {
  const sites = useLoad(() => api.get(`/api/territories/${territory.id}/sites`), [territory.id]);
  const [picked, setPicked] = useState(null);
  return html`<h1>${t('sites.title')}</h1>
    <${SiteMap} territory=${territory} sites=${sites.data || []} onPick=${canDecide ? setPicked : null} />
    ${canDecide && html`<${NewSite} territory=${territory} picked=${picked} onAdded=${sites.reload} />`}
    <${Loading} state=${sites}>
      ${(list) =>
        list.length === 0
          ? html`<p data-testid="sites-none">${t('sites.none')}</p>`
          : html`<div class="table-wrap"><table data-testid="sites">
              <caption>${t('sites.count', { n: list.length })}</caption>
              <thead><tr>
                <th scope="col">${t('sites.name')}</th><th scope="col">${t('sites.position')}</th>
                <th scope="col">${t('sites.state')}</th><th scope="col"><span class="visually-hidden">${t('sites.actions')}</span></th>
              </tr></thead>
              <tbody>
                ${list.map(
                  (site) => html`<${SiteRow} key=${site.id} territory=${territory} site=${site} canDecide=${canDecide} onChanged=${sites.reload} />`,
                )}
              </tbody>
            </table></div>`}
    <//>`;
}
