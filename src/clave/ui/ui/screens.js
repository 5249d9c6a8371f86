// The page's four screens (pre-join, wait, meeting, ended) and the wait
// screen's texts: connecting, waiting in the lobby, rejoining.

import { $ } from './dom.js';
import { sentence } from './ended.js';

export class Screens {
  constructor() {
    this.all = {
      prejoin: $('#prejoin-screen'),
      wait: $('#wait-screen'),
      meeting: $('#meeting-screen'),
      ended: $('#ended-screen'),
    };
  }

  /** Show screen `name`; `phase` goes to #app's data-phase (for styles and tests). */
  show(name, phase) {
    for (const [key, el] of Object.entries(this.all)) el.hidden = key !== name;
    $('#app').dataset.phase = phase;
  }

  wait(title, text, phase) {
    $('#wait-title').textContent = title;
    $('#wait-text').textContent = text;
    $('#wait-fingerprint').hidden = true;
    this.show('wait', phase);
  }

  /** `rejoining`: why the engine is admitted afresh (it missed too much while away). */
  connecting(phase, rejoining = null) {
    if (rejoining) this.wait('Rejoining the meeting', `${sentence(rejoining)} Connecting again…`, phase);
    else this.wait('Connecting…', 'Setting up encryption keys with the meeting.', phase);
  }

  /** In the lobby, with our own identity fingerprint to read to the host if asked;
   * `rejoining`: why the engine is admitted afresh (it missed too much while away). */
  lobby(rejoining, fingerprint) {
    if (rejoining) {
      this.wait('Rejoining the meeting', `${sentence(rejoining)} A host lets you back in from `
        + 'the lobby. Keep this tab open.', 'lobby');
    } else {
      this.wait('Waiting to be let in',
        'The host has been told you are here, with your name and key fingerprint, and is deciding '
        + 'whether to let you in. Keep this tab open.', 'lobby');
    }
    $('#wait-fingerprint-value').textContent = fingerprint || '';
    $('#wait-fingerprint').hidden = !fingerprint;
  }
}
