// Small pieces several pages share.
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import * as api from '../shared/api.js';
import { useValue } from '../shared/state.js';
import { language, setLanguage, t, has, formatDate } from './i18n.js';

export function LanguageToggle() {
  const lang = useValue(language);
  const other = lang === 'fr' ? 'en' : 'fr';
  return html`<button type="button" class="link-button" lang=${other} data-testid="language-switch"
    aria-label=${t('lang.label') + ' : ' + t('lang.switch')} onClick=${() => setLanguage(other)}>
    ${t('lang.switch')}
  </button>`;
}

/** Loads `load()` now and whenever `deps` change; `reload` refetches. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => current && setState({ data, error: null, loading: false }),
      (error) => current && setState({ data: null, error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((n) => n + 1) };
}

export function Loading({ state, children }) {
  if (state.error) return html`<p role="alert" class="error">${t('common.error', { reason: state.error.message })}</p>`;
  if (!state.data) return html`<p aria-busy="true">${t('common.loading')}</p>`;
  return children(state.data);
}

/** A message after an action: success (status) or failure (alert). */
export function Outcome({ outcome }) {
  if (!outcome) return null;
  return outcome.error
    ? html`<p role="alert" class="error" data-testid="action-error">${t('common.error', { reason: outcome.error })}</p>`
    : html`<p role="status" class="success" data-testid="action-done">${outcome.message}</p>`;
}

/** Runs an action, turning its result or error into an `Outcome`. */
export async function attempt(setOutcome, action, message) {
  setOutcome(null);
  try {
    const result = await action();
    setOutcome({ message: typeof message === 'function' ? message(result) : message });
    return result;
  } catch (error) {
    setOutcome({ error: error.message });
    return null;
  }
}

/** A photo (or its thumbnail) as an object URL: <img> cannot send the token. */
const photoCache = new Map();
async function photoUrl(sha256, thumbnail) {
  const path = `/api/photos/${sha256}${thumbnail ? '/thumbnail' : ''}`;
  if (!photoCache.has(path)) {
    photoCache.set(
      path,
      api.request(path).then(async (response) => {
        if (!response.ok) throw await api.ApiError.of(response);
        return URL.createObjectURL(await response.blob());
      }),
    );
  }
  return photoCache.get(path);
}

export function Photo({ sha256, n }) {
  const [thumb, setThumb] = useState(null);
  const [full, setFull] = useState(null);
  useEffect(() => {
    photoUrl(sha256, true).then(setThumb, () => setThumb(''));
  }, [sha256]);
  async function open() {
    setFull(await photoUrl(sha256, false));
  }
  return html`<span class="photo">
    <button type="button" class="thumb" onClick=${open} aria-label=${t('record.photoOpen', { n })}>
      ${thumb ? html`<img src=${thumb} alt="" width="160" />` : html`<span class="placeholder">📷</span>`}
    </button>
    ${full &&
    html`<div class="lightbox" role="dialog" aria-modal="true" aria-label=${t('record.photoOpen', { n })}>
      <img src=${full} alt=${t('record.photoOpen', { n })} data-testid="photo-full" />
      <button type="button" class="primary" autofocus onClick=${() => setFull(null)}>${t('record.photoClose')}</button>
    </div>`}
  </span>`;
}

/** The label of a record's current decision. */
export function statusLabel(record) {
  if (record.kind === 'sighting') return t('status.' + record.validationStatus);
  if (record.kind === 'degradation_report') return t('followup.' + record.status);
  return t('approval.' + record.approvalStatus);
}

/** What a record is about, in a few words. */
export function recordTitle(record) {
  if (record.kind === 'sighting') return record.scientificName || record.vernacularName || '—';
  if (record.kind === 'degradation_report') return t('category.' + record.category);
  return `${t('activity.' + record.activity)} · ${record.durationMinutes} min`;
}

export function recordDate(record) {
  if (record.kind === 'sighting') return formatDate(record.eventDate);
  if (record.kind === 'degradation_report') return formatDate(record.observedAt);
  return formatDate(record.workDate, false);
}

/**
 * A record's plausibility warnings (the server's `warnings`): each by its
 * label, the server's own wording as its title; a code this app has no label
 * for shows the server's message.
 */
export function Warnings({ warnings, compact }) {
  if (!warnings || warnings.length === 0) return null;
  const label = (warning) => (has('warning.' + warning.code) ? t('warning.' + warning.code) : warning.message);
  if (compact) {
    return warnings.map(
      (warning) => html`<span class="badge warn" data-warning=${warning.code} title=${warning.message}>⚠ ${label(warning)}</span>`,
    );
  }
  return html`<section class="notice" data-testid="warnings" aria-labelledby="warnings-title">
    <h2 id="warnings-title">${t('warning.title')}</h2>
    <ul>
      ${warnings.map(
        (warning) => html`<li data-warning=${warning.code}>
          <strong>${label(warning)}</strong> (${t('field.' + warning.field)}) : <span lang="en">${warning.message}</span>
        </li>`,
      )}
    </ul>
  </section>`;
}
