// Recording: "● Recording by <name>" for everyone (members whose authenticated media
// switches say they record, from the engine's `state`), and a host's Record control:
// the engine writes the file (`record` to the engine; `recording` tells us its path).

import { $, h } from './dom.js';
import { toast } from './toast.js';

/** The banner's text for these roster entries (those recording), or ''. */
export function recordingText(roster) {
  const names = roster.filter((m) => m.recording).map((m) => (m.is_self ? 'you' : m.name));
  if (!names.length) return '';
  const last = names.pop();
  return `\u25CF Recording by ${names.length ? `${names.join(', ')} and ${last}` : last}`;
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
    this.label = h('span', { class: 'ctrl-label' }, 'Record');
    this.button = h('button', {
      type: 'button', id: 'toggle-record', class: 'ctrl ctrl-flat ctrl-record', 'aria-pressed': 'false',
      title: 'Record the meeting on this computer (everyone is told)', onclick: () => this.toggle(),
    }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), this.label);
    this.button.hidden = true;
    $('#toggle-people').before(this.button);
  }

  toggle() {
    if (!this.send({ type: 'record', on: !this.on })) this.onError('Not connected: could not change the recording.');
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
    this.label.textContent = on ? 'Stop recording' : 'Record';
  }

  /** The engine's `recording`: our own recording started or stopped. */
  own(msg) {
    const was = this.reported;
    this.reported = msg.on;
    this.path = msg.path;
    this._show(msg.on);
    if (msg.path) {
      this.button.dataset.path = msg.path;
      this.button.title = msg.on ? `Stop recording (writing ${msg.path})` : `Record again (last file: ${msg.path})`;
    }
    if (msg.on && !was) toast(`Recording: everyone sees that you record. The file is ${msg.path}`, { ms: 8000 });
    if (!msg.on && was) toast(`Recording saved to ${msg.path}`, { kind: 'ok', ms: 10000 });
  }
}
