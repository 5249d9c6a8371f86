// The honest padlock: it says "encrypted" only while the engine says so
// ("warning": still encrypted, but the relay is not ordering our changes;
// "reconnecting": the relay link is being restored, nothing is sent), and
// a frame that failed to decrypt is named, with its sender, in a warning.

import { h, icon } from './dom.js';
import { t, tParts } from '../i18n.js';

// Each state's label and detail are catalogue keys: padlock.<state>, padlock.<state>Detail.

const CLASSES = { // also the states there are
  encrypted: 'is-encrypted',
  warning: 'is-warning',
  rekeying: 'is-rekeying',
  reconnecting: 'is-reconnecting',
  not_encrypted: 'is-not',
  unknown: 'is-not',
};
const ALERT_HIDE_MS = 15000;

export class Padlock {
  constructor({ label, button, detail, warnDot, alerts, onShowDetails }) {
    this.label = label;
    this.button = button;
    this.detail = detail;
    this.warnDot = warnDot;
    this.alerts = alerts;
    this.state = 'unknown';
    this.failures = new Map(); // sender -> {count, el, textEl, timer}
    button.addEventListener('click', () => onShowDetails?.());
    this.set('unknown', '');
  }

  set(state, detail) {
    const key = state in CLASSES ? state : 'not_encrypted';
    this.state = key;
    this.label.dataset.state = key === 'unknown' ? 'not_encrypted' : key;
    const label = t(`padlock.${key}`);
    if (this.label.textContent !== label) this.label.textContent = label;
    for (const cls of Object.values(CLASSES)) this.button.classList.remove(cls);
    this.button.classList.add(CLASSES[key]);
    const about = t(`padlock.${key}Detail`);
    const text = detail ? `${about} (${detail})` : about;
    this.detail.textContent = text;
    this.button.title = text;
  }

  /** A frame from `sender` could not be decrypted: warn, naming them. */
  frameFailed({ sender, name, reason }) {
    const key = sender === null ? `name:${name}` : String(sender);
    let entry = this.failures.get(key);
    const who = name || (sender === null ? t('padlock.someone') : t('padlock.participant', { leaf: sender }));
    if (!entry) {
      const textEl = h('span', { class: 'alert-text' });
      const close = h('button', { type: 'button', class: 'icon-btn', 'aria-label': t('padlock.dismiss') }, icon('close'));
      const el = h('div', { class: 'alert', role: 'alert', dataset: { sender: key } }, icon('warn'), textEl, close);
      entry = { count: 0, el, textEl, timer: 0 };
      close.addEventListener('click', () => this._dismiss(key));
      this.failures.set(key, entry);
      this.alerts.append(el);
    }
    entry.count++;
    const frames = entry.count === 1 ? t('padlock.oneFrame') : t('padlock.frames', { count: entry.count });
    if (/not authenticated/.test(reason || '')) {
      // Media authentication: someone sent frames under this person's key id that
      // this person did not sign (or their signature never came). Never played.
      entry.el.dataset.kind = 'unauthenticated';
      entry.textEl.replaceChildren(...tParts('padlock.unauthenticated', { who: h('strong', null, who), frames }));
    } else {
      // The engine's reason is for engineers (the console); people get what it means.
      if (reason) console.warn('clave: could not decrypt media from leaf', sender, reason);
      entry.textEl.replaceChildren(...tParts('padlock.undecryptable', { who: h('strong', null, who), frames }));
    }
    this.warnDot.hidden = false;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this._dismiss(key), ALERT_HIDE_MS);
  }

  _dismiss(key) {
    const entry = this.failures.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.el.remove();
    this.failures.delete(key);
    if (!this.failures.size) this.warnDot.hidden = true;
  }

  /** Senders with a live decryption warning (for tiles). */
  failingSenders() {
    return [...this.failures.keys()];
  }
}
