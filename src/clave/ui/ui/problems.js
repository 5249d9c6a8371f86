// What the user is told when something goes wrong in the page: only a problem
// they can do something about, in words. The browser's own error text (a
// DOMException's message, a stack) goes to the console, never on screen.

import { stats } from '../stats.js';
import { toast } from './toast.js';

export const AUDIO_PROMPT = 'Click anywhere to turn on meeting audio.';

// Encoders recover by themselves from a single error, so only one that keeps failing
// is worth a word; decoders recover on the next keyframe (the engine asks for it).
const MEDIA_PROBLEMS = {
  'Video encoder': 'Your video cannot be sent, so the others may not see you. '
    + 'Turn your camera off and on again; if that does not help, reload the page.',
  'Screen encoder': 'Your screen cannot be shared properly. Stop sharing and share again.',
  'Audio encoder': 'Your microphone cannot be sent, so the others may not hear you. '
    + 'Mute and unmute; if that does not help, reload the page.',
};
const MEDIA_FATAL = {
  'Media worker': 'Audio and video could not start in this page. Reload the page.',
};
const REPEAT_WINDOW_MS = 20000;
const UNEXPECTED = 'Something went wrong in this page. If sound or video stops, reload the page: '
  + 'you keep your place in the meeting.';
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
      this.showError(MEDIA_FATAL[what]);
      return;
    }
    const now = performance.now();
    const last = this.mediaFailures.get(what);
    this.mediaFailures.set(what, now);
    if (MEDIA_PROBLEMS[what] && last !== undefined && now - last < REPEAT_WINDOW_MS && this.inMeeting()) {
      this.showError(MEDIA_PROBLEMS[what]);
    }
  }

  /** A bug in this page: the details go to the console, the user gets one sentence a minute. */
  unexpected(detail) {
    console.error('clave: unexpected error:', detail);
    const now = performance.now();
    if (now - this.lastUnexpected < UNEXPECTED_EVERY_MS) return;
    this.lastUnexpected = now;
    this.showError(UNEXPECTED);
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
      toast(AUDIO_PROMPT, { ms: 8000, iconName: 'speaker' });
      playout.startOnGesture();
    } else if (!this.audioRetried) {
      this.audioRetried = true;
      this.showError('Meeting audio could not start, so you may not hear the others. Click '
        + 'anywhere on the page to try again.');
      playout.startOnGesture();
    } else {
      this.showError('Meeting audio still does not start. Check your speakers or headphones, '
        + 'then reload the page (you keep your place in the meeting).');
    }
  }
}
