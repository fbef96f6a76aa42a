// The i18n core both apps use: French first (the people the service serves
// work in French), English second. Each app brings its own messages; the
// labels of the record vocabulary (vocabulary.js) are added to both. The
// language is the one chosen earlier (kept in localStorage, shared by both
// apps of an origin), else the browser's, else French.
import { signal } from './state.js';
import { vocabularyMessages } from './vocabulary.js';

const CHOSEN_KEY = 'fieldnotes.lang';

/**
 * The translation functions over `messages` (`{ fr: {key: text}, en: … }`):
 * `t(key, vars)` gives the text in the current language (French, then the
 * key itself, when it is missing), `{name}` replaced from `vars`.
 */
export function createI18n(messages) {
  const dictionaries = Object.fromEntries(
    Object.entries(messages).map(([lang, texts]) => [lang, { ...vocabularyMessages(lang), ...texts }]),
  );
  const fallback = dictionaries.fr;

  function initialLanguage() {
    const chosen = localStorage.getItem(CHOSEN_KEY);
    if (chosen && dictionaries[chosen]) return chosen;
    const browser = (navigator.languages || [navigator.language || 'fr'])
      .map((tag) => String(tag).slice(0, 2).toLowerCase())
      .find((tag) => dictionaries[tag]);
    return browser || 'fr';
  }

  /** The current language; components that `useValue` it re-render when it changes. */
  const language = signal(initialLanguage());
  document.documentElement.lang = language.get();

  function setLanguage(lang) {
    localStorage.setItem(CHOSEN_KEY, lang);
    document.documentElement.lang = lang;
    language.set(lang);
  }

  function t(key, vars = {}) {
    const text = dictionaries[language.get()][key] ?? fallback[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
  }

  /** Whether a text exists for `key`. */
  function has(key) {
    return key in dictionaries[language.get()] || key in fallback;
  }

  const locale = () => (language.get() === 'fr' ? 'fr-FR' : 'en-GB');

  /** A date (and time) in the current language's usual form. */
  function formatDate(value, withTime = true) {
    if (!value) return '';
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    const options = withTime ? { dateStyle: 'medium', timeStyle: 'short' } : { dateStyle: 'medium' };
    return new Intl.DateTimeFormat(locale(), options).format(date);
  }

  function formatTime(value) {
    return new Intl.DateTimeFormat(locale(), { timeStyle: 'short' }).format(new Date(value));
  }

  function formatNumber(value, digits = 0) {
    return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
  }

  /** An amount in euros, given in cents (integers: no rounding drift). */
  function formatEuros(cents) {
    return new Intl.NumberFormat(locale(), { style: 'currency', currency: 'EUR' }).format(cents / 100);
  }

  return { language, setLanguage, t, has, formatDate, formatTime, formatNumber, formatEuros };
}
