// Toasts: short, non-blocking messages; errors never become uncaught exceptions.

import { h, icon } from './dom.js';

const MAX_TOASTS = 4;
let root = null;
const recent = new Map(); // message -> time, to collapse repeats

export function initToasts(el) {
  root = el;
}

/** toast('Copied', {kind: 'ok' | 'info' | 'error', ms}) */
export function toast(message, { kind = 'info', ms = 5000, iconName = null } = {}) {
  const text = String(message).slice(0, 300);
  const now = performance.now();
  if ((recent.get(text) ?? -1e9) > now - 3000) return; // same message within 3 s: once
  recent.set(text, now);
  if (recent.size > 50) recent.clear();
  if (!root) {
    console.warn(text);
    return;
  }
  const name = iconName || (kind === 'error' ? 'warn' : kind === 'ok' ? 'check' : 'shield');
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    icon(name), h('span', null, text));
  root.append(el);
  while (root.children.length > MAX_TOASTS) root.firstElementChild.remove();
  setTimeout(() => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 300);
  }, ms);
}

export function toastError(message) {
  toast(message, { kind: 'error', ms: 7000 });
}
