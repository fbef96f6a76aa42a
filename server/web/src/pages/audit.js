// The régie's audit page: the territory's audit trail, paged and filtered
// (record, person, device, period, kind of entry), each entry with the
// fields it changed before and after; and the chain's verification, with the
// last entry's number and hash to note down and a form to check a pair
// noted earlier. Reading only: auditors and coordinators alike.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import * as api from '../../shared/api.js';
import { t, formatDate, formatNumber } from '../i18n.js';
import { Loading, useLoad } from '../ui.js';

/** The kinds of entry the trail holds (`audit_log.action`). */
export const ENTRY_KINDS = ['change', 'verification', 'follow_up', 'approval', 'conflict_resolution',
  'duplicate_merge', 'duplicate_dismissal', 'report_issued', 'erasure'];
const PAGE_SIZE = 50;
const NO_FILTERS = { record: '', person: '', device: '', from: '', to: '', action: '' };

/** A day typed in a date input as the first or last moment of that day, here. */
function dayBound(day, end) {
  if (!day) return undefined;
  const moment = new Date(`${day}T${end ? '23:59:59.999' : '00:00:00'}`);
  return Number.isNaN(moment.getTime()) ? day : moment.toISOString();
}

/** A value of the trail, readable: text as is, the rest as JSON. */
export function shown(value) {
  if (value === null || value === undefined || value === '') return t('audit.absent');
  if (typeof value === 'object' && !Array.isArray(value) && 'erased' in value) return t('audit.erasedValue');
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The fields an entry touched, before and after. */
export function BeforeAfter({ before, after }) {
  const fields = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])];
  if (fields.length === 0) return null;
  // A record's first change has no before: its fields are shown once.
  const created = Object.keys(before || {}).length === 0;
  const label = (field) => (t('field.' + field) === 'field.' + field ? field : t('field.' + field));
  return html`${created && html`<p class="meta">${t('audit.created')}</p>`}
    <table class="compact before-after">
      <caption class="visually-hidden">${t('audit.changes')}</caption>
      <thead>
        <tr>
          <th scope="col">${t('audit.field')}</th>
          ${!created && html`<th scope="col">${t('audit.before')}</th>`}
          <th scope="col">${t('audit.after')}</th>
        </tr>
      </thead>
      <tbody>
        ${fields.map(
          (field) => html`<tr data-field=${field}>
            <th scope="row">${label(field)}</th>
            ${!created && html`<td class="before">${shown((before || {})[field])}</td>`}
            <td class="after">${shown((after || {})[field])}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
}

/** A decision status's label: each kind of decision has its own vocabulary. */
const STATUS_LABELS = { verification: 'status.', follow_up: 'followup.', approval: 'approval.' };
/** Bookkeeping the trail keeps that says nothing to a reader. */
const UNSHOWN_DETAIL = new Set(['historyId', 'redacted', 'notebooks']);

function detailValue(action, key, value) {
  const prefix = STATUS_LABELS[action];
  if (prefix && (key === 'status' || key === 'previous') && value !== null) {
    const label = t(prefix + value);
    if (label !== prefix + value) return label;
  }
  return shown(value);
}

/** A decision's detail (status, reason, report hash…), as a short list. */
export function Detail({ action, detail }) {
  const keys = Object.keys(detail || {}).filter((key) => {
    const value = detail[key];
    if (UNSHOWN_DETAIL.has(key) || value === null || value === '') return false;
    return !(typeof value === 'object' && Object.keys(value).length === 0);
  });
  if (keys.length === 0) return null;
  return html`<dl class="detail">
    ${keys.map(
      (key) => html`<dt>${t('audit.detail.' + key) === 'audit.detail.' + key ? key : t('audit.detail.' + key)}</dt>
        <dd data-detail=${key}>${detailValue(action, key, detail[key])}</dd>`,
    )}
  </dl>`;
}

function Entry({ entry, territory }) {
  return html`<li class="entry" data-seq=${entry.seq}>
    <p class="entry-head">
      <strong>${t('audit.seq')} ${entry.seq}</strong> · ${formatDate(entry.recordedAt)} ·
      <span class="badge" data-kind=${entry.action}>${t('action.' + entry.action)}</span>
      · ${t('audit.who')} ${entry.actorName || entry.actorId}
      ${entry.deviceId ? html` (${entry.deviceName || entry.deviceId})` : entry.sessionId ? html` (${t('audit.device.web')})` : ''}
      ${entry.recordId &&
      html` · <a href=${`#/t/${territory.id}/record/${entry.recordId}`}>${t('audit.openRecord')}</a>`}
    </p>
    <${BeforeAfter} before=${entry.before} after=${entry.after} />
    <${Detail} action=${entry.action} detail=${entry.detail} />
    <p class="meta">${t('audit.hash')} <code class="hash">${entry.hash}</code></p>
  </li>`;
}

function Filters({ value, onApply }) {
  const [draft, setDraft] = useState(value);
  const field = (name, label, type = 'text') => html`<div>
    <label for=${'audit-' + name}>${label}</label>
    <input id=${'audit-' + name} type=${type} value=${draft[name]}
      onInput=${(e) => setDraft({ ...draft, [name]: e.target.value })} />
  </div>`;
  function apply(event) {
    event.preventDefault();
    onApply(draft);
  }
  return html`<form class="filters" data-testid="audit-filters" aria-label=${t('audit.filters')} onSubmit=${apply}>
    ${field('record', t('audit.record'))}
    ${field('person', t('audit.person'))}
    ${field('device', t('audit.device'))}
    ${field('from', t('audit.from'), 'date')}
    ${field('to', t('audit.to'), 'date')}
    <div>
      <label for="audit-action">${t('audit.kind')}</label>
      <select id="audit-action" value=${draft.action} onChange=${(e) => setDraft({ ...draft, action: e.target.value })}>
        <option value="">${t('audit.anyKind')}</option>
        ${ENTRY_KINDS.map((kind) => html`<option value=${kind}>${t('action.' + kind)}</option>`)}
      </select>
    </div>
    <div class="filter-actions">
      <button type="submit" class="primary">${t('audit.apply')}</button>
      <button type="button" onClick=${() => { setDraft(NO_FILTERS); onApply(NO_FILTERS); }}>${t('audit.clear')}</button>
    </div>
  </form>`;
}

function Trail({ territory }) {
  const [filters, setFilters] = useState(NO_FILTERS);
  const [cursors, setCursors] = useState([]);
  const after = cursors[cursors.length - 1];
  const state = useLoad(
    () =>
      api.get(`/api/territories/${territory.id}/audit/entries`, {
        ...filters,
        from: dayBound(filters.from, false),
        to: dayBound(filters.to, true),
        after,
        limit: PAGE_SIZE,
      }),
    [territory.id, after, JSON.stringify(filters)],
  );
  function apply(next) {
    setCursors([]);
    setFilters(next);
  }
  return html`<section aria-labelledby="trail-title">
    <h2 id="trail-title">${t('audit.entries')}</h2>
    <${Filters} value=${filters} onApply=${apply} />
    <${Loading} state=${state}>
      ${(page) => html`${page.entries.length === 0
          ? html`<p>${t('audit.none')}</p>`
          : html`<ol class="trail" data-testid="audit-entries">
              ${page.entries.map((entry) => html`<${Entry} key=${entry.seq} entry=${entry} territory=${territory} />`)}
            </ol>`}
        <nav class="pager" aria-label=${t('audit.entries')}>
          ${cursors.length > 0 && html`<button type="button" onClick=${() => setCursors([])}>${t('common.first')}</button>`}
          ${page.nextAfter && html`<button type="button" onClick=${() => setCursors([...cursors, page.nextAfter])}>${t('common.more')}</button>`}
        </nav>`}
    <//>
  </section>`;
}

function Verification({ territory }) {
  const [result, setResult] = useState(null);
  const [running, setRunning] = useState(false);
  const [noted, setNoted] = useState({ seq: '', hash: '' });
  const [check, setCheck] = useState(null);
  const base = `/api/territories/${territory.id}/audit/verification`;
  async function verify() {
    setRunning(true);
    try {
      setResult({ found: await api.get(base) });
    } catch (error) {
      setResult({ error: error.message });
    } finally {
      setRunning(false);
    }
  }
  async function checkPair(event) {
    event.preventDefault();
    setCheck(null);
    const seq = noted.seq.trim();
    try {
      const found = await api.get(base, { seq, hash: noted.hash.trim() });
      setCheck({ holds: found.anchorHolds === true, seq });
    } catch (error) {
      setCheck({ error: error.message });
    }
  }
  const found = result && result.found;
  return html`<section class="panel" aria-labelledby="chain-title">
    <h2 id="chain-title">${t('chain.title')}</h2>
    <p>${t('chain.intro')}</p>
    <button type="button" class="primary" onClick=${verify} disabled=${running}>${t('chain.verify')}</button>
    ${running && html`<p role="status" aria-busy="true">${t('chain.running')}</p>`}
    ${result && result.error && html`<p role="alert" class="error">${t('common.error', { reason: result.error })}</p>`}
    ${found &&
    html`<div data-testid="chain-result">
      <p role="status" class=${found.intact ? 'success' : 'error'} data-intact=${String(found.intact)}>
        ${found.intact
          ? t('chain.intact', { entries: formatNumber(found.entries) })
          : t('chain.broken', { seq: found.firstBroken.seq, problem: found.firstBroken.problem })}
      </p>
      ${found.head
        ? html`<dl class="fields noted">
            <dt>${t('chain.note')} — ${t('audit.seq')}</dt>
            <dd data-testid="chain-seq">${found.head.seq}</dd>
            <dt>${t('chain.note')} — ${t('audit.hash')}</dt>
            <dd><code class="hash" data-testid="chain-hash">${found.head.hash}</code></dd>
          </dl>`
        : html`<p>${t('chain.empty')}</p>`}
      ${found.setAsideCount > 0 && html`<p class="notice">${t('chain.setAside', { count: found.setAsideCount })}</p>`}
      ${found.erasures.length > 0 &&
      html`<p class="notice" data-testid="chain-erasures">${t('chain.erasures', {
        count: found.erasures.length,
        entries: formatNumber(found.erasures.reduce((sum, e) => sum + e.entriesRedacted, 0)),
      })}</p>`}
    </div>`}
    <h3>${t('chain.checkTitle')}</h3>
    <form class="filters" data-testid="check-pair" onSubmit=${checkPair}>
      <div>
        <label for="noted-seq">${t('chain.checkSeq')}</label>
        <input id="noted-seq" inputmode="numeric" required value=${noted.seq}
          onInput=${(e) => setNoted({ ...noted, seq: e.target.value })} />
      </div>
      <div class="wide">
        <label for="noted-hash">${t('chain.checkHash')}</label>
        <input id="noted-hash" required spellcheck="false" autocomplete="off" value=${noted.hash}
          onInput=${(e) => setNoted({ ...noted, hash: e.target.value })} />
      </div>
      <div class="filter-actions"><button type="submit">${t('chain.check')}</button></div>
    </form>
    ${check &&
    (check.error
      ? html`<p role="alert" class="error" data-testid="check-result">${t('common.error', { reason: check.error })}</p>`
      : html`<p role="status" class=${check.holds ? 'success' : 'error'} data-testid="check-result" data-holds=${String(check.holds)}>
          ${check.holds ? t('chain.holds', { seq: check.seq }) : t('chain.doesNotHold', { seq: check.seq })}
        </p>`)}
  </section>`;
}

export function Audit({ territory }) {
  return html`<h1>${t('audit.title')}</h1>
    <p>${t('audit.intro')}</p>
    <${Verification} territory=${territory} />
    <${Trail} territory=${territory} />`;
}
