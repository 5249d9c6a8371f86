// Recording: "● Recording by <name>" for everyone (members whose authenticated media
// switches say they record, from the engine's `state`), and a host's Record control:
// the engine writes the file (`record` to the engine; `recording` tells us its path).

import { $, h } from './dom.js';
import { toast } from './toast.js';
import { t } from '../i18n.js';

/** The banner's text for these roster entries (those recording), or ''. */
export function recordingText(roster) {
  const names = roster.filter((m) => m.recording).map((m) => (m.is_self ? t('recording.you') : m.name));
  if (!names.length) return '';
  const last = names.pop();
  return t('recording.by', { names: names.length ? t('recording.and', { names: names.join(', '), last }) : last });
}

export class RecordingView {
  /** send(message): false if not connected; onError(message). */
  constructor({ send, onError }) {
    this.send = send;
    this.onError = onError;
    this.on = false; // what the button shows (from `state`, or `recording`)
    this.reported = false; // what the engine's last `recording` said (for the toasts)
    this.path = null;
    // Above the stage, with the other alerts: nobody in the meeting can miss it.
    this.banner = h('div', { id: 'recording-banner', class: 'alert alert-recording', role: 'status', 'aria-live': 'polite' });
    this.banner.hidden = true;
    $('#alerts').prepend(this.banner);
    this.label = h('span', { class: 'ctrl-label' }, t('recording.record'));
    this.button = h('button', {
      type: 'button', id: 'toggle-record', class: 'ctrl ctrl-flat ctrl-record', 'aria-pressed': 'false',
      title: t('recording.title'), onclick: () => this.toggle(),
    }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), this.label);
    this.button.hidden = true;
    $('#toggle-people').before(this.button);
  }

  toggle() {
    if (!this.send({ type: 'record', on: !this.on })) this.onError(t('recording.notConnected'));
  }

  /** One engine `state`: the banner for everyone, the control for hosts (or while we record). */
  render(msg) {
    const inMeeting = msg.phase === 'in_meeting';
    const text = inMeeting ? recordingText(msg.roster) : '';
    if (this.banner.textContent !== text) this.banner.textContent = text;
    this.banner.hidden = !text;
    const self = msg.roster.find((m) => m.is_self);
    if (inMeeting && self && Boolean(self.recording) !== this.on) this._show(Boolean(self.recording)); // a reload
    this.button.hidden = !inMeeting || !(msg.is_host || this.on);
  }

  _show(on) {
    this.on = on;
    this.button.setAttribute('aria-pressed', String(on));
    this.label.textContent = t(on ? 'recording.stop' : 'recording.record');
  }

  /** The engine's `recording`: our own recording started or stopped. */
  own(msg) {
    const was = this.reported;
    this.reported = msg.on;
    this.path = msg.path;
    this._show(msg.on);
    if (msg.path) {
      this.button.dataset.path = msg.path;
      this.button.title = t(msg.on ? 'recording.stopTitle' : 'recording.againTitle', { path: msg.path });
    }
    if (msg.on && !was) toast(t('recording.started', { path: msg.path }), { ms: 8000 });
    if (!msg.on && was) toast(t('recording.saved', { path: msg.path }), { kind: 'ok', ms: 10000 });
  }
}
