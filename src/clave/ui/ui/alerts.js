// Security alerts: the engine refused something only an attack explains. They
// stay until dismissed (the engine sends them again to a reloaded tab), and
// they are shown on every screen: a counterfeit Welcome arrives while waiting
// in the lobby, and a reloaded tab may already be on the "ended" screen.

import { h, icon } from './dom.js';
import { t } from '../i18n.js';

// The kinds the page knows; each has a title and advice in the catalogue
// (alert.<kind>.title, alert.<kind>.advice). Others get alert.unknown.title.
const KINDS = new Set(['counterfeit_welcome', 'forged_reply', 'unexpected_rotation', 'refused_takeover']);

function kindText(kind) {
  if (!KINDS.has(kind)) return { title: t('alert.unknown.title'), advice: '' };
  return { title: t(`alert.${kind}.title`), advice: t(`alert.${kind}.advice`) };
}
const MAX_ALERTS = 20;
let serial = 0;

function sentence(text) {
  const s = String(text || '').trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
}

/** What the alert says beyond its title and advice. The engine's message ends with
 * the refused input's technical error, for the console only; of a known kind only who
 * tried is shown (a takeover names them). */
function plainText(kind, message) {
  if (!KINDS.has(kind)) return sentence(message); // the engine's words (English)
  const who = /^(.{1,80}) tried to act as a host\b/.exec(String(message || ''));
  return kind === 'refused_takeover' && who ? t('alert.triedHost', { name: who[1] }) : '';
}

export class SecurityAlerts {
  /** root: an element with aria-live="assertive" (#security-alerts). */
  constructor(root, { onChange = null } = {}) {
    this.root = root;
    this.onChange = onChange;
    this.entries = new Map(); // kind + message -> {el, count, countEl}
  }

  get size() {
    return this.entries.size;
  }

  /** One alert from the engine ({kind, message}); a repeat counts up instead. */
  add({ kind, message }) {
    const key = `${kind}\u0000${message}`;
    const known = this.entries.get(key);
    if (known) {
      known.count++;
      known.countEl.textContent = t('alert.times', { count: known.count });
      return;
    }
    const info = kindText(kind);
    console.warn('clave: security alert:', kind, message);
    const text = plainText(kind, message);
    const id = `security-alert-${++serial}`;
    const countEl = h('span', { class: 'alert-count' });
    const close = h('button', {
      type: 'button', class: 'icon-btn', 'aria-label': t('alert.dismiss', { title: info.title }),
      dataset: { dismissAlert: kind },
    }, icon('close'));
    const el = h('div', {
      class: 'alert alert-security', role: 'group', 'aria-labelledby': id, dataset: { alertKind: kind },
    },
      icon('warn'),
      h('div', { class: 'alert-body' },
        h('strong', { class: 'alert-title', id },
          h('span', { class: 'visually-hidden' }, t('alert.security')), info.title, countEl),
        text ? h('span', { class: 'alert-text' }, text) : null,
        info.advice ? h('span', { class: 'alert-advice' }, info.advice) : null),
      close);
    close.addEventListener('click', () => this._dismiss(key));
    this.entries.set(key, { el, count: 1, countEl });
    this.root.append(el);
    while (this.entries.size > MAX_ALERTS) this._dismiss(this.entries.keys().next().value);
    this.onChange?.(this.entries.size);
  }

  _dismiss(key) {
    const entry = this.entries.get(key);
    if (!entry) return;
    const hadFocus = entry.el.contains(document.activeElement);
    const next = entry.el.nextElementSibling || entry.el.previousElementSibling;
    entry.el.remove();
    this.entries.delete(key);
    // Keep keyboard users where they were: on the next alert's dismiss button.
    if (hadFocus) next?.querySelector('button')?.focus();
    this.onChange?.(this.entries.size);
  }
}
