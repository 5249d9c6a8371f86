// The page's four screens (pre-join, wait, meeting, ended) and the wait
// screen's texts: connecting, waiting in the lobby, rejoining.

import { $ } from './dom.js';
import { sentence } from './ended.js';
import { t } from '../i18n.js';

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
    if (rejoining) this.wait(t('wait.rejoiningTitle'), t('wait.rejoiningConnecting', { reason: sentence(rejoining) }), phase);
    else this.wait(t('wait.connecting'), t('wait.settingUp'), phase);
  }

  /** In the lobby, with our own identity fingerprint to read to the host if asked;
   * `rejoining`: why the engine is admitted afresh (it missed too much while away). */
  lobby(rejoining, fingerprint) {
    if (rejoining) {
      this.wait(t('wait.rejoiningTitle'), t('wait.rejoiningLobby', { reason: sentence(rejoining) }), 'lobby');
    } else {
      this.wait(t('wait.lobbyTitle'), t('wait.lobbyText'), 'lobby');
    }
    $('#wait-fingerprint-value').textContent = fingerprint || '';
    $('#wait-fingerprint').hidden = !fingerprint;
  }
}
