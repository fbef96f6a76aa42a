import { html } from 'htm/preact';
import * as api from '../../shared/api.js';
import { t, formatDate, formatNumber } from '../i18n.js';
import { useLive } from '../live.js';
import { Loading, recordTitle, statusLabel, useLoad } from '../ui.js';

const STATUS_ORDER = {
  sightings: ['0', '1', '2', '3', '4', '5', '6'],
  degradationReports: ['received', 'under_analysis', 'action_taken', 'closed'],
  timesheetEntries: ['pending', 'approved', 'returned'],
};
const STATUS_KEY = { sightings: 'status.', degradationReports: 'followup.', timesheetEntries: 'approval.' };
const KIND_OF = { sightings: 'sighting', degradationReports: 'degradation_report', timesheetEntries: 'timesheet_entry' };

async function loadDashboard(territoryId) {
  const base = `/api/territories/${territoryId}/review`;
  const [counts, duplicates, ...latest] = await Promise.all([
    api.get(`${base}/counts`),
    api.get(`${base}/duplicates`, { limit: 50 }),
    ...Object.values(KIND_OF).map((kind) => api.get(`${base}/records`, { kind, limit: 5 })),
  ]);
  const activity = latest
    .flatMap((page) => page.items)
    .sort((a, b) => (b.modifiedAt || '').localeCompare(a.modifiedAt || ''))
    .slice(0, 8);
  return { counts, duplicates, activity };
}

export function Dashboard({ territory }) {
  const state = useLoad(() => loadDashboard(territory.id), [territory.id]);
  useLive(null, state.reload);
  return html`<h1>${t('dash.title', { name: territory.name })}</h1>
    <${Loading} state=${state}>
      ${({ counts, duplicates, activity }) => {
        const hours = counts.timesheetEntries;
        const pendingMinutes = (hours.minutesByStatus && hours.minutesByStatus.pending) || 0;
        const openConflicts =
          counts.sightings.conflicts + counts.degradationReports.conflicts + hours.conflicts;
        const duplicateCount = `${duplicates.items.length}${duplicates.nextCursor ? '+' : ''}`;
        return html`
          <section class="tiles" aria-label=${t('dash.byStatus')}>
            <a class="tile" href=${`#/t/${territory.id}/conflicts`} data-testid="tile-conflicts">
              <span class="figure">${formatNumber(openConflicts)}</span>${t('dash.conflicts')}
            </a>
            <a class="tile" href=${`#/t/${territory.id}/duplicates`} data-testid="tile-duplicates">
              <span class="figure">${duplicateCount}</span>${t('dash.duplicates')}
            </a>
            <a class="tile" href=${`#/t/${territory.id}/hours`} data-testid="tile-pending-hours">
              <span class="figure">${formatNumber(pendingMinutes / 60, 1)} h</span>${t('dash.pendingHours')}
            </a>
            <a class="tile" href=${`#/t/${territory.id}/invalid`} data-testid="tile-invalid">
              <span class="figure">${formatNumber(counts.invalidRecords)}</span>${t('dash.invalid')}
            </a>
          </section>
          <div class="columns">
            ${Object.keys(STATUS_ORDER).map(
              (key) => html`<section class="panel" data-testid=${'counts-' + KIND_OF[key]}>
                <h2>${t('kind.' + KIND_OF[key])}</h2>
                <p class="total">
                  ${t('common.total')} : <strong data-testid=${'total-' + KIND_OF[key]}>${formatNumber(counts[key].total)}</strong>
                </p>
                <table class="compact">
                  <caption class="visually-hidden">${t('dash.byStatus')}</caption>
                  <tbody>
                    ${STATUS_ORDER[key].map(
                      (status) => html`<tr>
                        <th scope="row">${t(STATUS_KEY[key] + status)}</th>
                        <td>${formatNumber(counts[key].byStatus[status] || 0)}</td>
                      </tr>`,
                    )}
                  </tbody>
                </table>
              </section>`,
            )}
          </div>
          <section class="panel">
            <h2>${t('dash.latest')}</h2>
            ${activity.length === 0
              ? html`<p>${t('common.none')}</p>`
              : html`<ul class="activity" data-testid="latest-activity">
                  ${activity.map(
                    (record) => html`<li>
                      <a href=${`#/t/${territory.id}/record/${record.id}`}>${recordTitle(record)}</a>
                      — ${record.authorName || t('common.unknown')}, ${formatDate(record.modifiedAt)} ·
                      ${statusLabel(record)}
                    </li>`,
                  )}
                </ul>`}
          </section>
        `;
      }}
    <//>`;
}
