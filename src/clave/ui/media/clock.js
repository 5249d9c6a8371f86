// Mapping media timestamps to the wall clock used on the wire.
//
// VideoFrame/AudioData timestamps from a capture track count microseconds on
// the browser's capture clock, not since the Unix epoch. The offset between
// the two is estimated as the smallest (wall time when read - end of the
// frame's media time) over the last few seconds: a frame read late (the reader
// was busy) only makes that difference larger, so the minimum is the offset.
// A sliding window (not an all-time minimum) lets the estimate follow clock
// drift, and forgets the odd early frames: Chromium stamps the first AudioData
// of a track up to a few hundred ms off the steady state, so nothing read in
// the first half second of a source is used.

import { nowUs } from '../protocol.js';

const WINDOW_US = 5_000_000;
const WARMUP_US = 500_000;

export class CaptureClock {
  constructor() {
    this.offsetUs = null;
    this._start = null;
    this._window = []; // {at, offset}, offsets increasing (monotonic deque)
  }

  /**
   * Observe a frame being read now; returns its capture time in wall-clock µs.
   * `durationUs`: an AudioData is complete only `duration` after its first
   * sample (its timestamp), so that much of the read delay is not delay.
   */
  observe(mediaTimestampUs, durationUs = 0) {
    const now = nowUs();
    const offset = now - mediaTimestampUs - durationUs;
    if (this._start === null) this._start = now;
    if (now - this._start < WARMUP_US) {
      this.offsetUs = offset; // not trusted for the window; best guess meanwhile
      return mediaTimestampUs + offset;
    }
    const w = this._window;
    while (w.length && w[w.length - 1].offset >= offset) w.pop();
    w.push({ at: now, offset });
    while (w[0].at < now - WINDOW_US) w.shift();
    this.offsetUs = w[0].offset;
    return mediaTimestampUs + this.offsetUs;
  }

  /** Wall-clock µs for a media timestamp (after at least one observe()). */
  toWall(mediaTimestampUs) {
    return this.offsetUs === null ? nowUs() : mediaTimestampUs + this.offsetUs;
  }
}
