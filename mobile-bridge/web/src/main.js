// The volunteers' field app: one page, routed by the URL's hash
//   #/                 the records, their sync state, decisions, problems
//   #/new/<kind>       a new sighting | degradation_report | timesheet_entry
//   #/edit/<id>        edit (or fix) a record
//   #/settings
// Before enrolment every route shows the enrolment form.
import { render } from 'preact';
import { html } from 'htm/preact';
import './style.css';

import { t, errorText, formatDate, language } from './i18n.js';
import { signal, useValue } from '../../../server/web/shared/state.js';
import * as session from './session.js';
import { status } from './sync.js';
import { waiting, uploadError } from './photos.js';
import { Enrol, Home, NewRecord, EditRecord, Settings } from './pages.js';

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'home', arg: parts[1] };
}

const route = signal(parseHash());
window.addEventListener('hashchange', () => {
  route.set(parseHash());
  const main = document.getElementById('main');
  if (main) main.focus({ preventScroll: false });
  window.scrollTo(0, 0);
});

/** Whether a service worker controls the page (the app opens offline). */
const offlineReady = signal(false);

function registerWorker() {
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return;
  navigator.serviceWorker
    .register(`${import.meta.env.BASE_URL}sw.js`, { scope: import.meta.env.BASE_URL })
    .catch(() => {});
  navigator.serviceWorker.ready.then(() => {
    const update = () => offlineReady.set(!!navigator.serviceWorker.controller);
    update();
    navigator.serviceWorker.addEventListener('controllerchange', update);
  });
}

function StatusBar() {
  const s = useValue(status);
  const photos = useValue(waiting);
  const photoError = useValue(uploadError);
  const ready = useValue(offlineReady);
  const net = !s.online ? 'offline' : s.connected ? 'connected' : 'connecting';
  return html`<div class="statusbar" data-testid="sync-status" data-network=${net} data-connected=${s.connected ? 'true' : 'false'}
      data-pending=${s.pending} data-last-sync=${s.lastSync || ''} data-offline-ready=${ready ? 'true' : 'false'} role="status" aria-live="polite">
    <span class=${'net ' + net} data-testid="network">${t(net === 'offline' ? 'net.offline' : net === 'connected' ? 'net.connected' : 'net.connecting')}</span>
    <span data-testid="pending-count">${s.pending ? t('sync.pending', { n: s.pending }) : t('sync.allSent')}</span>
    <span data-testid="last-sync">${s.lastSync ? t('sync.last', { when: formatDate(s.lastSync) }) : t('sync.never')}</span>
    <span data-testid="photos-waiting" data-count=${photos} title=${photoError || ''}>${photos ? t('photos.waiting', { n: photos }) : t('photos.none')}</span>
    <span class="muted" data-testid="offline-ready">${ready ? t('offline.ready') : t('offline.notReady')}</span>
  </div>`;
}

function Header({ enrolled, page }) {
  const lang = useValue(language);
  const links = [
    ['home', '#/', 'nav.records'],
    ['settings', '#/settings', 'nav.settings'],
  ];
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      document.getElementById('main').focus();
    }}>${t('nav.skip')}</a>
    <div class="bar">
      <span class="brand">${t('app.name')}</span>
      ${enrolled
        ? html`<nav aria-label=${t('nav.label')}><ul>
            ${links.map(([key, href, label]) => html`<li><a href=${href} aria-current=${page === key ? 'page' : undefined}>${t(label)}</a></li>`)}
          </ul></nav>`
        : null}
    </div>
    ${enrolled ? html`<${StatusBar} />` : null}
  </header>`;
}

function App() {
  const who = useValue(session.enrolment);
  const r = useValue(route);
  useValue(language);
  document.title = t('app.title');
  if (who === undefined) return html`<main id="main" tabindex="-1"><p aria-busy="true">${t('common.loading')}</p></main>`;
  let page;
  if (!who) page = html`<${Enrol} />`;
  else if (r.page === 'new') page = html`<${NewRecord} kind=${r.arg} key=${'new-' + r.arg} />`;
  else if (r.page === 'edit') page = html`<${EditRecord} id=${r.arg} key=${'edit-' + r.arg} />`;
  else if (r.page === 'settings') page = html`<${Settings} />`;
  else page = html`<${Home} />`;
  return html`<${Header} enrolled=${!!who} page=${r.page} />
    <main id="main" tabindex="-1">${page}</main>`;
}

registerWorker();
render(html`<${App} />`, document.getElementById('app'));
session.load().catch((e) => {
  session.lastError.set(errorText(e));
  if (session.enrolment.get() === undefined) session.enrolment.set(null);
});
