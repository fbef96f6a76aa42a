// The coordinators' and régies' web app: one page, routed by the URL's hash
// (`#/t/<territory>/<page>`), over the review API. Every action a
// coordinator has is a button or a form; a régie auditor gets the same pages
// without them (and the server refuses their decisions anyway).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import 'leaflet/dist/leaflet.css';
import './style.css';

import { credential } from '../shared/session.js';
import * as api from '../shared/api.js';
import { signal, useValue } from '../shared/state.js';
import { logout } from './session.js';
import { language, t } from './i18n.js';
import { LanguageToggle } from './ui.js';
import { Login } from './pages/login.js';
import { Territories } from './pages/territories.js';
import { Dashboard } from './pages/dashboard.js';
import { MapPage } from './pages/map.js';
import { ReviewTable } from './pages/table.js';
import { RecordDetail } from './pages/record.js';
import { Conflicts } from './pages/conflicts.js';
import { Duplicates } from './pages/duplicates.js';
import { Reports } from './pages/reports.js';
import { Hours } from './pages/hours.js';
import { Audit } from './pages/audit.js';
import { HoursReport } from './pages/hours-report.js';
import { Exports } from './pages/exports.js';
import { InvalidRecords } from './pages/invalid.js';
import { Account } from './pages/account.js';
import { Settings } from './pages/settings.js';
import { ResetPassword } from './pages/reset.js';
import { Invitations } from './pages/invitations.js';
import { TerritoryPage } from './pages/territory.js';
import { Sites } from './pages/sites.js';
import { People } from './pages/people.js';
import { Accounts } from './pages/accounts.js';
import { live } from './live.js';

/** The route: `#/t/<id>/<page>/<arg>`. */
function parseHash() {
  const [path] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 't' && parts[1]) {
    return { territoryId: parts[1], page: parts[2] || 'dashboard', arg: parts[3] };
  }
  return { page: parts[0] || 'territories' };
}

const route = signal(parseHash());
window.addEventListener('hashchange', () => route.set(parseHash()));

export function go(hash) {
  location.hash = hash;
}

/** Who is logged in (`GET /api/me`), reloaded when the session changes. */
const me = signal(null);

async function loadMe() {
  if (!credential.get()) {
    me.set(null);
    return;
  }
  try {
    me.set(await api.get('/api/me'));
  } catch {
    me.set(null);
  }
}
credential.watch(loadMe);

/** The caller's role in a territory: `coordinator`, `regie_auditor`, or `admin`. */
function roleIn(who, territoryId) {
  const roles = who.memberships.filter((m) => m.territoryId === territoryId).map((m) => m.role);
  if (roles.includes('coordinator')) return 'coordinator';
  if (who.isAdmin) return 'admin';
  if (roles.includes('regie_auditor')) return 'regie_auditor';
  return null;
}

const PAGES = [
  ['dashboard', 'nav.dashboard'],
  ['map', 'nav.map'],
  ['table', 'nav.table'],
  ['conflicts', 'nav.conflicts'],
  ['duplicates', 'nav.duplicates'],
  ['reports', 'nav.reports'],
  ['hours', 'nav.hours'],
  ['audit', 'nav.audit'],
  ['hours-report', 'nav.hoursReport'],
  ['exports', 'nav.exports'],
  ['settings', 'nav.settings'],
  ['territory', 'nav.territory'],
  ['sites', 'nav.sites'],
  ['people', 'nav.people'],
  ['invitations', 'nav.invitations'],
];

function Header({ who, territory, role, page }) {
  const online = useValue(live);
  return html`<header class="top">
    <a class="skip" href="#main">${t('nav.skip')}</a>
    <div class="brand">${t('app.name')}${territory ? html` · <span>${territory.name}</span>` : ''}</div>
    ${territory &&
    html`<span class=${'live ' + (online ? 'on' : 'off')} role="status" data-testid="live-status">
      ${online ? t('live.on') : t('live.off')}
    </span>`}
    <div class="who">
      ${who.displayName}${role ? html` (${t('role.' + role)})` : ''}
      <${LanguageToggle} />
      <a href="#/account" aria-current=${page === 'account' ? 'page' : undefined}>${t('nav.account')}</a>
      <button type="button" class="link-button" onClick=${() => logout()}>${t('nav.logout')}</button>
    </div>
    ${territory &&
    html`<nav aria-label=${t('nav.label')}>
      <ul>
        ${PAGES.map(
          ([key, label]) => html`<li>
            <a href=${`#/t/${territory.id}/${key}`} aria-current=${page === key ? 'page' : undefined}
              >${t(label)}</a
            >
          </li>`,
        )}
        <li><a href="#/territories">${t('nav.territories')}</a></li>
      </ul>
    </nav>`}
    ${!territory &&
    html`<nav aria-label=${t('nav.general')}>
      <ul>
        <li><a href="#/territories" aria-current=${page === undefined ? 'page' : undefined}>${t('territories.title')}</a></li>
        ${who.isAdmin &&
        html`<li><a href="#/accounts" aria-current=${page === 'accounts' ? 'page' : undefined}>${t('accounts.title')}</a></li>`}
      </ul>
    </nav>`}
  </header>`;
}

function TerritoryPages({ who, territoryId, page, arg }) {
  const [territory, setTerritory] = useState(null);
  const [error, setError] = useState(null);
  const role = roleIn(who, territoryId);
  useEffect(() => {
    setTerritory(null);
    api.get(`/api/territories/${territoryId}`).then(setTerritory, setError);
  }, [territoryId]);
  useEffect(() => live.follow(territoryId), [territoryId]);
  if (error) return html`<p role="alert">${t('common.error', { reason: error.message })}</p>`;
  if (!territory) return html`<p>${t('common.loading')}</p>`;
  const canDecide = role === 'coordinator' || role === 'admin';
  const props = { territory, canDecide, arg, isAdmin: who.isAdmin, onTerritoryChanged: setTerritory };
  const body = {
    dashboard: Dashboard,
    map: MapPage,
    table: ReviewTable,
    record: RecordDetail,
    conflicts: Conflicts,
    duplicates: Duplicates,
    reports: Reports,
    hours: Hours,
    audit: Audit,
    'hours-report': HoursReport,
    exports: Exports,
    invalid: InvalidRecords,
    settings: Settings,
    territory: TerritoryPage,
    sites: Sites,
    people: People,
    invitations: Invitations,
  }[page];
  return html`<${Header} who=${who} territory=${territory} role=${role} page=${page} />
    <main id="main" tabindex="-1" data-readonly=${canDecide ? 'false' : 'true'}>
      ${!canDecide && html`<p class="notice" role="note">${t('role.readonly')}</p>`}
      ${body ? html`<${body} ...${props} />` : html`<p>${t('common.none')}</p>`}
    </main>`;
}

function App() {
  const token = useValue(credential);
  const who = useValue(me);
  const where = useValue(route);
  useValue(language);
  useEffect(() => {
    document.title = t('app.title');
  });
  if (!token) {
    return where.page === 'reset' ? html`<${ResetPassword} />` : html`<${Login} />`;
  }
  if (!who) return html`<p>${t('common.loading')}</p>`;
  if (where.territoryId) {
    return html`<${TerritoryPages} who=${who} ...${where} />`;
  }
  if (where.page === 'accounts' && who.isAdmin) {
    return html`<${Header} who=${who} page="accounts" />
      <main id="main" tabindex="-1"><${Accounts} who=${who} /></main>`;
  }
  if (where.page === 'account') {
    return html`<${Header} who=${who} page="account" />
      <main id="main" tabindex="-1"><${Account} isAdmin=${who.isAdmin} /></main>`;
  }
  return html`<${Header} who=${who} />
    <main id="main" tabindex="-1"><${Territories} who=${who} /></main>`;
}

loadMe();
render(html`<${App} />`, document.getElementById('app'));
