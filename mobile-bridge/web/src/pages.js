// The pages: enrolment, the volunteer's records (home), editing one, settings.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, has, errorText, formatDate, setLanguage, language } from './i18n.js';
import { useValue } from '../../../server/web/shared/state.js';
import * as api from '../../../server/web/shared/api.js';
import * as session from './session.js';
import { notebook, marks, review, status, recordsOf, findRecord, reconnect } from './sync.js';
import { waiting, kick } from './photos.js';
import { startScan } from './scan.js';
import { SightingForm, DegradationForm, TimesheetForm } from './forms.js';
import { speciesList } from './sync.js';

export function Enrol() {
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [busy, setBusy] = useState(false);
  const [scanning, setScanning] = useState(false);
  const video = useRef(null);
  const stopScan = useRef(null);

  useEffect(() => () => stopScan.current && stopScan.current(), []);

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    if (!code.trim() || !name.trim()) {
      setError(t('form.errors') + ' ' + [!code.trim() && t('enrol.code'), !name.trim() && t('enrol.deviceName')].filter(Boolean).join(', '));
      return;
    }
    if (!navigator.onLine) {
      setError(t('enrol.offline'));
      return;
    }
    setBusy(true);
    try {
      await session.enrol(code, name);
      location.hash = '#/';
    } catch (err) {
      const reason = errorText(err);
      setError(t('enrol.failed', { reason }));
    } finally {
      setBusy(false);
    }
  };

  const toggleScan = async () => {
    if (scanning) {
      stopScan.current && stopScan.current();
      setScanning(false);
      return;
    }
    setScanning(true);
    setNote(null);
    stopScan.current = await startScan(
      video.current,
      (payload) => {
        setScanning(false);
        setCode(payload.code);
        if (payload.server && new URL(payload.server, location.href).origin !== location.origin) {
          setNote(t('enrol.otherServer', { server: payload.server }));
        } else {
          setNote(t('enrol.scanned', { code: payload.code }));
        }
      },
      (reason) => {
        setScanning(false);
        setNote(t('enrol.scanFailed', { reason }));
      },
    );
  };

  return html`<section class="enrol">
    <h1>${t('enrol.title')}</h1>
    <p>${t('enrol.intro')}</p>
    <form onSubmit=${submit} data-testid="enrol-form" novalidate>
      <div class="field">
        <label for="enrol-code">${t('enrol.code')} <span class="req">${t('form.required')}</span></label>
        <input id="enrol-code" name="code" type="text" autocomplete="one-time-code" autocapitalize="characters"
          spellcheck=${false} required value=${code} data-testid="enrol-code" onInput=${(e) => setCode(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="enrol-device">${t('enrol.deviceName')} <span class="req">${t('form.required')}</span></label>
        <input id="enrol-device" name="deviceName" type="text" maxlength="200" required aria-describedby="enrol-device-hint"
          value=${name} data-testid="enrol-device-name" onInput=${(e) => setName(e.currentTarget.value)} />
        <p class="hint" id="enrol-device-hint">${t('enrol.deviceNameHint')}</p>
      </div>
      ${error ? html`<p role="alert" class="error" data-testid="enrol-error">${error}</p>` : null}
      <button type="submit" class="primary big" disabled=${busy} data-testid="enrol-submit">
        ${busy ? t('enrol.working') : t('enrol.submit')}
      </button>
    </form>
    <div class="scan">
      <button type="button" class="big" onClick=${toggleScan} aria-pressed=${scanning ? 'true' : 'false'} data-testid="enrol-scan">
        ${scanning ? t('enrol.scanStop') : t('enrol.scan')}
      </button>
      <video ref=${video} muted playsinline hidden=${!scanning} aria-label=${t('enrol.scanHint')}></video>
      ${scanning ? html`<p class="hint">${t('enrol.scanHint')}</p>` : null}
      ${note ? html`<p role="status" data-testid="enrol-note">${note}</p>` : null}
    </div>
  </section>`;
}

const DECISION_PREFIX = { verification: 'status.', followUp: 'followup.', approval: 'approval.', duplicate: 'duplicate.' };

/** The coordinators' decisions on a record, as sentences. */
export function decisionTexts(decision) {
  if (!decision) return [];
  const out = [];
  for (const key of ['verification', 'followUp', 'approval', 'duplicate']) {
    const d = decision[key];
    if (!d || !d.status) continue;
    const statusKey = DECISION_PREFIX[key] + d.status;
    let statusText = has(statusKey) ? t(statusKey) : String(d.status);
    let reasonShown = false;
    if (key === 'approval' && d.status === 'approved') statusText = t('decision.validated');
    if (key === 'approval' && d.status === 'returned' && d.reason) {
      statusText = t('decision.returned', { reason: d.reason });
      reasonShown = true;
    }
    let text = t(`decision.${key}`, { status: statusText });
    if (d.reason && !reasonShown) text += t('decision.reason', { reason: d.reason });
    if (d.decidedBy || d.decidedAt) text += t('decision.by', { who: d.decidedBy || '', when: formatDate(d.decidedAt) });
    out.push({ key, status: String(d.status), text });
  }
  return out;
}

function titleOf(kind, r) {
  if (kind === 'sighting') {
    const name = r.vernacularName ? `${r.vernacularName} (${r.scientificName})` : r.scientificName || '?';
    return r.individualCount != null ? `${name} — ${t('record.count', { n: r.individualCount })}` : name;
  }
  if (kind === 'degradation_report') return has(`category.${r.category}`) ? t(`category.${r.category}`) : String(r.category || '?');
  const minutes = r.durationMinutes ?? (r.startedAt && r.endedAt ? Math.floor((Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 60000) : null);
  const activity = has(`activity.${r.activity}`) ? t(`activity.${r.activity}`) : String(r.activity || '?');
  return minutes != null ? `${activity} — ${t('record.minutes', { n: minutes })}` : activity;
}

function dateOf(kind, r) {
  return kind === 'sighting' ? r.eventDate : kind === 'degradation_report' ? r.observedAt : r.workDate;
}

/** The form's label for a record field the server named (its own name kept beside it). */
const FIELD_LABELS = {
  scientificName: 'field.species',
  vernacularName: 'field.species',
  taxonID: 'field.species',
  individualCount: 'field.count',
  decimalLatitude: 'field.position',
  decimalLongitude: 'field.position',
  coordinateUncertaintyInMeters: 'field.position',
  eventDate: 'field.eventDate',
  observedAt: 'field.observedAt',
  recordedBy: 'field.recordedBy',
  site: 'field.site',
  notes: 'field.notes',
  category: 'field.category',
  categoryDetail: 'field.categoryDetail',
  description: 'field.description',
  activity: 'field.activity',
  workDate: 'field.workDate',
  durationMinutes: 'field.duration',
  photos: 'field.photos',
};

function fieldLabel(name) {
  const key = FIELD_LABELS[name];
  return key ? `${t(key)} (${name})` : name;
}

function RecordRow({ kind, id, record, mark, decision, problems }) {
  const synced = mark ? !!mark.syncedAt : true;
  const decisions = decisionTexts(decision);
  return html`<li class="record" data-testid="record-row" data-record-id=${id} data-record-kind=${kind}
      data-sync-state=${synced ? 'synced' : 'pending'}>
    <div class="record-head">
      <span class="kind">${t(`kind.${kind}`)}</span>
      <span class=${'badge ' + (synced ? 'ok' : 'wait')} data-testid="record-sync">
        ${synced ? (mark && mark.syncedAt ? t('record.synced', { when: formatDate(mark.syncedAt) }) : t('record.syncedNoTime')) : t('record.pending')}
      </span>
    </div>
    <p class="record-title">${titleOf(kind, record)}</p>
    <p class="record-date">${formatDate(dateOf(kind, record), kind !== 'timesheet_entry')}
      ${record.photos && record.photos.length ? ` · ${t('record.photos', { n: record.photos.length })}` : ''}</p>
    ${decisions.map((d) => html`<p class=${'decision ' + d.key} data-testid="decision" data-decision=${d.key} data-status=${d.status}>${d.text}</p>`)}
    <a class="button" href=${`#/edit/${id}`} data-testid="edit-record">
      ${problems && problems.length ? t('record.fix') : t('record.edit')}
    </a>
  </li>`;
}

export function Home() {
  const doc = useValue(notebook);
  const allMarks = useValue(marks);
  const reviewDoc = useValue(review);
  const invalid = useValue(session.invalid);
  const { me, territory } = useValue(session.profile);
  const [flash, setFlash] = useState(() => {
    const f = sessionStorage.getItem('fieldnotes.flash');
    sessionStorage.removeItem('fieldnotes.flash');
    return f;
  });
  useEffect(() => {
    if (!flash) return;
    const timer = setTimeout(() => setFlash(null), 6000);
    return () => clearTimeout(timer);
  }, [flash]);

  const decisions = (reviewDoc && reviewDoc.decisions) || {};
  const problemsOf = {};
  for (const row of invalid) problemsOf[row.recordKey] = row.problems || [];
  const rows = [];
  for (const kind of ['sighting', 'degradation_report', 'timesheet_entry']) {
    for (const [id, record] of Object.entries(recordsOf(doc, kind))) {
      if (record && typeof record === 'object') rows.push({ kind, id, record });
    }
  }
  rows.sort((a, b) => String(b.record.modifiedAt || '').localeCompare(String(a.record.modifiedAt || '')));

  return html`<section class="home">
    ${flash ? html`<p role="status" class="success" data-testid="flash">${flash}</p>` : null}
    <h1>${me ? t('home.hello', { name: me.displayName }) : t('app.name')}</h1>
    ${territory ? html`<p class="muted">${t('home.territory', { name: territory.name })}</p>` : null}
    <nav class="new" aria-label=${t('home.new')}>
      <a class="button primary big" href="#/new/sighting" data-testid="new-sighting">${t('nav.sighting')}</a>
      <a class="button big" href="#/new/degradation_report" data-testid="new-degradation">${t('nav.degradation')}</a>
      <a class="button big" href="#/new/timesheet_entry" data-testid="new-timesheet">${t('nav.timesheet')}</a>
    </nav>
    ${invalid.length
      ? html`<section class="invalid" data-testid="invalid-records" aria-labelledby="invalid-title">
          <h2 id="invalid-title">${t('home.invalid')}</h2>
          <p>${t('home.invalidIntro')}</p>
          <ul class="records">
            ${invalid.map((row) => {
              const local = findRecord(doc, row.recordKey);
              const kind = local ? local.kind : row.kind;
              return html`<li class="record invalid-record" key=${row.recordKey} data-testid="invalid-record" data-record-id=${row.recordKey}>
                <p class="record-title">${t(`kind.${kind}`)} — ${titleOf(kind, local ? local.record : row.raw || {})}</p>
                <ul class="problems">${(row.problems || []).map(
                  (p) => html`<li class="error" data-testid="invalid-problem" data-field=${p.field}>${t('record.problem', { field: fieldLabel(p.field), reason: p.reason })}</li>`,
                )}</ul>
                <a class="button primary" href=${`#/edit/${row.recordKey}`} data-testid="fix-record">${t('record.fix')}</a>
              </li>`;
            })}
          </ul>
        </section>`
      : null}
    <h2>${t('home.records')}</h2>
    ${rows.length
      ? html`<ul class="records" data-testid="records">
          ${rows.map(
            ({ kind, id, record }) => html`<${RecordRow} key=${id} kind=${kind} id=${id} record=${record}
              mark=${allMarks[id]} decision=${decisions[id]} problems=${problemsOf[id]} />`,
          )}
        </ul>`
      : html`<p data-testid="no-records">${t('home.empty')}</p>`}
  </section>`;
}

export function NewRecord({ kind }) {
  if (kind === 'sighting') return html`<${SightingForm} />`;
  if (kind === 'degradation_report') return html`<${DegradationForm} />`;
  return html`<${TimesheetForm} />`;
}

export function EditRecord({ id }) {
  const doc = useValue(notebook);
  const found = findRecord(doc, id);
  if (!found) return html`<p role="alert">${t('record.notFound')}</p>`;
  const props = { id, existing: found.record, key: id };
  if (found.kind === 'sighting') return html`<${SightingForm} ...${props} />`;
  if (found.kind === 'degradation_report') return html`<${DegradationForm} ...${props} />`;
  return html`<${TimesheetForm} ...${props} />`;
}

/**
 * Saves what the server holds about this person (`GET /api/me/data`) as a
 * file: fetched with the phone's credential, handed to the browser as a blob.
 */
async function downloadMyData() {
  const response = await api.request('/api/me/data');
  if (!response.ok) throw await api.ApiError.of(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = 'fieldnotes-my-data.json';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export function Settings() {
  const who = useValue(session.enrolment);
  const { me } = useValue(session.profile);
  const s = useValue(status);
  const photos = useValue(waiting);
  const species = useValue(speciesList);
  const lang = useValue(language);
  const [version, setVersion] = useState('');
  const [message, setMessage] = useState(null);
  useEffect(() => {
    const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (!sw) return;
    const channel = new MessageChannel();
    channel.port1.onmessage = (e) => setVersion(String(e.data));
    sw.postMessage('version', [channel.port2]);
  }, []);
  const forget = () => {
    if (s.pending || photos) {
      setMessage(t('settings.forgetBlocked'));
      return;
    }
    if (confirm(t('settings.forgetConfirm'))) session.forget();
  };
  return html`<section class="settings">
    <h1>${t('settings.title')}</h1>
    <p>${t('settings.device', { name: who.deviceName || who.deviceId })}</p>
    ${me ? html`<p>${t('settings.account', { name: me.displayName })}</p>` : null}
    <p>${species && species.species ? t('field.speciesCount', { n: Object.keys(species.species).length }) : t('field.speciesListEmpty')}</p>
    ${version ? html`<p>${t('settings.build', { version })}</p>` : null}
    <div class="actions">
      <button type="button" class="big" onClick=${() => {
        reconnect();
        kick();
        session.refresh();
      }} data-testid="sync-now">${t('settings.syncNow')}</button>
      <button type="button" class="big" lang=${lang === 'fr' ? 'en' : 'fr'} onClick=${() => setLanguage(lang === 'fr' ? 'en' : 'fr')} data-testid="language-switch">
        ${t('lang.switch')}
      </button>
      <button type="button" class="big" data-testid="my-data" onClick=${() => {
        setMessage(null);
        downloadMyData().catch((error) => setMessage(t('settings.myDataFailed', { reason: errorText(error) })));
      }}>${t('settings.myData')}</button>
      <button type="button" class="big danger" onClick=${forget}>${t('settings.forget')}</button>
    </div>
    ${message ? html`<p role="alert" class="error">${message}</p>` : null}
  </section>`;
}
