// The three record forms: sighting, degradation report, timesheet entry.
// Each builds the record as schemas/src/{sighting,degradation,timesheet}.rs
// define it (camelCase, RFC 3339 UTC dates, WGS84), checks on the phone what
// the server would refuse, and writes it into the notebook (sync.saveRecord).
// Editing an existing record prefills every field and writes only what
// changed, so a volunteer can fix a record the server listed as invalid.
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t, errorText, formatTime } from './i18n.js';
import { ACTIVITIES, CATEGORIES, bounds, maxLength } from '../../../server/web/shared/vocabulary.js';
import { useValue } from '../../../server/web/shared/state.js';
import { activeSites, enrolment, profile, invalid } from './session.js';
import { saveRecord } from './sync.js';
import { addPhoto, thumbnail } from './photos.js';
import { kv } from './idb.js';
import { SpeciesCombobox } from './species.js';
import { PositionField } from './position.js';

const MAX_PHOTOS = maxLength('sighting', 'photos');
const MINUTES = bounds('timesheet_entry', 'durationMinutes');

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** ISO → the value of a datetime-local input, in local time. */
function toLocalInput(iso) {
  const d = iso ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function fromLocalInput(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function today() {
  return toLocalInput(new Date().toISOString()).slice(0, 10);
}

/** Splits `fields` into what to set (defined values) and optional keys to delete. */
function split(fields) {
  const set = {};
  const removed = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null || value === '') removed.push(key);
    else set[key] = value;
  }
  return { set, removed };
}

function positionOf(record) {
  if (!record || typeof record.decimalLatitude !== 'number' || typeof record.decimalLongitude !== 'number') return null;
  return {
    lat: record.decimalLatitude,
    lon: record.decimalLongitude,
    accuracy: typeof record.coordinateUncertaintyInMeters === 'number' ? record.coordinateUncertaintyInMeters : null,
    source: 'record',
  };
}

/** Problems the server listed for this record, as `{ field: reason }`. */
function serverProblems(id) {
  const row = invalid.get().find((r) => r.recordKey === id);
  const out = {};
  for (const p of (row && row.problems) || []) out[p.field || '*'] = p.reason;
  return out;
}

function Field({ id, label, required, error, hint, children }) {
  return html`<div class=${'field' + (error ? ' has-error' : '')}>
    <label for=${id}>${label}${required ? html` <span class="req">${t('form.required')}</span>` : null}</label>
    ${children}
    ${hint ? html`<p class="hint" id=${`${id}-hint`}>${hint}</p>` : null}
    ${error ? html`<p class="error" id=${`${id}-error`} data-testid="field-error">${error}</p>` : null}
  </div>`;
}

function PhotoField({ photos, setPhotos, territoryId }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [thumbs, setThumbs] = useState({});
  useEffect(() => {
    let live = true;
    Promise.all(photos.map(async (sha) => [sha, await thumbnail(sha)])).then((pairs) => {
      if (live) setThumbs(Object.fromEntries(pairs));
    });
    return () => {
      live = false;
    };
  }, [photos.join(',')]);
  const onFile = async (e) => {
    const files = [...(e.currentTarget.files || [])];
    e.currentTarget.value = '';
    setBusy(true);
    setError(null);
    let next = [...photos];
    for (const file of files) {
      if (next.length >= MAX_PHOTOS) break;
      try {
        const { sha256 } = await addPhoto(file, territoryId);
        if (!next.includes(sha256)) next = [...next, sha256];
      } catch (err) {
        setError(t('field.photoFailed', { reason: err.message }));
      }
    }
    setPhotos(next);
    setBusy(false);
  };
  return html`<fieldset class="photos">
    <legend>${t('field.photos')}</legend>
    <ul class="thumbs">
      ${photos.map(
        (sha, i) => html`<li key=${sha} data-testid="photo-thumb" data-sha256=${sha}>
          ${thumbs[sha] ? html`<img src=${thumbs[sha]} alt=${t('field.photoAlt', { n: i + 1 })} width="96" height="96" />` : html`<span class="nothumb">${t('field.photoAlt', { n: i + 1 })}</span>`}
          <button type="button" class="small" aria-label=${t('field.removePhoto', { n: i + 1 })}
            onClick=${() => setPhotos(photos.filter((p) => p !== sha))}>✕</button>
        </li>`,
      )}
    </ul>
    <label class="button big file" for="photo-input">${t('field.addPhoto')}</label>
    <input id="photo-input" class="visually-hidden-file" type="file" accept="image/*" capture="environment" multiple
      data-testid="photo-input" onChange=${onFile} disabled=${busy || photos.length >= MAX_PHOTOS} />
    ${busy ? html`<p role="status">${t('field.photoProcessing')}</p>` : null}
    ${error ? html`<p role="alert" class="error">${error}</p>` : null}
  </fieldset>`;
}

// Only active sites are offered; a record that already names a deactivated
// one keeps it (it is shown first, as any name the list lacks).
function SiteSelect({ id, value, onChange }) {
  const { sites } = useValue(profile);
  const names = activeSites(sites).map((s) => s.name);
  const options = value && !names.includes(value) ? [value, ...names] : names;
  return html`<select id=${id} value=${value || ''} onChange=${(e) => onChange(e.currentTarget.value)} data-testid="site-select">
    <option value="">${t('field.siteNone')}</option>
    ${options.map((name) => html`<option value=${name}>${name}</option>`)}
  </select>`;
}

function Problems({ errors }) {
  const entries = Object.entries(errors);
  if (!entries.length) return null;
  return html`<div class="error-summary" role="alert" tabindex="-1" data-testid="form-errors">
    <p>${t('form.errors')}</p>
    <ul>${entries.map(([field, reason]) => html`<li>${t('record.problem', { field, reason })}</li>`)}</ul>
  </div>`;
}

/** The shell of a form: title, problems, save and cancel. */
function FormShell({ title, errors, onSubmit, testid, children, saving }) {
  return html`<form class="record-form" data-testid=${testid} novalidate onSubmit=${(e) => {
      e.preventDefault();
      onSubmit();
    }}>
    <h1>${title}</h1>
    <${Problems} errors=${errors} />
    ${children}
    <div class="actions">
      <button type="submit" class="primary big" data-testid="save-record" disabled=${saving}>${t('form.save')}</button>
      <a class="button big" href="#/">${t('form.cancel')}</a>
    </div>
  </form>`;
}

function meta(existing, id) {
  const who = enrolment.get();
  const now = new Date().toISOString();
  return {
    id,
    authorId: who.accountId,
    deviceId: existing?.deviceId || who.deviceId,
    createdAt: existing?.createdAt || now,
    modifiedAt: existing?.createdAt && existing.createdAt > now ? existing.createdAt : now,
  };
}

function positionFields(position) {
  return {
    decimalLatitude: position.lat,
    decimalLongitude: position.lon,
    coordinateUncertaintyInMeters: position.accuracy && position.accuracy > 0 ? position.accuracy : null,
  };
}

function checkPosition(errors, position) {
  if (!position) errors.decimalLatitude = t('pos.none');
  else {
    for (const [field, value] of [['decimalLatitude', position.lat], ['decimalLongitude', position.lon]]) {
      const { min, max } = bounds('sighting', field);
      if (!(value >= min && value <= max)) errors[field] = `${min} … ${max}`;
    }
  }
}

async function save(kind, id, fields, setSaving, setErrors, done) {
  setSaving(true);
  try {
    const { set, removed } = split(fields);
    await saveRecord(kind, id, set, removed);
    done();
  } catch (e) {
    setErrors({ '*': errorText(e) });
  } finally {
    setSaving(false);
  }
}

function afterSave() {
  sessionStorage.setItem('fieldnotes.flash', t('form.saved'));
  location.hash = '#/';
}

export function SightingForm({ existing, id: givenId }) {
  const [id] = useState(givenId || uuid());
  const who = useValue(profile);
  const e0 = existing || {};
  const [species, setSpecies] = useState({
    scientificName: e0.scientificName || '',
    vernacularName: e0.vernacularName || '',
    taxonId: e0.taxonID ?? null,
  });
  const [count, setCount] = useState(e0.individualCount ?? (existing ? '' : 1));
  const [absent, setAbsent] = useState(e0.occurrenceStatus === 'absent');
  const [when, setWhen] = useState(toLocalInput(e0.eventDate));
  const [recordedBy, setRecordedBy] = useState(e0.recordedBy || (who.me && who.me.displayName) || enrolment.get().deviceName || '');
  const [position, setPosition] = useState(positionOf(existing));
  const [site, setSite] = useState(e0.site || '');
  const [notes, setNotes] = useState(e0.notes || '');
  const [photos, setPhotos] = useState(e0.photos || []);
  const [errors, setErrors] = useState(existing ? serverProblems(id) : {});
  const [saving, setSaving] = useState(false);

  const submit = () => {
    const errs = {};
    if (!species.scientificName.trim()) errs.scientificName = t('form.mustFill');
    const eventDate = fromLocalInput(when);
    if (!eventDate) errs.eventDate = t('form.mustFill');
    if (!recordedBy.trim()) errs.recordedBy = t('form.mustFill');
    const n = count === '' ? null : Number(count);
    if (n !== null && !(Number.isInteger(n) && n >= 0)) errs.individualCount = '≥ 0';
    if (absent && n) errs.individualCount = '0';
    checkPosition(errs, position);
    setErrors(errs);
    if (Object.keys(errs).length) return;
    save('sighting', id, {
      ...meta(existing, id),
      occurrenceID: `urn:uuid:${id}`,
      scientificName: species.scientificName.trim(),
      taxonID: species.taxonId || null,
      vernacularName: species.vernacularName || null,
      eventDate,
      ...positionFields(position),
      individualCount: n,
      occurrenceStatus: absent ? 'absent' : 'present',
      basisOfRecord: e0.basisOfRecord || 'HumanObservation',
      recordedBy: recordedBy.trim(),
      site: site || null,
      notes: notes.trim() || null,
      photos,
    }, setSaving, setErrors, afterSave);
  };

  return html`<${FormShell} title=${t(existing ? 'form.sighting.edit' : 'form.sighting.new')} errors=${errors}
      onSubmit=${submit} testid="sighting-form" saving=${saving}>
    <${Field} id="species" label=${t('field.species')} required error=${errors.scientificName || errors.taxonID}>
      <${SpeciesCombobox} id="species" value=${species} onChange=${setSpecies} invalid=${!!errors.scientificName} />
    <//>
    <div class="row two">
      <${Field} id="count" label=${t('field.count')} error=${errors.individualCount}>
        <input id="count" type="number" inputmode="numeric" min="0" step="1" value=${count} data-testid="count"
          onInput=${(e) => setCount(e.currentTarget.value)} />
      <//>
      <div class="field check">
        <input id="absent" type="checkbox" checked=${absent} onChange=${(e) => {
          setAbsent(e.currentTarget.checked);
          if (e.currentTarget.checked) setCount(0);
        }} />
        <label for="absent">${t('field.absent')}</label>
      </div>
    </div>
    <${Field} id="eventDate" label=${t('field.eventDate')} required error=${errors.eventDate}>
      <input id="eventDate" type="datetime-local" value=${when} onInput=${(e) => setWhen(e.currentTarget.value)} />
    <//>
    <${PositionField} id="position" value=${position} onChange=${setPosition}
      invalid=${!!(errors.decimalLatitude || errors.decimalLongitude || errors.coordinateUncertaintyInMeters)} />
    ${errors.decimalLatitude || errors.decimalLongitude || errors.coordinateUncertaintyInMeters
      ? html`<p class="error">${errors.decimalLatitude || errors.decimalLongitude || errors.coordinateUncertaintyInMeters}</p>`
      : null}
    <${PhotoField} photos=${photos} setPhotos=${setPhotos} territoryId=${enrolment.get().territoryId} />
    <${Field} id="site" label=${t('field.site')} error=${errors.site}>
      <${SiteSelect} id="site" value=${site} onChange=${setSite} />
    <//>
    <${Field} id="recordedBy" label=${t('field.recordedBy')} required error=${errors.recordedBy}>
      <input id="recordedBy" type="text" autocomplete="name" value=${recordedBy} onInput=${(e) => setRecordedBy(e.currentTarget.value)} />
    <//>
    <${Field} id="notes" label=${t('field.notes')} error=${errors.notes}>
      <textarea id="notes" rows="3" maxlength=${maxLength('sighting', 'notes')} value=${notes} onInput=${(e) => setNotes(e.currentTarget.value)}></textarea>
    <//>
  <//>`;
}

export function DegradationForm({ existing, id: givenId }) {
  const [id] = useState(givenId || uuid());
  const e0 = existing || {};
  const [category, setCategory] = useState(e0.category || '');
  const [detail, setDetail] = useState(e0.categoryDetail || '');
  const [description, setDescription] = useState(e0.description || '');
  const [when, setWhen] = useState(toLocalInput(e0.observedAt));
  const [position, setPosition] = useState(positionOf(existing));
  const [site, setSite] = useState(e0.site || '');
  const [photos, setPhotos] = useState(e0.photos || []);
  const [errors, setErrors] = useState(existing ? serverProblems(id) : {});
  const [saving, setSaving] = useState(false);

  const submit = () => {
    const errs = {};
    if (!CATEGORIES.includes(category)) errs.category = t('form.mustFill');
    if (category === 'other' && !detail.trim()) errs.categoryDetail = t('form.mustFill');
    if (!description.trim()) errs.description = t('form.mustFill');
    const observedAt = fromLocalInput(when);
    if (!observedAt) errs.observedAt = t('form.mustFill');
    checkPosition(errs, position);
    setErrors(errs);
    if (Object.keys(errs).length) return;
    save('degradation_report', id, {
      ...meta(existing, id),
      category,
      categoryDetail: category === 'other' ? detail.trim() : detail.trim() || null,
      observedAt,
      ...positionFields(position),
      description: description.trim(),
      photos,
      site: site || null,
    }, setSaving, setErrors, afterSave);
  };

  return html`<${FormShell} title=${t(existing ? 'form.degradation.edit' : 'form.degradation.new')} errors=${errors}
      onSubmit=${submit} testid="degradation-form" saving=${saving}>
    <${Field} id="category" label=${t('field.category')} required error=${errors.category}>
      <select id="category" value=${category} onChange=${(e) => setCategory(e.currentTarget.value)} data-testid="category">
        <option value="" disabled>—</option>
        ${CATEGORIES.map((c) => html`<option value=${c}>${t(`category.${c}`)}</option>`)}
      </select>
    <//>
    ${category === 'other' || detail
      ? html`<${Field} id="categoryDetail" label=${t('field.categoryDetail')} required=${category === 'other'} error=${errors.categoryDetail}>
          <input id="categoryDetail" type="text" maxlength=${maxLength('degradation_report', 'categoryDetail')} value=${detail} onInput=${(e) => setDetail(e.currentTarget.value)} />
        <//>`
      : null}
    <${Field} id="description" label=${t('field.description')} required error=${errors.description}>
      <textarea id="description" rows="4" maxlength=${maxLength('degradation_report', 'description')} value=${description} data-testid="description"
        onInput=${(e) => setDescription(e.currentTarget.value)}></textarea>
    <//>
    <${Field} id="observedAt" label=${t('field.observedAt')} required error=${errors.observedAt}>
      <input id="observedAt" type="datetime-local" value=${when} onInput=${(e) => setWhen(e.currentTarget.value)} />
    <//>
    <${PositionField} id="position" value=${position} onChange=${setPosition}
      invalid=${!!(errors.decimalLatitude || errors.decimalLongitude)} />
    ${errors.decimalLatitude || errors.decimalLongitude || errors.coordinateUncertaintyInMeters
      ? html`<p class="error">${errors.decimalLatitude || errors.decimalLongitude || errors.coordinateUncertaintyInMeters}</p>`
      : null}
    <${PhotoField} photos=${photos} setPhotos=${setPhotos} territoryId=${enrolment.get().territoryId} />
    <${Field} id="site" label=${t('field.site')}>
      <${SiteSelect} id="site" value=${site} onChange=${setSite} />
    <//>
  <//>`;
}

export function TimesheetForm({ existing, id: givenId }) {
  const [id] = useState(givenId || uuid());
  const e0 = existing || {};
  const [activity, setActivity] = useState(e0.activity || 'field_survey');
  const [workDate, setWorkDate] = useState(e0.workDate || today());
  const [startedAt, setStartedAt] = useState(e0.startedAt || null);
  const [endedAt, setEndedAt] = useState(e0.endedAt || null);
  const [minutes, setMinutes] = useState(e0.durationMinutes ?? '');
  const [site, setSite] = useState(e0.site || '');
  const [notes, setNotes] = useState(e0.notes || '');
  const [errors, setErrors] = useState(existing ? serverProblems(id) : {});
  const [saving, setSaving] = useState(false);
  const [now, setNow] = useState(Date.now());
  const running = startedAt && !endedAt;

  // The timer survives a reload: its start is kept in IndexedDB.
  useEffect(() => {
    if (existing) return;
    kv.get('timer').then((timer) => {
      if (timer && timer.startedAt) {
        setStartedAt(timer.startedAt);
        setEndedAt(null);
      }
    });
  }, []);
  useEffect(() => {
    if (!running) return;
    const tick = setInterval(() => setNow(Date.now()), 15000);
    return () => clearInterval(tick);
  }, [running]);

  const start = async () => {
    const at = new Date().toISOString();
    setStartedAt(at);
    setEndedAt(null);
    setMinutes('');
    setWorkDate(today());
    await kv.set('timer', { startedAt: at });
  };
  const stop = async () => {
    const at = new Date().toISOString();
    setEndedAt(at);
    setMinutes(Math.max(1, Math.floor((Date.parse(at) - Date.parse(startedAt)) / 60000)));
    await kv.delete('timer');
  };
  const typedMinutes = (e) => {
    setMinutes(e.currentTarget.value);
    // A typed duration replaces the timer's span.
    if (!running) {
      setStartedAt(null);
      setEndedAt(null);
    }
  };

  const submit = () => {
    const errs = {};
    if (!ACTIVITIES.includes(activity)) errs.activity = t('form.mustFill');
    if (!/^\d{4}-\d{2}-\d{2}$/.test(workDate)) errs.workDate = t('form.mustFill');
    if (running) errs.endedAt = t('timer.stop');
    const n = minutes === '' ? null : Number(minutes);
    if (!(startedAt && endedAt) && !(Number.isInteger(n) && n >= MINUTES.min && n <= MINUTES.max)) {
      errs.durationMinutes = `${MINUTES.min} … ${MINUTES.max}`;
    }
    setErrors(errs);
    if (Object.keys(errs).length) return;
    save('timesheet_entry', id, {
      ...meta(existing, id),
      volunteerId: enrolment.get().accountId,
      workDate,
      startedAt: startedAt && endedAt ? startedAt : null,
      endedAt: startedAt && endedAt ? endedAt : null,
      durationMinutes: n,
      activity,
      site: site || null,
      notes: notes.trim() || null,
    }, setSaving, setErrors, afterSave);
  };

  const runningMinutes = running ? Math.floor((now - Date.parse(startedAt)) / 60000) : 0;
  return html`<${FormShell} title=${t(existing ? 'form.timesheet.edit' : 'form.timesheet.new')} errors=${errors}
      onSubmit=${submit} testid="timesheet-form" saving=${saving}>
    <${Field} id="activity" label=${t('field.activity')} required error=${errors.activity}>
      <select id="activity" value=${activity} onChange=${(e) => setActivity(e.currentTarget.value)} data-testid="activity">
        ${ACTIVITIES.map((a) => html`<option value=${a}>${t(`activity.${a}`)}</option>`)}
      </select>
    <//>
    <div class="timer" role="group" aria-labelledby="timer-status">
      <p id="timer-status" role="status" data-testid="timer-status">
        ${running
          ? t('timer.running', { since: formatTime(startedAt), minutes: runningMinutes })
          : startedAt && endedAt
            ? t('timer.done', { from: formatTime(startedAt), to: formatTime(endedAt) })
            : ''}
      </p>
      ${running
        ? html`<button type="button" class="big warn" onClick=${stop} data-testid="timer-stop">${t('timer.stop')}</button>`
        : html`<button type="button" class="big" onClick=${start} data-testid="timer-start">${t('timer.start')}</button>`}
      ${errors.endedAt || errors.startedAt ? html`<p class="error">${errors.endedAt || errors.startedAt}</p>` : null}
    </div>
    <${Field} id="duration" label=${t('field.duration')} hint=${t('timer.or')} error=${errors.durationMinutes}>
      <input id="duration" type="number" inputmode="numeric" min=${MINUTES.min} max=${MINUTES.max} step="1" value=${minutes}
        data-testid="duration" onInput=${typedMinutes} disabled=${running} />
    <//>
    <${Field} id="workDate" label=${t('field.workDate')} required error=${errors.workDate}>
      <input id="workDate" type="date" value=${workDate} onInput=${(e) => setWorkDate(e.currentTarget.value)} />
    <//>
    <${Field} id="site" label=${t('field.site')}>
      <${SiteSelect} id="site" value=${site} onChange=${setSite} />
    <//>
    <${Field} id="notes" label=${t('field.notes')} error=${errors.notes}>
      <textarea id="notes" rows="3" maxlength=${maxLength('timesheet_entry', 'notes')} value=${notes} onInput=${(e) => setNotes(e.currentTarget.value)}></textarea>
    <//>
  <//>`;
}
