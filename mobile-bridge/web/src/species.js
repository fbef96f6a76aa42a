// The species field: an ARIA 1.2 combobox over the territory's species list,
// searched on the phone (no network): every word typed must start a word of
// the vernacular or the scientific name, accents and case ignored. Choosing a
// species fills scientificName, vernacularName and taxonID; a name that is not
// in the list is kept as typed (scientificName only).
import { useMemo, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { t } from './i18n.js';
import { useValue } from '../../../server/web/shared/state.js';
import { speciesList } from './sync.js';

const MAX_OPTIONS = 30;

export function fold(text) {
  return String(text || '')
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
}

/** The list document's species as `[{ key, scientificName, vernacularName, taxonId, words }]`. */
function entries(doc) {
  const species = (doc && doc.species) || {};
  return Object.entries(species)
    .filter(([, s]) => s && s.scientificName)
    .map(([key, s]) => ({
      key,
      scientificName: String(s.scientificName),
      vernacularName: s.vernacularName ? String(s.vernacularName) : '',
      taxonId: Number.isInteger(s.taxonId) && s.taxonId > 0 ? s.taxonId : null,
      rank: s.rank || '',
      words: fold(`${s.vernacularName || ''} ${s.scientificName}`).split(/[^a-z0-9]+/).filter(Boolean),
      sortKey: fold(s.vernacularName || s.scientificName),
    }))
    .sort((a, b) => a.sortKey.localeCompare(b.sortKey));
}

export function search(list, query) {
  const terms = fold(query).split(/[^a-z0-9]+/).filter(Boolean);
  if (!terms.length) return [];
  const out = [];
  for (const entry of list) {
    if (terms.every((term) => entry.words.some((word) => word.startsWith(term)))) {
      out.push(entry);
      if (out.length >= MAX_OPTIONS) break;
    }
  }
  return out;
}

export function label(s) {
  return s.vernacularName ? `${s.vernacularName} (${s.scientificName})` : s.scientificName;
}

/**
 * `value`: `{ scientificName, vernacularName, taxonId }`; `onChange(value)`.
 */
export function SpeciesCombobox({ id, value, onChange, invalid, describedBy }) {
  const doc = useValue(speciesList);
  const list = useMemo(() => entries(doc), [doc]);
  const [query, setQuery] = useState(value.scientificName ? label(value) : '');
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const input = useRef(null);
  const options = useMemo(() => search(list, query), [list, query]);
  const listId = `${id}-listbox`;
  const expanded = open && options.length > 0;

  const choose = (s) => {
    onChange({ scientificName: s.scientificName, vernacularName: s.vernacularName || '', taxonId: s.taxonId });
    setQuery(label(s));
    setOpen(false);
    setActive(-1);
    input.current && input.current.focus();
  };

  const onInput = (e) => {
    const text = e.currentTarget.value;
    setQuery(text);
    setOpen(true);
    setActive(-1);
    onChange({ scientificName: text.trim(), vernacularName: '', taxonId: null });
  };

  const onKeyDown = (e) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setOpen(true);
      setActive((i) => Math.min(i + 1, options.length - 1));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((i) => Math.max(i - 1, 0));
    } else if (e.key === 'Enter' && expanded && active >= 0) {
      e.preventDefault();
      choose(options[active]);
    } else if (e.key === 'Escape') {
      setOpen(false);
      setActive(-1);
    }
  };

  const hintId = `${id}-hint`;
  const statusText = !list.length
    ? t('field.speciesListEmpty')
    : query.trim() && open
      ? options.length
        ? t('field.speciesCount', { n: options.length })
        : t('field.speciesNone')
      : '';
  return html`<div class="combobox">
    <input id=${id} ref=${input} type="text" role="combobox" autocomplete="off" autocapitalize="off"
      spellcheck=${false} data-testid="species-combobox"
      aria-autocomplete="list" aria-expanded=${expanded ? 'true' : 'false'} aria-controls=${listId}
      aria-activedescendant=${expanded && active >= 0 ? `${id}-opt-${active}` : undefined}
      aria-describedby=${[hintId, describedBy].filter(Boolean).join(' ')} aria-invalid=${invalid ? 'true' : undefined}
      value=${query} onInput=${onInput} onKeyDown=${onKeyDown}
      onFocus=${() => setOpen(true)} onBlur=${() => setTimeout(() => setOpen(false), 150)} />
    <ul id=${listId} role="listbox" aria-label=${t('field.species')} class="options" hidden=${!expanded}>
      ${expanded &&
      options.map(
        (s, i) => html`<li id=${`${id}-opt-${i}`} role="option" aria-selected=${i === active ? 'true' : 'false'}
          class=${i === active ? 'active' : ''} data-testid="species-option" data-scientific-name=${s.scientificName}
          onMouseDown=${(e) => e.preventDefault()} onClick=${() => choose(s)}>
          ${s.vernacularName ? html`<span class="vern">${s.vernacularName}</span> ` : null}<i lang="la">${s.scientificName}</i>
        </li>`,
      )}
    </ul>
    <p id=${hintId} class="hint" aria-live="polite">${statusText || t('field.speciesHint')}</p>
  </div>`;
}
