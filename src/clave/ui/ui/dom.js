// Small DOM helpers: element creation without innerHTML (text is always text).

import { language } from '../i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** $('#id') shorthand that throws a clear error if the page is missing a part. */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

/**
 * h('div', {class: 'x', dataset: {a: 1}, onclick: fn}, 'text', child, ...)
 * Strings become text nodes; null/false children are skipped.
 */
export function h(tag, attrs = null, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An <svg class="icon"><use href="#i-name"></svg> referencing the sprite in index.html. */
export function icon(name, extraClass = '') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', extraClass ? `icon ${extraClass}` : 'icon');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

/** Initials for an avatar: "Ada Lovelace" -> "AL", "bob" -> "B". */
export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  if (!words.length) return '?';
  const first = Array.from(words[0])[0] || '?';
  const last = words.length > 1 ? Array.from(words[words.length - 1])[0] || '' : '';
  return (first + last).toUpperCase();
}

const AVATAR_COLORS = ['#4c6ef5', '#7950f2', '#d6336c', '#e8590c', '#2b8a3e', '#1098ad', '#5c7cfa', '#ae3ec9', '#f08c00', '#0ca678'];

/** A stable colour per participant (by leaf index or name). */
export function avatarColor(key) {
  const s = String(key);
  let hash = 0;
  for (let i = 0; i < s.length; i++) hash = (hash * 31 + s.charCodeAt(i)) | 0;
  return AVATAR_COLORS[Math.abs(hash) % AVATAR_COLORS.length];
}

/** "14:05" in the user's locale (the page's language's, when it is not English). */
export function clockTime(date) {
  const lang = language();
  return date.toLocaleTimeString(lang === 'en' ? [] : lang, { hour: '2-digit', minute: '2-digit' });
}

/**
 * Keyed update of a list: `items` are {key, sig, build()} in display order. An
 * element whose key and signature are unchanged is kept as it is (so keyboard
 * focus on one of its buttons survives the engine's state updates); a changed
 * one is rebuilt, and if focus was inside it, focus moves to the rebuilt
 * element's control with the same `data-focus` value. Elements carry
 * `data-key` and `data-sig`.
 *
 * If the focused element's entry is gone, focus goes to `fallback` (if given
 * and visible), never to a neighbour's buttons: a keyboard user about to press
 * Enter on "Admit Bob" must not admit Carol because Bob's request vanished.
 * So keys must name a person, not a position (a leaf index can be reused).
 */
export function syncKeyed(list, items, fallback = null) {
  const active = document.activeElement;
  const focusLi = active && list.contains(active) ? active.closest('[data-key]') : null;
  const focusKey = focusLi ? focusLi.dataset.key : null;
  const focusName = focusLi ? active.dataset.focus || null : null;

  const shown = new Map([...list.children].map((el) => [el.dataset.key, el]));
  const elements = items.map(({ key, sig, build }) => {
    const kept = shown.get(key);
    if (kept && kept.dataset.sig === sig) return kept;
    const el = build();
    el.dataset.key = key;
    el.dataset.sig = sig;
    return el;
  });
  const wanted = new Set(elements);
  for (const el of [...list.children]) if (!wanted.has(el)) el.remove();
  elements.forEach((el, i) => {
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] ?? null);
  });

  if (!focusLi || document.activeElement === active) return;
  // Same entry: the same control (kept but moved, or rebuilt); otherwise the fallback.
  const li = elements.find((el) => el.dataset.key === focusKey);
  const candidates = [fallback];
  if (li && focusName) candidates.unshift(li.querySelector(`[data-focus="${CSS.escape(focusName)}"]`));
  if (li && li.contains(active)) candidates.unshift(active);
  const target = candidates.find((el) => el && !el.disabled && el.getClientRects().length > 0);
  target?.focus();
}
