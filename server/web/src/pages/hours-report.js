// The volunteer-hours report a régie gives funders: choose a period, issue
// it (the server keeps it as issued, with its hash), read its totals by
// volunteer, activity, site and month with their value in euros, print it
// (A4: the print stylesheet keeps only the report, the hash on it) or
// download it as CSV; and the reports issued before, each shown again from
// the server's copy.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { useValue } from '../../shared/state.js';
import { language, t, formatDate, formatNumber } from '../i18n.js';
import { download } from '../download.js';
import { Loading, Outcome, attempt, useLoad } from '../ui.js';

const locale = () => (language.get() === 'fr' ? 'fr-FR' : 'en-GB');

/** "41.58" (the report's euros) in the page's language: "41,58 €". */
function euros(amount) {
  return new Intl.NumberFormat(locale(), { style: 'currency', currency: 'EUR' }).format(Number(amount));
}

/** "3.50" (the report's hours) in the page's language: "3,50". */
function hours(amount) {
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(Number(amount));
}

/** A calendar day (`YYYY-MM-DD`) in the page's language, read as a local day. */
function day(value) {
  return value ? formatDate(`${value}T00:00:00`, false) : '';
}

/** A month (`YYYY-MM`) in words: "décembre 2026". */
function month(value) {
  const date = new Date(`${value}-01T00:00:00`);
  if (Number.isNaN(date.getTime())) return value;
  return new Intl.DateTimeFormat(locale(), { month: 'long', year: 'numeric' }).format(date);
}

function isoDay(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function TotalsTable({ id, title, head, rows, label }) {
  return html`<section aria-labelledby=${id}>
    <h2 id=${id}>${title}</h2>
    <table class="report-table" data-testid=${id}>
      <thead>
        <tr>
          <th scope="col">${head}</th>
          <th scope="col" class="num">${t('hreport.entries')}</th>
          <th scope="col" class="num">${t('hreport.hours')}</th>
          <th scope="col" class="num">${t('hreport.value')}</th>
        </tr>
      </thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td colspan="4">${t('common.none')}</td></tr>`}
        ${rows.map(
          (row) => html`<tr>
            <th scope="row">${label(row)}</th>
            <td class="num">${formatNumber(row.entries)}</td>
            <td class="num">${hours(row.hours)}</td>
            <td class="num">${euros(row.euros)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

function EntriesTable({ id, title, entries }) {
  return html`<section aria-labelledby=${id}>
    <h2 id=${id}>${title}</h2>
    <table class="report-table">
      <thead>
        <tr>
          <th scope="col">${t('hreport.date')}</th>
          <th scope="col">${t('hreport.volunteer')}</th>
          <th scope="col">${t('hreport.activity')}</th>
          <th scope="col" class="num">${t('hreport.hours')}</th>
          <th scope="col">${t('hreport.reason')}</th>
        </tr>
      </thead>
      <tbody>
        ${entries.length === 0 && html`<tr><td colspan="5">${t('common.none')}</td></tr>`}
        ${entries.map(
          (e) => html`<tr>
            <td>${day(e.workDate)}</td>
            <td>${e.volunteer}</td>
            <td>${t('activity.' + e.activity)}</td>
            <td class="num">${hours(e.minutes / 60)}</td>
            <td>${e.reason || ''}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

/** The report as issued, in the page's language: what prints. */
function Report({ sha256, report, territoryId }) {
  const approved = report.approved;
  const checkPath = `GET /api/territories/${territoryId}/reports/hours/${sha256}`;
  return html`<article class="printable" data-testid="hours-report" aria-labelledby="report-title">
    <h1 id="report-title">${t('hreport.heading', { territory: report.territory.name })}</h1>
    <p>
      ${t('hreport.periodLine', {
        from: day(report.period.from),
        to: day(report.period.to),
        at: formatDate(report.issuedAt),
        by: report.issuedBy.name || report.issuedBy.id,
      })}
    </p>
    <p data-testid="report-approved">
      <strong>${t('hreport.approved', {
        entries: formatNumber(approved.entries),
        hours: hours(approved.hours),
        euros: euros(approved.euros),
      })}</strong>
      ${approved.unvaluedMinutes > 0 && html` ${t('hreport.unvalued', { hours: hours(approved.unvaluedMinutes / 60) })}`}
    </p>
    <h2>${t('hreport.rates')}</h2>
    <ul>
      ${report.rates.length === 0 && html`<li>${t('hreport.noRate')}</li>`}
      ${report.rates.map(
        (rate) => html`<li>
          ${t('hreport.rateLine', {
            from: day(rate.effectiveFrom),
            euros: euros(rate.euroPerHour),
            basis: t('hreport.basis.' + rate.basis),
          })}${rate.note ? ` — ${rate.note}` : ''}
        </li>`,
      )}
    </ul>
    <${TotalsTable} id="by-volunteer" title=${t('hreport.byVolunteer')} head=${t('hreport.volunteer')}
      rows=${report.byVolunteer} label=${(r) => r.volunteer} />
    <${TotalsTable} id="by-activity" title=${t('hreport.byActivity')} head=${t('hreport.activity')}
      rows=${report.byActivity} label=${(r) => t('activity.' + r.activity)} />
    <${TotalsTable} id="by-site" title=${t('hreport.bySite')} head=${t('hreport.site')}
      rows=${report.bySite} label=${(r) => r.site || t('hreport.noSite')} />
    <${TotalsTable} id="by-month" title=${t('hreport.byMonth')} head=${t('hreport.month')}
      rows=${report.byMonth} label=${(r) => month(r.month)} />
    <${EntriesTable} id="pending" title=${t('hreport.pending')} entries=${report.pending.entries} />
    <${EntriesTable} id="returned" title=${t('hreport.returned')} entries=${report.returned.entries} />
    ${report.withUnresolvedConflicts.length > 0 &&
    html`<${EntriesTable} id="conflicted" title=${t('hreport.conflicts')} entries=${report.withUnresolvedConflicts} />`}
    <section class="check" aria-labelledby="check-title">
      <h2 id="check-title">${t('hreport.check')}</h2>
      <p>${t('hreport.sha')} : <code class="hash" data-testid="report-sha256">${sha256}</code></p>
      <p>${t('hreport.checkHow')}</p>
      <p><code class="hash" data-testid="report-check">${checkPath}</code></p>
      <p>${t('hreport.checkTrail')}</p>
    </section>
  </article>`;
}

export function HoursReport({ territory }) {
  useValue(language);
  const today = new Date();
  const [period, setPeriod] = useState({
    from: isoDay(new Date(today.getFullYear(), today.getMonth(), 1)),
    to: isoDay(today),
  });
  const [shown, setShown] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const base = `/api/territories/${territory.id}/reports/hours`;
  const issued = useLoad(() => api.get(base), [territory.id]);
  async function issue(event) {
    event.preventDefault();
    const report = await attempt(setOutcome, () => api.post(base, period), t('hreport.issued'));
    if (report) {
      setShown(report);
      issued.reload();
    }
  }
  async function open(sha256) {
    const report = await attempt(setOutcome, () => api.get(`${base}/${sha256}`), '');
    if (report) {
      setOutcome(null);
      setShown(report);
    }
  }
  async function csv() {
    await attempt(setOutcome, () => download(`${base}/${shown.sha256}?format=csv`, 'volunteer-hours.csv'),
      (file) => t('exports.downloaded', { file: file.name, size: formatNumber(file.size) }));
  }
  return html`<div class="no-print">
      <h1>${t('hreport.title')}</h1>
      <p>${t('hreport.intro')}</p>
      <form class="filters" data-testid="issue-report" onSubmit=${issue}>
        <div>
          <label for="report-from">${t('hreport.from')}</label>
          <input id="report-from" type="date" required value=${period.from}
            onInput=${(e) => setPeriod({ ...period, from: e.target.value })} />
        </div>
        <div>
          <label for="report-to">${t('hreport.to')}</label>
          <input id="report-to" type="date" required value=${period.to}
            onInput=${(e) => setPeriod({ ...period, to: e.target.value })} />
        </div>
        <div class="filter-actions"><button type="submit" class="primary">${t('hreport.issue')}</button></div>
      </form>
      <${Outcome} outcome=${outcome} />
      ${shown &&
      html`<div class="actions">
        <button type="button" class="primary" data-testid="print-report" onClick=${() => window.print()}>${t('hreport.print')}</button>
        <button type="button" onClick=${csv}>${t('hreport.csv')}</button>
      </div>`}
    </div>
    ${shown && html`<${Report} key=${shown.sha256} sha256=${shown.sha256} report=${shown.report} territoryId=${territory.id} />`}
    <section class="no-print" aria-labelledby="issued-title">
      <h2 id="issued-title">${t('hreport.list')}</h2>
      <${Loading} state=${issued}>
        ${(reports) =>
          reports.length === 0
            ? html`<p>${t('hreport.listNone')}</p>`
            : html`<div class="table-wrap">
                <table data-testid="issued-reports">
                  <thead>
                    <tr>
                      <th scope="col">${t('hreport.period')}</th>
                      <th scope="col">${t('hreport.issuedAt')}</th>
                      <th scope="col">${t('hreport.issuedBy')}</th>
                      <th scope="col">${t('audit.hash')}</th>
                      <th scope="col"><span class="visually-hidden">${t('hreport.show')}</span></th>
                    </tr>
                  </thead>
                  <tbody>
                    ${reports.map(
                      (r) => html`<tr data-sha256=${r.sha256}>
                        <td>${day(r.periodFrom)} – ${day(r.periodTo)}</td>
                        <td>${formatDate(r.issuedAt)}</td>
                        <td>${r.issuedByName || r.issuedBy}</td>
                        <td><code>${r.sha256.slice(0, 16)}…</code></td>
                        <td>
                          <button type="button" aria-label=${`${t('hreport.show')} : ${day(r.periodFrom)} – ${day(r.periodTo)}`}
                            onClick=${() => open(r.sha256)}>${t('hreport.show')}</button>
                        </td>
                      </tr>`,
                    )}
                  </tbody>
                </table>
              </div>`}
      <//>
    </section>`;
}
