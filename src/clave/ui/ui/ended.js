// The "meeting ended" screen: why it ended, and, while the engine still runs, a
// Rejoin button that starts a fresh admission (same identity, same name).
//
// The engine says what Rejoin does (state.rejoin): "knock" asks through the
// lobby like any guest; "restart" is the meeting's owner, alone, starting its
// meeting again under the same invitation. An owner cannot re-create the MLS
// group while others are still in it, so with people left it knocks too.

import { $ } from './dom.js';
import { stats } from '../stats.js';
import { t } from '../i18n.js';

// Headings are catalogue keys (i18n.js) until they are shown.
const OUTCOME_TITLES = {
  declined: 'ended.declined',
  locked: 'ended.locked',
  full: 'ended.full',
};

/** "reason" as a sentence: capitalised, with a full stop. */
export function sentence(text) {
  const s = String(text || '').trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
}

const COULD_NOT_JOIN = 'could not join the meeting: ';
/** Headings that would claim a meeting we were never in had ended. */
const NEVER_IN = new Set(['ended.ended', 'ended.connectionLost', 'ended.relayRefused']);

/** The key of a heading for the ended screen: a host's lobby answer, else from the
 * engine's reason (English, as the engine wrote it). */
export function endedTitleKey(rawReason, outcome) {
  if (outcome && OUTCOME_TITLES[outcome]) return OUTCOME_TITLES[outcome];
  const r = String(rawReason || '').trim().toLowerCase();
  if (r.startsWith('the host declined')) return 'ended.declined';
  if (r.startsWith('the meeting is locked')) return 'ended.locked';
  if (r.startsWith('the lobby is full')) return 'ended.full';
  if (r.startsWith('removed from the meeting')) return 'ended.removed';
  if (r.includes('invitation was replaced')) return 'ended.replaced';
  if (r.includes('to admit you') || r.includes('before you were admitted')) return 'ended.nobody';
  if (r.startsWith('the relay refused')) return 'ended.relayRefused';
  if (r.startsWith('could not')) return 'ended.couldNotJoin';
  if (r.includes('connection to the relay was lost') || r.includes('relay')) return 'ended.connectionLost';
  if (r.includes('tab was closed')) return 'ended.left';
  if (r.startsWith('you left')) return 'ended.left';
  return 'ended.ended';
}

/** The heading for the ended screen, in words. */
export function endedTitle(rawReason, outcome) {
  return t(endedTitleKey(rawReason, outcome));
}

/**
 * The ended screen's heading and text. `joined`: true if we had been in the meeting
 * since the last Join, false if not (turned away, failed, cancelled while waiting), null
 * if unknown (this tab was opened after the end): "Meeting ended" is said only for a
 * meeting we were in.
 */
export function describeEnd(rawReason, outcome, joined) {
  let title = endedTitleKey(rawReason, outcome);
  const raw = String(rawReason || '').trim();
  let text = raw.toLowerCase().startsWith(COULD_NOT_JOIN)
    ? sentence(raw.slice(COULD_NOT_JOIN.length))
    : sentence(raw);
  if (joined !== true) {
    if (title === 'ended.left' && joined === false) title = 'ended.stoppedWaiting';
    else if (NEVER_IN.has(title)) title = joined === false ? 'ended.couldNotJoin' : 'ended.notIn';
  }
  if (!text) text = t(joined === false ? 'ended.couldNotText' : 'ended.endedText');
  if (joined === null && title === 'ended.notIn' && !raw) text = '';
  return { title: t(title), text };
}

/** What Rejoin will do, in words (mode from the engine; wasHost: this engine hosted). */
function rejoinExplanation(mode, wasHost, outcome) {
  if (mode === 'restart') return t('ended.explainRestart');
  if (wasHost) return t('ended.explainWasHost');
  if (outcome === 'declined') return t('ended.explainDeclined');
  return t('ended.explainKnock');
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
      this.button.textContent = t(rejoin.outcome === 'declined' ? 'ended.askAgain' : 'ended.rejoin');
      this.explain.textContent = rejoinExplanation(rejoin.mode, rejoin.wasHost, rejoin.outcome);
      this.hint.textContent = t('ended.orCloseTab');
    } else {
      this.hint.textContent = t('ended.closeTab');
    }
  }

  setBusy() {
    this.button.disabled = true;
  }
}
