// The "meeting ended" screen: why it ended, and, while the engine still runs, a
// Rejoin button that starts a fresh admission (same identity, same name).
//
// The engine says what Rejoin does (state.rejoin): "knock" asks through the
// lobby like any guest; "restart" is the meeting's owner, alone, starting its
// meeting again under the same invitation. An owner cannot re-create the MLS
// group while others are still in it, so with people left it knocks too.

import { $ } from './dom.js';
import { stats } from '../stats.js';

const OUTCOME_TITLES = {
  declined: 'Your request to join was declined',
  locked: 'The meeting is locked',
  full: 'The lobby is full',
};

/** "reason" as a sentence: capitalised, with a full stop. */
export function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return '';
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

const COULD_NOT_JOIN = 'could not join the meeting: ';
/** Headings that would claim a meeting we were never in had ended. */
const NEVER_IN = new Set(['Meeting ended', 'Connection lost', 'The relay refused to let you in']);

/** A heading for the ended screen: a host's lobby answer, else from the engine's reason. */
export function endedTitle(rawReason, outcome) {
  if (outcome && OUTCOME_TITLES[outcome]) return OUTCOME_TITLES[outcome];
  const r = String(rawReason || '').trim().toLowerCase();
  if (r.startsWith('the host declined')) return 'Your request to join was declined';
  if (r.startsWith('the meeting is locked')) return 'The meeting is locked';
  if (r.startsWith('the lobby is full')) return 'The lobby is full';
  if (r.startsWith('removed from the meeting')) return 'You were removed from the meeting';
  if (r.includes('invitation was replaced')) return 'The invitation was replaced';
  if (r.includes('to admit you') || r.includes('before you were admitted')) return 'Nobody could let you in';
  if (r.startsWith('the relay refused')) return 'The relay refused to let you in';
  if (r.startsWith('could not')) return 'Could not join the meeting';
  if (r.includes('connection to the relay was lost') || r.includes('relay')) return 'Connection lost';
  if (r.includes('tab was closed')) return 'You left the meeting';
  if (r.startsWith('you left')) return 'You left the meeting';
  return 'Meeting ended';
}

/**
 * The ended screen's heading and text. `joined`: true if we had been in the meeting
 * since the last Join, false if not (turned away, failed, cancelled while waiting), null
 * if unknown (this tab was opened after the end): "Meeting ended" is said only for a
 * meeting we were in.
 */
export function describeEnd(rawReason, outcome, joined) {
  let title = endedTitle(rawReason, outcome);
  const raw = String(rawReason || '').trim();
  let text = raw.toLowerCase().startsWith(COULD_NOT_JOIN)
    ? sentence(raw.slice(COULD_NOT_JOIN.length))
    : sentence(raw);
  if (joined !== true) {
    if (title === 'You left the meeting' && joined === false) title = 'You stopped waiting to join';
    else if (NEVER_IN.has(title)) title = joined === false ? 'Could not join the meeting' : 'You are not in the meeting';
  }
  if (!text) text = joined === false ? 'Clave could not get you into the meeting.' : 'The meeting has ended.';
  if (joined === null && title === 'You are not in the meeting' && !raw) text = '';
  return { title, text };
}

/** What Rejoin will do, in words (mode from the engine; wasHost: this engine hosted). */
function rejoinExplanation(mode, wasHost, outcome) {
  if (mode === 'restart') {
    return 'Nobody else is in the meeting: Rejoin starts it again under the same invitation, '
      + 'so the people you invited can use it again.';
  }
  if (wasHost) {
    return 'Others may still be in the meeting, and the keys are theirs now: you ask to join '
      + 'again through the lobby, like a guest, and a host there lets you in. You come back '
      + 'without the host role unless a host gives it back. If nobody is left, Rejoin starts '
      + 'the meeting again.';
  }
  if (outcome === 'declined') return 'Ask again: a host sees your name and key fingerprint again and decides.';
  return 'Rejoin asks to join again: a host lets you in from the lobby, and the security code '
    + 'changes for everyone.';
}

export class EndedScreen {
  /** handlers: onRejoin() */
  constructor({ onRejoin }) {
    this.title = $('#ended-title');
    this.text = $('#ended-text');
    this.box = $('#rejoin-box');
    this.button = $('#rejoin');
    this.explain = $('#rejoin-text');
    this.hint = $('#ended-hint');
    this.button.addEventListener('click', () => onRejoin());
  }

  /** Show why; `rejoin`: {mode, wasHost, outcome} while the engine can start again, else null. */
  show(heading, text, rejoin) {
    stats.ended = { title: heading, text: text || '' };
    this.title.textContent = heading;
    this.text.textContent = text || '';
    this.text.hidden = !text;
    this.setRejoin(rejoin);
  }

  setRejoin(rejoin) {
    this.box.hidden = !rejoin;
    this.button.disabled = false;
    if (rejoin) {
      this.button.textContent = rejoin.outcome === 'declined' ? 'Ask again' : 'Rejoin';
      this.explain.textContent = rejoinExplanation(rejoin.mode, rejoin.wasHost, rejoin.outcome);
      this.hint.textContent = 'Or close this tab: Clave on this computer then stops.';
    } else {
      this.hint.textContent = 'You can close this tab.';
    }
  }

  setBusy() {
    this.button.disabled = true;
  }
}
