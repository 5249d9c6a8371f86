// A host's moderation as the target sees it: "<host> asks you to unmute" (the
// user chooses; nothing is unmuted without their click) and "Muted by <host>"
// (the engine sends no audio until the user unmutes; the page turns the
// microphone off too). The host's buttons are in the People panel (panels.js).

import { stats } from '../stats.js';
import { $, h, icon } from './dom.js';
import { t } from '../i18n.js';

export class ModerationView {
  /** controls: LocalControls (micOn, toggleMic()). */
  constructor({ controls }) {
    this.controls = controls;
    this.mutedBy = null;
    stats.unmuteRequests = []; // {by, name}: asks to unmute shown
    stats.mutedBy = null;
    this.askText = h('span', { id: 'unmute-ask-text' });
    this.ask = h('div', { id: 'unmute-ask', class: 'alert alert-moderation', role: 'alertdialog', 'aria-labelledby': 'unmute-ask-text', hidden: true },
      icon('mic'),
      h('span', { class: 'alert-text' }, this.askText),
      h('button', { type: 'button', id: 'unmute-accept', class: 'btn btn-small btn-admit', onclick: () => this._accept() }, t('controls.unmute')),
      h('button', { type: 'button', id: 'unmute-decline', class: 'btn btn-small btn-ghost', onclick: () => this._closeAsk() }, t('moderation.stayMuted')));
    this.mutedText = h('span', { id: 'muted-by-text' });
    this.muted = h('div', { id: 'muted-by', class: 'alert alert-moderation', role: 'status', hidden: true },
      icon('mic-off'),
      h('span', { class: 'alert-text' }, this.mutedText),
      h('button', { type: 'button', id: 'muted-unmute', class: 'btn btn-small btn-soft', onclick: () => this._unmute() }, t('controls.unmute')));
    $('#alerts').append(this.ask, this.muted);
  }

  /** A host asks us to unmute: shown; only the user's click unmutes. */
  unmuteRequest(msg) {
    stats.unmuteRequests.push({ by: msg.by, name: msg.name });
    if (this.controls.micOn && !this.mutedBy) return; // already on: nothing to ask
    this.askText.textContent = t('moderation.ask', { name: msg.name });
    this.ask.hidden = false;
    const typing = document.activeElement?.closest?.('input, textarea, select, [contenteditable]');
    if (!typing) $('#unmute-accept').focus(); // never steal focus from what the user types
  }

  /** From each `state`: a host's mute, until we unmute ourselves. */
  render(msg) {
    const inMeeting = msg.phase === 'in_meeting';
    const by = inMeeting ? msg.muted_by || null : null;
    if (!inMeeting) this._closeAsk();
    const before = this.mutedBy;
    this.mutedBy = by;
    stats.mutedBy = by;
    this.muted.hidden = !by;
    if (by) this.mutedText.textContent = t('moderation.mutedBy', { name: by });
    if (by && !before && this.controls.micOn) this.controls.toggleMic(); // the engine sends none anyway
  }

  async _accept() {
    this._closeAsk();
    await this._unmute();
  }

  async _unmute() {
    if (!this.controls.micOn) await this.controls.toggleMic(); // media_state {mic: true} ends a mute
  }

  _closeAsk() {
    this.ask.hidden = true;
  }
}
