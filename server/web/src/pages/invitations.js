// Onboarding volunteers: one invitation or a batch for an event or a class,
// printed as an A4 sheet of cards (QR code, code in letters, the field app's
// address, three lines of instructions); the territory's invitations with
// their state, and the volunteers' phones, each revocable by a coordinator.
import { useState } from 'preact/hooks';
import { html } from 'htm/preact';
import QRCode from 'qrcode';
import * as api from '../../shared/api.js';
import { t, formatDate } from '../i18n.js';
import { attempt, Loading, Outcome, useLoad } from '../ui.js';

/** Where the server serves the volunteers' field app (server/src/http/web.rs). */
const FIELD_APP_PATH = '/field/';
const MAX_BATCH = 100;

/**
 * The field app's address on a card: under the server the QR payload names
 * when it names one (the address phones reach it at), else this page's own.
 */
function fieldAppAddress(qrPayload) {
  let server = null;
  try {
    server = JSON.parse(qrPayload).server;
  } catch {
    // Not JSON: this page's origin, below.
  }
  return (typeof server === 'string' && server ? server.replace(/\/+$/, '') : location.origin) + FIELD_APP_PATH;
}

/**
 * A QR code drawn in the page as one SVG path: `qrcode` computes the modules,
 * nothing is fetched. Error correction M survives a crease in a printed card.
 */
function QrCode({ payload, label }) {
  const { modules } = QRCode.create(payload, { errorCorrectionLevel: 'M' });
  const size = modules.size;
  let path = '';
  for (let row = 0; row < size; row += 1) {
    for (let col = 0; col < size; col += 1) {
      if (modules.get(row, col)) path += `M${col + 4} ${row + 4}h1v1h-1z`;
    }
  }
  const box = size + 8; // the quiet zone: four modules on each side
  return html`<svg class="qr" viewBox=${`0 0 ${box} ${box}`} role="img" aria-label=${label}
    shape-rendering="crispEdges" data-testid="card-qr">
    <rect width=${box} height=${box} fill="#fff" />
    <path d=${path} fill="#000" />
  </svg>`;
}

function Card({ invitation }) {
  const address = fieldAppAddress(invitation.qrPayload);
  return html`<li class="invitation-card" data-testid="invitation-card">
    <p class="card-name">${invitation.displayName}</p>
    <${QrCode} payload=${invitation.qrPayload} label=${t('invitations.qrLabel', { name: invitation.displayName })} />
    <p class="card-code"><span class="card-caption">${t('invitations.code')}</span>
      <strong data-testid="card-code">${invitation.code}</strong></p>
    <p class="card-address">${address}</p>
    <ol class="card-steps">
      <li>${t('invitations.step1', { address })}</li>
      <li>${t('invitations.step2')}</li>
      <li>${t('invitations.step3', { date: formatDate(invitation.expiresAt) })}</li>
    </ol>
  </li>`;
}

function CardSheet({ cards }) {
  return html`<section class="card-sheet" aria-labelledby="cards-title" data-testid="card-sheet">
    <div class="no-print">
      <h2 id="cards-title">${t('invitations.cards', { n: cards.length })}</h2>
      <p>${t('invitations.cardsOnce')}</p>
      <button type="button" class="primary" onClick=${() => window.print()}>${t('invitations.print')}</button>
    </div>
    <ul class="cards">
      ${cards.map((invitation) => html`<${Card} key=${invitation.id} invitation=${invitation} />`)}
    </ul>
  </section>`;
}

/** Names typed one a line: blank lines left out. */
function namesOf(text) {
  return text.split('\n').map((name) => name.trim()).filter(Boolean);
}

function InvitationForm({ territory, onCreated }) {
  const [mode, setMode] = useState('one');
  const [name, setName] = useState('');
  const [names, setNames] = useState('');
  const [prefix, setPrefix] = useState('');
  const [count, setCount] = useState('30');
  const [days, setDays] = useState('3');
  const [outcome, setOutcome] = useState(null);
  async function submit(event) {
    event.preventDefault();
    const common = { territoryId: territory.id, ttlHours: Number(days) * 24 };
    const create = {
      one: () => api.post('/api/invitations', { ...common, displayName: name }).then((one) => [one]),
      list: () => api.post('/api/invitations/batch', { ...common, names: namesOf(names) }).then((b) => b.invitations),
      numbered: () =>
        api.post('/api/invitations/batch', { ...common, prefix, count: Number(count) }).then((b) => b.invitations),
    }[mode];
    const cards = await attempt(setOutcome, create, (made) => t('invitations.created', { n: made.length }));
    if (cards) onCreated(cards);
  }
  const modes = [
    ['one', 'invitations.modeOne'],
    ['list', 'invitations.modeList'],
    ['numbered', 'invitations.modeNumbered'],
  ];
  return html`<form class="no-print" onSubmit=${submit} aria-labelledby="invite-title" data-testid="invitation-form">
    <h2 id="invite-title">${t('invitations.new')}</h2>
    <fieldset>
      <legend>${t('invitations.mode')}</legend>
      ${modes.map(
        ([key, label]) => html`<label class="inline">
          <input type="radio" name="invitation-mode" value=${key} checked=${mode === key}
            onChange=${() => setMode(key)} /> ${t(label)}
        </label>`,
      )}
    </fieldset>
    ${mode === 'one' &&
    html`<label for="invite-name">${t('invitations.name')}</label>
      <input id="invite-name" required maxlength="200" value=${name} onInput=${(e) => setName(e.target.value)} />`}
    ${mode === 'list' &&
    html`<label for="invite-names">${t('invitations.names', { max: MAX_BATCH })}</label>
      <textarea id="invite-names" required rows="6" value=${names} onInput=${(e) => setNames(e.target.value)}></textarea>`}
    ${mode === 'numbered' &&
    html`<label for="invite-prefix">${t('invitations.prefix')}</label>
      <input id="invite-prefix" required maxlength="190" value=${prefix} onInput=${(e) => setPrefix(e.target.value)} />
      <label for="invite-count">${t('invitations.count', { max: MAX_BATCH })}</label>
      <input id="invite-count" type="number" required min="1" max=${MAX_BATCH} value=${count}
        onInput=${(e) => setCount(e.target.value)} />`}
    <label for="invite-days">${t('invitations.days')}</label>
    <input id="invite-days" type="number" required min="1" max="30" value=${days} onInput=${(e) => setDays(e.target.value)} />
    <${Outcome} outcome=${outcome} />
    <button type="submit" class="primary">${t('invitations.create')}</button>
  </form>`;
}

function InvitationList({ invitations }) {
  const [outcome, setOutcome] = useState(null);
  async function revoke(invitation) {
    if (!confirm(t('invitations.revokeConfirm', { name: invitation.displayName }))) return;
    const done = await attempt(
      setOutcome,
      () => api.post(`/api/invitations/${invitation.id}/revoke`, {}).then(() => true),
      t('invitations.revoked', { name: invitation.displayName }),
    );
    if (done) invitations.reload();
  }
  return html`<section class="no-print" aria-labelledby="invitations-title">
    <h2 id="invitations-title">${t('invitations.list')}</h2>
    <${Outcome} outcome=${outcome} />
    <${Loading} state=${invitations}>
      ${(list) =>
        list.length === 0
          ? html`<p>${t('common.none')}</p>`
          : html`<div class="table-scroll"><table data-testid="invitations">
              <thead><tr>
                <th scope="col">${t('invitations.name')}</th>
                <th scope="col">${t('invitations.state')}</th>
                <th scope="col">${t('invitations.createdAt')}</th>
                <th scope="col">${t('invitations.expiresAt')}</th>
                <th scope="col">${t('invitations.actions')}</th>
              </tr></thead>
              <tbody>
                ${list.map(
                  (invitation) => html`<tr data-invitation-name=${invitation.displayName} data-state=${invitation.state}>
                    <td>${invitation.displayName}</td>
                    <td>${t('invitationState.' + invitation.state)}</td>
                    <td>${formatDate(invitation.createdAt)} (${invitation.createdByName})</td>
                    <td>${formatDate(invitation.expiresAt)}</td>
                    <td>${invitation.state === 'pending'
                      ? html`<button type="button" onClick=${() => revoke(invitation)}
                          aria-label=${t('invitations.revokeOf', { name: invitation.displayName })}>${t('invitations.revoke')}</button>`
                      : ''}</td>
                  </tr>`,
                )}
              </tbody>
            </table></div>`}
    <//>
  </section>`;
}

function Devices({ devices }) {
  const [outcome, setOutcome] = useState(null);
  async function revoke(device) {
    if (!confirm(t('devices.revokeConfirm', { name: device.name, person: device.accountName }))) return;
    const done = await attempt(
      setOutcome,
      () => api.post(`/api/devices/${device.id}/revoke`, {}).then(() => true),
      t('devices.revoked', { name: device.name, person: device.accountName }),
    );
    if (done) devices.reload();
  }
  return html`<section class="no-print" aria-labelledby="devices-title">
    <h2 id="devices-title">${t('devices.title')}</h2>
    <p>${t('devices.intro')}</p>
    <${Outcome} outcome=${outcome} />
    <${Loading} state=${devices}>
      ${(list) =>
        list.length === 0
          ? html`<p>${t('common.none')}</p>`
          : html`<div class="table-scroll"><table data-testid="devices">
              <thead><tr>
                <th scope="col">${t('devices.person')}</th>
                <th scope="col">${t('devices.name')}</th>
                <th scope="col">${t('devices.enrolled')}</th>
                <th scope="col">${t('devices.lastSeen')}</th>
                <th scope="col">${t('devices.actions')}</th>
              </tr></thead>
              <tbody>
                ${list.map(
                  (device) => html`<tr data-device-id=${device.id} data-person=${device.accountName}>
                    <td>${device.accountName}</td>
                    <td>${device.name}</td>
                    <td>${formatDate(device.createdAt)}</td>
                    <td>${device.lastSeenAt ? formatDate(device.lastSeenAt) : t('devices.never')}</td>
                    <td>${device.revokedAt
                      ? t('devices.revokedOn', { date: formatDate(device.revokedAt) })
                      : html`<button type="button" onClick=${() => revoke(device)}
                          aria-label=${t('devices.revokeOf', { name: device.name, person: device.accountName })}
                          >${t('devices.revoke')}</button>`}</td>
                  </tr>`,
                )}
              </tbody>
            </table></div>`}
    <//>
  </section>`;
}

/** What coordinators and admins do here; a régie auditor is refused it all. */
function Onboarding({ territory }) {
  const [cards, setCards] = useState(null);
  const invitations = useLoad(() => api.get(`/api/territories/${territory.id}/invitations`), [territory.id]);
  const devices = useLoad(() => api.get('/api/devices', { territory: territory.id }), [territory.id]);
  function created(made) {
    setCards(made);
    invitations.reload();
  }
  return html`<${InvitationForm} territory=${territory} onCreated=${created} />
    ${cards && html`<${CardSheet} cards=${cards} />`}
    <${InvitationList} invitations=${invitations} />
    <${Devices} devices=${devices} />`;
}

export function Invitations({ territory, canDecide }) {
  return html`<h1 class="no-print">${t('invitations.title')}</h1>
    ${canDecide
      ? html`<${Onboarding} territory=${territory} />`
      : html`<p class="no-print" data-testid="invitations-coordinators-only">${t('invitations.coordinatorsOnly')}</p>`}`;
}
