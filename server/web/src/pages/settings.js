// A territory's settings, for its coordinators (régie auditors read them):
// the duplicate window, the hourly rates with their dates, the sensitive
// species and how far their positions are generalised in exports, and the
// species list (a TAXREF-style file, previewed before it is applied).
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t, formatDate, formatEuros, formatNumber } from '../i18n.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

function ReviewSettings({ territory, canDecide }) {
  const base = `/api/territories/${territory.id}/review/settings`;
  const settings = useLoad(() => api.get(base), [territory.id]);
  const [outcome, setOutcome] = useState(null);
  async function save(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const number = (name) => Number(String(form.get(name)).replace(',', '.'));
    const saved = await attempt(
      setOutcome,
      () => api.put(base, { duplicateDistanceM: number('distance'), duplicateWindowHours: number('window') }),
      t('common.done'),
    );
    if (saved) settings.reload();
  }
  return html`<section aria-labelledby="dup-title">
    <h2 id="dup-title">${t('settings.duplicates')}</h2>
    <${Loading} state=${settings}>
      ${(s) =>
        canDecide
          ? html`<form onSubmit=${save} data-testid="duplicate-settings">
              <label for="dup-distance">${t('settings.distance')}</label>
              <input id="dup-distance" name="distance" inputmode="decimal" value=${s.duplicateDistanceM} />
              <label for="dup-window">${t('settings.window')}</label>
              <input id="dup-window" name="window" inputmode="decimal" value=${s.duplicateWindowHours} />
              <${Outcome} outcome=${outcome} />
              <button type="submit">${t('settings.save')}</button>
            </form>`
          : html`<dl class="detail" data-testid="duplicate-settings">
              <dt>${t('settings.distance')}</dt><dd>${formatNumber(s.duplicateDistanceM, 1)}</dd>
              <dt>${t('settings.window')}</dt><dd>${formatNumber(s.duplicateWindowHours, 2)}</dd>
            </dl>`}
    <//>
  </section>`;
}

function HourlyRates({ territory, canDecide }) {
  const base = `/api/territories/${territory.id}/hourly-rates`;
  const rates = useLoad(() => api.get(base), [territory.id]);
  const [outcome, setOutcome] = useState(null);
  async function add(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const from = form.get('from');
    const body = { euroPerHour: String(form.get('rate')).trim(), basis: form.get('basis') };
    const note = String(form.get('note')).trim();
    if (note) body.note = note;
    if (await attempt(setOutcome, () => api.put(`${base}/${from}`, body), t('common.done'))) rates.reload();
  }
  return html`<section aria-labelledby="rates-title">
    <h2 id="rates-title">${t('settings.rates')}</h2>
    <${Loading} state=${rates}>
      ${(list) => html`<table data-testid="hourly-rates">
        <thead><tr><th scope="col">${t('settings.from')}</th><th scope="col">${t('settings.rate')}</th><th scope="col">${t('settings.basis')}</th><th scope="col">${t('settings.note')}</th></tr></thead>
        <tbody>
          ${list.map(
            (rate) => html`<tr>
              <td>${formatDate(rate.effectiveFrom)}</td>
              <td>${formatEuros(rate.centsPerHour)}</td>
              <td>${t('settings.basis.' + rate.basis)}</td>
              <td>${rate.note || ''}</td>
            </tr>`,
          )}
        </tbody>
      </table>`}
    <//>
    ${canDecide &&
    html`<form onSubmit=${add} data-testid="rate-form">
      <label for="rate-from">${t('settings.from')}</label>
      <input id="rate-from" name="from" type="date" required />
      <label for="rate-amount">${t('settings.rateInput')}</label>
      <input id="rate-amount" name="rate" inputmode="decimal" required placeholder="11,88" />
      <label for="rate-basis">${t('settings.basis')}</label>
      <select id="rate-basis" name="basis">
        <option value="smic">${t('settings.basis.smic')}</option>
        <option value="set">${t('settings.basis.set')}</option>
      </select>
      <label for="rate-note">${t('settings.note')}</label>
      <input id="rate-note" name="note" />
      <${Outcome} outcome=${outcome} />
      <button type="submit">${t('settings.addRate')}</button>
    </form>`}
  </section>`;
}

function SensitiveSpecies({ territory, canDecide }) {
  const base = `/api/territories/${territory.id}/export-settings`;
  const settings = useLoad(() => api.get(base), [territory.id]);
  const [outcome, setOutcome] = useState(null);
  async function put(next) {
    if (await attempt(setOutcome, () => api.put(base, next), t('common.done'))) settings.reload();
  }
  function add(current, event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const id = String(form.get('taxonId')).trim();
    const taxon = { scientificName: String(form.get('name')).trim() };
    if (id) taxon.taxonId = Number(id);
    put({ ...current, sensitiveTaxa: [...current.sensitiveTaxa, taxon] });
  }
  return html`<section aria-labelledby="sensitive-title">
    <h2 id="sensitive-title">${t('settings.sensitive')}</h2>
    <${Loading} state=${settings}>
      ${(s) => html`<div>
        ${canDecide
          ? html`<label for="sensitive-grid">${t('settings.grid')}</label>
              <select id="sensitive-grid" value=${s.sensitiveGridMetres}
                onChange=${(e) => put({ ...s, sensitiveGridMetres: Number(e.currentTarget.value) })}>
                ${[1000, 2000, 5000, 10000].map((m) => html`<option value=${m}>${m / 1000} km</option>`)}
              </select>`
          : html`<p>${t('settings.grid')} : ${s.sensitiveGridMetres / 1000} km</p>`}
        <ul data-testid="sensitive-taxa">
          ${s.sensitiveTaxa.map(
            (taxon, i) => html`<li>
              <em>${taxon.scientificName}</em>${taxon.taxonId ? ` (${taxon.taxonId})` : ''}
              ${canDecide &&
              html`<button type="button" onClick=${() => put({ ...s, sensitiveTaxa: s.sensitiveTaxa.filter((_, j) => j !== i) })}>
                ${t('settings.remove')}</button>`}
            </li>`,
          )}
        </ul>
        ${canDecide &&
        html`<form onSubmit=${(e) => add(s, e)} data-testid="sensitive-form">
          <label for="sensitive-name">${t('settings.scientificName')}</label>
          <input id="sensitive-name" name="name" required />
          <label for="sensitive-id">${t('settings.taxonId')}</label>
          <input id="sensitive-id" name="taxonId" inputmode="numeric" />
          <button type="submit">${t('settings.addSensitive')}</button>
        </form>`}
        <${Outcome} outcome=${outcome} />
      </div>`}
    <//>
  </section>`;
}

async function sendList(territoryId, path, method, file) {
  const response = await api.request(`/api/territories/${territoryId}/${path}`, {
    method,
    headers: { 'Content-Type': 'text/csv' },
    body: file,
  });
  if (!response.ok) throw await api.ApiError.of(response);
  return response.json();
}

/** The rows of a previewed file that cannot be imported, by line and column. */
function ListProblems({ preview }) {
  const total = preview.problems.length + preview.unlistedProblems;
  return html`<div role="alert" class="error" data-testid="species-problems">
    <p>${t('settings.problems', { n: total })}</p>
    <table>
      <thead><tr><th scope="col">${t('settings.line')}</th><th scope="col">${t('settings.column')}</th><th scope="col">${t('settings.problem')}</th></tr></thead>
      <tbody>
        ${preview.problems.map(
          (problem) => html`<tr>
            <td>${problem.line}</td>
            <td>${problem.column || '—'}</td>
            <td lang="en">${problem.message}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${preview.unlistedProblems > 0 && html`<p>${t('settings.moreProblems', { n: preview.unlistedProblems })}</p>`}
  </div>`;
}

function SpeciesList({ territory, canDecide }) {
  const list = useLoad(() => api.get(`/api/territories/${territory.id}/species-list`), [territory.id]);
  const [file, setFile] = useState(null);
  const [preview, setPreview] = useState(null);
  const [outcome, setOutcome] = useState(null);
  async function check(event) {
    event.preventDefault();
    setPreview(await attempt(setOutcome, () => sendList(territory.id, 'species-list/preview', 'POST', file), t('settings.previewed')));
  }
  async function apply() {
    const done = await attempt(
      setOutcome,
      () => sendList(territory.id, 'species-list', 'PUT', file),
      (result) => t('settings.imported', { n: result.species }),
    );
    if (done) {
      setPreview(null);
      list.reload();
    }
  }
  const names = (key) =>
    html`<li>${t('settings.' + key, { n: preview[key].length })}${preview[key].length
        ? html`: <span data-testid=${'preview-' + key}>${preview[key].slice(0, 50).join(', ')}${preview[key].length > 50 ? ' …' : ''}</span>`
        : ''}</li>`;
  return html`<section aria-labelledby="species-title">
    <h2 id="species-title">${t('settings.species')}</h2>
    <${Loading} state=${list}>
      ${(l) => html`<p data-testid="species-count">${t('settings.speciesHeld', { n: l.species })}</p>`}
    <//>
    ${canDecide &&
    html`<form onSubmit=${check} data-testid="species-form">
      <label for="species-file">${t('settings.speciesFile')}</label>
      <input id="species-file" type="file" accept=".csv,.tsv,.txt,text/csv" required
        onChange=${(e) => { setFile(e.currentTarget.files[0] || null); setPreview(null); }} />
      <button type="submit">${t('settings.preview')}</button>
      <${Outcome} outcome=${outcome} />
      ${preview && preview.problems.length > 0 && html`<${ListProblems} preview=${preview} />`}
      ${preview &&
      html`<div data-testid="species-preview">
        <ul>${names('added')}${names('changed')}${names('removed')}</ul>
        ${preview.problems.length === 0 &&
        html`<button type="button" class="primary" onClick=${apply}>${t('settings.apply', { n: preview.species })}</button>`}
      </div>`}
    </form>`}
  </section>`;
}

export function Settings(props) {
  return html`<h1>${t('settings.title')}</h1>
    <${ReviewSettings} ...${props} />
    <${HourlyRates} ...${props} />
    <${SensitiveSpecies} ...${props} />
    <${SpeciesList} ...${props} />`;
}
