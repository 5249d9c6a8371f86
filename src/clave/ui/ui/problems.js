// What the user is told when something goes wrong in the page: only a problem
// they can do something about, in words. The browser's own error text (a
// DOMException's message, a stack) goes to the console, never on screen.

import { stats } from '../stats.js';
import { toast } from './toast.js';
import { t } from '../i18n.js';

/** The words asking for a click so that meeting audio may start. */
export function audioPrompt() {
  return t('problems.audioPrompt');
}

// Encoders recover by themselves from a single error, so only one that keeps failing
// is worth a word; decoders recover on the next keyframe (the engine asks for it).
// (`what` is the media worker's name for the part; the values are catalogue keys.)
const MEDIA_PROBLEMS = {
  'Video encoder': 'problems.videoEncoder',
  'Screen encoder': 'problems.screenEncoder',
  'Audio encoder': 'problems.audioEncoder',
};
const MEDIA_FATAL = {
  'Media worker': 'problems.mediaWorker',
};
const REPEAT_WINDOW_MS = 20000;
const UNEXPECTED_EVERY_MS = 60000;

export class Problems {
  /**
   * showError(message): an error toast; inMeeting(): in the meeting and not over;
   * playout(): the AudioPlayout (made after this).
   */
  constructor({ showError, inMeeting, playout }) {
    this.showError = showError;
    this.inMeeting = inMeeting;
    this.playout = playout;
    this.mediaFailures = new Map(); // what -> time of its last reported failure
    this.lastUnexpected = -Infinity;
    this.audioRetried = false;
  }

  /** An encoder, decoder or the media worker failed (`what`: which, from the worker). */
  media(what, message) {
    console.warn(`clave: ${what}: ${message}`);
    stats.mediaErrors.push({ what, at: Date.now() });
    if (stats.mediaErrors.length > 100) stats.mediaErrors.shift();
    if (MEDIA_FATAL[what]) {
      this.showError(t(MEDIA_FATAL[what]));
      return;
    }
    const now = performance.now();
    const last = this.mediaFailures.get(what);
    this.mediaFailures.set(what, now);
    if (MEDIA_PROBLEMS[what] && last !== undefined && now - last < REPEAT_WINDOW_MS && this.inMeeting()) {
      this.showError(t(MEDIA_PROBLEMS[what]));
    }
  }

  /** A bug in this page: the details go to the console, the user gets one sentence a minute. */
  unexpected(detail) {
    console.error('clave: unexpected error:', detail);
    const now = performance.now();
    if (now - this.lastUnexpected < UNEXPECTED_EVERY_MS) return;
    this.lastUnexpected = now;
    this.showError(t('problems.unexpected'));
  }

  /** Audio output could not start. Before any click on this page that is the browser's
   * autoplay rule at work: ask for a click. After one, say so once (a click tries again),
   * then, if it fails again, that a reload is needed. Outside the meeting nothing is
   * said: the next click (Join, Rejoin) tries again. */
  audioFailed() {
    stats.audioFailures++;
    const playout = this.playout();
    if (!this.inMeeting()) {
      playout.startOnGesture();
      return;
    }
    const clicked = navigator.userActivation ? navigator.userActivation.hasBeenActive : true;
    if (!clicked) {
      toast(audioPrompt(), { ms: 8000, iconName: 'speaker' });
      playout.startOnGesture();
    } else if (!this.audioRetried) {
      this.audioRetried = true;
      this.showError(t('problems.audioFailed'));
      playout.startOnGesture();
    } else {
      this.showError(t('problems.audioStillFailed'));
    }
  }
}
