// The honest padlock: it says "encrypted" only while the engine says so
// ("warning": still encrypted, but the relay is not ordering our changes;
// "reconnecting": the relay link is being restored, nothing is sent), and
// a frame that failed to decrypt is named, with its sender, in a warning.

import { h, icon } from './dom.js';

const LABELS = {
  encrypted: 'End-to-end encrypted',
  warning: 'Encrypted, changes on hold',
  rekeying: 'Renegotiating keys…',
  reconnecting: 'Reconnecting…',
  not_encrypted: 'Not encrypted',
  unknown: 'Not encrypted yet',
};
const DETAILS = {
  encrypted: 'Audio, video and chat are encrypted with keys only the participants hold.',
  warning: 'Media is still end-to-end encrypted with the current keys, but the relay is not ordering '
    + 'our changes: joins, removals and new keys do not take effect until it does.',
  rekeying: 'The group is agreeing on new keys (someone joined or left). Media is held until it is done.',
  reconnecting: 'The connection to the relay was lost and is being restored. Media is paused: '
    + 'nothing is sent until it is back, and the meeting keys never left this computer.',
  not_encrypted: 'Nothing is being sent encrypted right now, so nothing is sent at all.',
  unknown: 'Waiting for the meeting keys.',
};
const CLASSES = {
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
    const key = state in LABELS ? state : 'not_encrypted';
    this.state = key;
    this.label.dataset.state = key === 'unknown' ? 'not_encrypted' : key;
    if (this.label.textContent !== LABELS[key]) this.label.textContent = LABELS[key];
    for (const cls of Object.values(CLASSES)) this.button.classList.remove(cls);
    this.button.classList.add(CLASSES[key]);
    const text = detail ? `${DETAILS[key]} (${detail})` : DETAILS[key];
    this.detail.textContent = text;
    this.button.title = text;
  }

  /** A frame from `sender` could not be decrypted: warn, naming them. */
  frameFailed({ sender, name, reason }) {
    const key = sender === null ? `name:${name}` : String(sender);
    let entry = this.failures.get(key);
    const who = name || (sender === null ? 'a participant' : `participant ${sender}`);
    if (!entry) {
      const textEl = h('span', { class: 'alert-text' });
      const close = h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss warning' }, icon('close'));
      const el = h('div', { class: 'alert', role: 'alert', dataset: { sender: key } }, icon('warn'), textEl, close);
      entry = { count: 0, el, textEl, timer: 0 };
      close.addEventListener('click', () => this._dismiss(key));
      this.failures.set(key, entry);
      this.alerts.append(el);
    }
    entry.count++;
    const frames = entry.count === 1 ? 'a frame' : `${entry.count} frames`;
    if (/not authenticated/.test(reason || '')) {
      // Media authentication: someone sent frames under this person's key id that
      // this person did not sign (or their signature never came). Never played.
      entry.el.dataset.kind = 'unauthenticated';
      entry.textEl.replaceChildren(
        'Media claiming to be from ',
        h('strong', null, who),
        ` could not be verified as theirs: ${frames} dropped, never shown. `,
        'Someone else may be trying to impersonate them.',
      );
    } else {
      // The engine's reason is for engineers (the console); people get what it means.
      if (reason) console.warn('clave: could not decrypt media from leaf', sender, reason);
      entry.textEl.replaceChildren(
        'Could not decrypt ',
        frames,
        ' from ',
        h('strong', null, who),
        '. Their media is being dropped, never shown unencrypted. If it goes on, ask them to '
          + 'leave and rejoin.',
      );
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
