// The glass's words in one catalogue per language (i18n/en.js, i18n/de.js), with
// English as the fallback for any string a language lacks.
//
// t(key, params) gives the current language's string with its {name} placeholders
// filled in; tParts(key, params) the same as a list of strings and DOM nodes (for h()),
// so a parameter may be an element (a name in <strong>). Parameters are always text
// (or the caller's own nodes): nothing here ever parses HTML. A key that even English
// lacks shows as the key itself and is recorded in window.claveStats.i18nMissing.
//
// The language: ?lang=xx in the page's address, else the one chosen before (this
// browser's localStorage, "clave.lang"), else the browser's language if there is a
// catalogue for it, else English. setLanguage() remembers a choice and reloads the
// page (the engine keeps the meeting across a reload). Engine sentences (why a meeting
// ended, an engine error) stay as the engine wrote them, in English.

import EN from './i18n/en.js';
import DE from './i18n/de.js';
import { stats } from './stats.js';
import { remember } from './ui/remembered.js';

export const CATALOGUES = Object.freeze({ en: EN, de: DE });
/** [code, the language's own name], as the language selector lists them. */
export const LANGUAGES = Object.freeze([['en', 'English'], ['de', 'Deutsch']]);
const STORE_KEY = 'clave.lang';

function supported(code) {
  const base = String(code || '').toLowerCase().split(/[-_]/)[0];
  return Object.hasOwn(CATALOGUES, base) ? base : null;
}

function stored() {
  try { return globalThis.localStorage?.getItem(STORE_KEY) || null; } catch { return null; }
}

/** The language this page shows: address, then the remembered choice, then the browser's. */
export function chooseLanguage() {
  let asked = null;
  try { asked = new URLSearchParams(globalThis.location?.search || '').get('lang'); } catch { /* none */ }
  return supported(asked) || supported(stored()) || supported(globalThis.navigator?.language) || 'en';
}

const lang = chooseLanguage();
const current = CATALOGUES[lang];

const missing = [];
function recordMissing(key) {
  if (missing.includes(key)) return;
  missing.push(key);
  stats.i18nMissing = missing.slice();
  console.warn('clave: no text for', key);
}

export function language() {
  return lang;
}

/** The template for `key`: this language's, else English, else null. */
function template(key) {
  if (Object.hasOwn(current, key)) return current[key];
  if (Object.hasOwn(EN, key)) return EN[key];
  return null;
}

/** `key`'s text with {name} placeholders from `params` (inserted as plain text). */
export function t(key, params = null) {
  return tParts(key, params).map((part) => (typeof part === 'string' ? part : part.textContent)).join('');
}

/** `key`'s text as parts: strings and, where a parameter is a DOM node, that node. */
export function tParts(key, params = null) {
  const text = template(key);
  if (text === null) {
    recordMissing(key);
    return [key];
  }
  if (!params) return [text];
  const parts = [];
  let at = 0;
  for (const match of text.matchAll(/\{(\w+)\}/g)) {
    if (!Object.hasOwn(params, match[1])) continue;
    if (match.index > at) parts.push(text.slice(at, match.index));
    const value = params[match[1]];
    parts.push(typeof Node !== 'undefined' && value instanceof Node ? value : String(value));
    at = match.index + match[0].length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts.length ? parts : [''];
}

/**
 * Fill `root`'s static text: data-i18n="key" sets an element's text; data-i18n-attr=
 * "aria-label:key;title:key2" sets attributes. Also <html lang>.
 */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const text = t(el.dataset.i18n);
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
  if (root === document) document.documentElement.lang = lang;
}

/** The engine's kept language (hello): a page whose address names one (?lang=, for
 * that page only) keeps it; one chosen on this address before is told to the engine;
 * otherwise the page switches to the kept one (a reload, once per address). True if
 * it reloads. */
export function adoptLanguage(kept) {
  let asked = null;
  try { asked = new URLSearchParams(globalThis.location?.search || '').get('lang'); } catch { /* none */ }
  if (supported(asked)) return false;
  const own = supported(stored());
  if (own) {
    remember({ lang: own });
    return false;
  }
  const wanted = supported(kept);
  if (!wanted || wanted === lang) return false;
  setLanguage(wanted);
  return true;
}

/** Remember `code` as this browser's choice and show the page in it (a reload: the
 * engine keeps the meeting, and every text is drawn anew). */
export function setLanguage(code) {
  const chosen = supported(code) || 'en';
  try { localStorage.setItem(STORE_KEY, chosen); } catch { /* storage disabled: this page only */ }
  const url = new URL(location.href);
  url.searchParams.delete('lang'); // the choice, not the address, decides from now on
  if (chosen === lang && url.href === location.href) return;
  history.replaceState(history.state, '', url.href);
  location.reload();
}

/** A language <select>: the languages, the current one selected; a change switches. */
export function bindLanguageSelect(select, { beforeSwitch = null } = {}) {
  select.replaceChildren(...LANGUAGES.map(([code, name]) => {
    const option = document.createElement('option');
    option.value = code;
    option.lang = code;
    option.textContent = name;
    return option;
  }));
  select.value = lang;
  select.addEventListener('change', () => {
    beforeSwitch?.();
    setLanguage(select.value);
  });
}
