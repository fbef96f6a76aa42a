// The exports a régie or coordinator downloads: the territory's sightings as
// a Darwin Core Archive, GeoJSON, CSV or SINP CSV, with the validation
// statuses chosen (certain and probable by default, as the server does).
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { t, formatNumber } from '../i18n.js';
import { download } from '../download.js';
import { Outcome } from '../ui.js';

const STATUSES = ['0', '1', '2', '3', '4', '5', '6'];
const DEFAULT_STATUSES = ['1', '2'];
const FORMATS = [
  ['dwca', 'darwin-core-archive', 'darwin-core-archive.zip'],
  ['geojson', 'sightings.geojson', 'sightings.geojson'],
  ['csv', 'sightings.csv', 'sightings.csv'],
  ['sinp', 'sinp.csv', 'sinp.csv'],
];

export function Exports({ territory }) {
  const [statuses, setStatuses] = useState(DEFAULT_STATUSES);
  const [busy, setBusy] = useState(null);
  const [outcome, setOutcome] = useState(null);
  function toggle(status, on) {
    setStatuses(on ? [...statuses, status].sort() : statuses.filter((s) => s !== status));
  }
  async function fetchFile(key, path, fallback) {
    setBusy(key);
    setOutcome(null);
    try {
      const query = new URLSearchParams({ validation: statuses.join(',') });
      const file = await download(`/api/territories/${territory.id}/exports/${path}?${query}`, fallback);
      setOutcome({ message: t('exports.downloaded', { file: file.name, size: formatNumber(file.size) }) });
    } catch (error) {
      setOutcome({ error: error.message });
    } finally {
      setBusy(null);
    }
  }
  return html`<h1>${t('exports.title')}</h1>
    <p>${t('exports.intro')}</p>
    <fieldset class="panel statuses" data-testid="export-statuses">
      <legend>${t('exports.statuses')}</legend>
      ${STATUSES.map(
        (status) => html`<label class="check">
          <input type="checkbox" name="validation" value=${status} checked=${statuses.includes(status)}
            onChange=${(e) => toggle(status, e.target.checked)} />
          ${t('status.' + status)}
        </label>`,
      )}
    </fieldset>
    ${statuses.length === 0 && html`<p class="notice" role="note">${t('exports.noStatus')}</p>`}
    <h2>${t('exports.download')}</h2>
    <ul class="downloads">
      ${FORMATS.map(
        ([key, path, fallback]) => html`<li>
          <button type="button" class="primary" data-export=${key} disabled=${busy !== null || statuses.length === 0}
            onClick=${() => fetchFile(key, path, fallback)}>
            ${t('exports.' + key)}
          </button>
        </li>`,
      )}
    </ul>
    ${busy && html`<p role="status" aria-busy="true">${t('exports.downloading')}</p>`}
    <${Outcome} outcome=${outcome} />`;
}
