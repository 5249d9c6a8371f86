// Video: camera/screen track -> VideoEncoder (VP8 by default) -> chunks,
// and received chunks -> one VideoDecoder per sender+kind -> frames.
//
// Decoding is driven by arriving chunks, never by animation callbacks, so a
// background tab keeps decoding; callers count decoder outputs.

import { nowUs, packChunk } from '../protocol.js';
import { CaptureClock } from './clock.js';
import { pumpTrack } from './track-reader.js';

/** Codec strings. VP8 is the default: the Python headless participants decode VP8 only. */
export const VIDEO_CODECS = Object.freeze({ vp8: 'vp8', vp9: 'vp09.00.10.08' });

const CAMERA_PROFILE = { width: 640, height: 360, framerate: 30, bitrate: 500_000 };
// 720p keeps a software VP8 encoder and every receiver's decoder real-time on
// ordinary laptops; text stays readable (contentHint 'detail').
const SCREEN_PROFILE = { maxWidth: 1280, maxHeight: 720, framerate: 15, bitrate: 1_200_000 };
const KEYFRAME_INTERVAL_US = 3_000_000;
const MAX_ENCODE_QUEUE = 3;

/** Does this browser encode `codec` at the camera profile? */
export async function videoCodecSupported(codec) {
  try {
    const res = await VideoEncoder.isConfigSupported({
      codec, width: CAMERA_PROFILE.width, height: CAMERA_PROFILE.height,
      bitrate: CAMERA_PROFILE.bitrate, framerate: CAMERA_PROFILE.framerate, latencyMode: 'realtime',
    });
    return res.supported === true;
  } catch {
    return false;
  }
}

function even(n) {
  return Math.max(2, Math.round(n / 2) * 2);
}

/**
 * Encodes the VideoFrames of a ReadableStream (a MediaStreamTrackProcessor's
 * readable, transferred to the media worker).
 * onChunk(buffer, isKey) receives ready-to-send glass->engine frames and returns
 * false if the frame was dropped (then the next frame becomes a keyframe).
 */
export class VideoSender {
  constructor({ kind, codec = VIDEO_CODECS.vp8, screen = false, onChunk, onError }) {
    this.kind = kind;
    this.codec = codec;
    this.screen = screen;
    this.onChunk = onChunk;
    this.onError = onError || ((err) => console.warn('clave video encoder:', err));
    this.enabled = false;
    this.source = null;
    this._reader = null;
    this._clock = new CaptureClock();
    this._generation = 0;
    this._encoder = null;
    this._size = null;
    this._forceKey = true;
    this._lastKeyUs = 0;
    this.stats = { framesIn: 0, encoded: 0, keyframes: 0, dropped: 0, bytes: 0, repeats: 0 };
    // A screen capture delivers no frames while nothing changes; repeat the last
    // one every second so late joiners get a picture and receivers know the
    // share is still on.
    this._last = null;
    this._lastAt = 0;
    this._repeatTimer = screen ? setInterval(() => this._repeatIdle(), 500) : 0;
  }

  _keepLast(frame) {
    if (!this.screen) return;
    if (this._last) this._last.close();
    this._last = frame.clone();
    this._lastAt = performance.now();
  }

  _dropLast() {
    if (this._last) this._last.close();
    this._last = null;
  }

  _repeatIdle() {
    if (!this.enabled || !this._last || performance.now() - this._lastAt < 1000) return;
    let copy;
    try {
      const elapsedUs = Math.round((performance.now() - this._lastAt) * 1000);
      copy = new VideoFrame(this._last, { timestamp: this._last.timestamp + elapsedUs });
    } catch {
      this._dropLast();
      return;
    }
    this.stats.repeats++;
    this._lastAt = performance.now();
    this._last.close();
    this._last = copy.clone();
    this._onFrame(copy); // closes copy
  }

  /** Read from `readable` (or stop reading with null). */
  setSource(readable) {
    if (readable === this.source) return;
    this._stopReading();
    this._dropLast();
    this.source = readable;
    this._clock = new CaptureClock(); // a new track may count time from elsewhere
    this._forceKey = true;
    if (readable) this._read(readable, ++this._generation);
  }

  /** Encode and send only while enabled (in the meeting, camera on). */
  setEnabled(on) {
    if (on && !this.enabled) this._forceKey = true;
    this.enabled = on;
  }

  requestKeyframe() {
    this._forceKey = true;
  }

  close() {
    this._stopReading();
    this._dropLast();
    clearInterval(this._repeatTimer);
    this.source = null;
    this._closeEncoder();
  }

  _stopReading() {
    this._generation++;
    const reader = this._reader;
    this._reader = null;
    if (reader) reader.cancel().catch(() => {});
  }

  async _read(readable, generation) {
    await pumpTrack(readable, {
      current: () => generation === this._generation,
      onItem: (frame) => {
        this._keepLast(frame);
        this._onFrame(frame);
      },
      onError: (err) => this.onError(err),
      hold: (reader) => { this._reader = reader; },
      release: (reader) => { if (this._reader === reader) this._reader = null; },
    });
  }

  _onFrame(frame) {
    const captureUs = this._clock.observe(frame.timestamp);
    try {
      this.stats.framesIn++;
      if (!this.enabled) return;
      const size = this._targetSize(frame.displayWidth, frame.displayHeight);
      if (!this._encoder || this._encoder.state === 'closed' || !this._size
          || size.width !== this._size.width || size.height !== this._size.height) {
        this._configure(size);
      }
      if (this._encoder.encodeQueueSize >= MAX_ENCODE_QUEUE) {
        this.stats.dropped++;
        return;
      }
      const keyFrame = this._forceKey || captureUs - this._lastKeyUs >= KEYFRAME_INTERVAL_US;
      if (keyFrame) {
        this._forceKey = false;
        this._lastKeyUs = captureUs;
      }
      this._encoder.encode(frame, { keyFrame });
    } catch (err) {
      this._closeEncoder();
      this.onError(err);
    } finally {
      frame.close();
    }
  }

  _targetSize(w, h) {
    if (!this.screen) {
      // The camera track is asked for 640x360; encode what it delivers (scaled if larger).
      const scale = Math.min(1, CAMERA_PROFILE.width / w, CAMERA_PROFILE.height / h);
      return { width: even(w * scale), height: even(h * scale) };
    }
    const scale = Math.min(1, SCREEN_PROFILE.maxWidth / w, SCREEN_PROFILE.maxHeight / h);
    return { width: even(w * scale), height: even(h * scale) };
  }

  _configure(size) {
    const profile = this.screen ? SCREEN_PROFILE : CAMERA_PROFILE;
    const config = {
      codec: this.codec,
      width: size.width,
      height: size.height,
      bitrate: profile.bitrate,
      framerate: profile.framerate,
      latencyMode: 'realtime',
    };
    if (this.screen) config.contentHint = 'detail';
    if (!this._encoder || this._encoder.state === 'closed') {
      this._encoder = new VideoEncoder({
        output: (chunk) => this._onChunk(chunk),
        error: (err) => {
          this._encoder = null;
          this._forceKey = true;
          this.onError(err);
        },
      });
    }
    try {
      this._encoder.configure(config);
    } catch (err) {
      if (!config.contentHint) throw err;
      delete config.contentHint; // older engines reject the hint; it is only a hint
      this._encoder.configure(config);
    }
    this._size = size;
    this._forceKey = true;
  }

  _closeEncoder() {
    const enc = this._encoder;
    this._encoder = null;
    this._size = null;
    this._forceKey = true;
    if (enc && enc.state !== 'closed') {
      try { enc.close(); } catch { /* already closed */ }
    }
  }

  _onChunk(chunk) {
    const key = chunk.type === 'key';
    const captureUs = this._clock.toWall(chunk.timestamp);
    this.stats.encoded++;
    if (key) this.stats.keyframes++;
    this.stats.bytes += chunk.byteLength;
    const sent = this.onChunk(packChunk(this.kind, key, captureUs, chunk), key);
    if (sent === false) {
      this.stats.dropped++;
      this._forceKey = true; // receivers need a fresh start after a gap
    }
  }
}

/** VP8 or VP9 from the first bytes of a keyframe; null if neither. */
export function sniffVideoCodec(data) {
  if (data.length >= 10 && (data[0] & 1) === 0 && data[3] === 0x9d && data[4] === 0x01 && data[5] === 0x2a) {
    return VIDEO_CODECS.vp8;
  }
  if (data.length >= 4 && (data[0] >> 6) === 2) return VIDEO_CODECS.vp9;
  return null;
}

const KEYFRAME_REQUEST_INTERVAL_MS = 700;
const LAG_LIMIT_US = 400_000;      // this far behind the best delay seen: skip to a keyframe
const SCREEN_LAG_LIMIT_US = 1_500_000; // screens: a late slide beats a frozen one
const LAG_DRIFT_US_PER_S = 2_000;  // the baseline may creep up (clock drift between machines)
const BT601 = Object.freeze({ primaries: 'smpte170m', transfer: 'smpte170m', matrix: 'smpte170m', fullRange: false });
const MAX_DECODE_QUEUE = 12;

/**
 * One sender's video (or screen) stream. push() frames as they arrive;
 * onFrame(frame, captureUs) gets each decoded VideoFrame (and must close it);
 * onNeedKeyframe() is called (rate-limited) when we must wait for a keyframe.
 */
export class VideoStreamDecoder {
  constructor({ onFrame, onNeedKeyframe, onError, screen = false }) {
    this.lagLimitUs = screen ? SCREEN_LAG_LIMIT_US : LAG_LIMIT_US;
    this.onFrame = onFrame;
    this.onNeedKeyframe = onNeedKeyframe;
    this.onError = onError || ((err) => console.warn('clave video decoder:', err));
    this.decoder = null;
    this.codec = null;
    this.waitingForKey = true;
    this._lastRequest = -Infinity;
    this.stats = { received: 0, decoded: 0, skipped: 0, errors: 0, lagSkips: 0 };
    this.lastFrameAt = 0;
    this._baseDelayUs = Infinity;
    this._baseAt = 0;
  }

  /**
   * True when this frame arrives much later than the stream's best delay so
   * far: we are behind (CPU overload or a network stall). Decoding stale
   * deltas would only keep us behind, so skip to a fresh keyframe instead.
   * Relative to the best delay seen, so sender and receiver clocks need not agree.
   */
  _lagging(frame) {
    const now = performance.now();
    const delay = nowUs() - frame.captureUs;
    if (this._baseAt) this._baseDelayUs += ((now - this._baseAt) / 1000) * LAG_DRIFT_US_PER_S;
    this._baseAt = now;
    if (delay < this._baseDelayUs) this._baseDelayUs = delay;
    return delay - this._baseDelayUs > this.lagLimitUs;
  }

  push(frame) {
    this.stats.received++;
    if (this._lagging(frame) && !frame.keyframe && !this.waitingForKey) {
      this.stats.lagSkips++;
      this.waitingForKey = true;
    }
    if (this.waitingForKey && !frame.keyframe) {
      this.stats.skipped++;
      this._askForKeyframe();
      return;
    }
    if (frame.keyframe) {
      const codec = sniffVideoCodec(frame.data);
      if (!codec) {
        this.stats.skipped++;
        this._reset();
        return;
      }
      if (!this.decoder || this.decoder.state === 'closed' || codec !== this.codec) this._open(codec);
      this.waitingForKey = false;
    }
    if (!this.decoder || this.decoder.state !== 'configured') {
      this._reset();
      return;
    }
    if (this.decoder.decodeQueueSize > MAX_DECODE_QUEUE && !frame.keyframe) {
      // Falling behind: skip to the next keyframe rather than show stale video.
      this.stats.skipped++;
      this.waitingForKey = true;
      this._askForKeyframe();
      return;
    }
    try {
      this.decoder.decode(new EncodedVideoChunk({
        type: frame.keyframe ? 'key' : 'delta',
        timestamp: frame.captureUs,
        data: frame.data,
      }));
    } catch (err) {
      this.stats.errors++;
      this._reset();
      this.onError(err);
    }
  }

  close() {
    this._closeDecoder();
  }

  _open(codec) {
    this._closeDecoder();
    this.codec = codec;
    this.decoder = new VideoDecoder({
      output: (videoFrame) => {
        this.stats.decoded++;
        this.lastFrameAt = performance.now();
        this.onFrame(videoFrame, videoFrame.timestamp);
      },
      error: (err) => {
        this.stats.errors++;
        this.decoder = null;
        this.waitingForKey = true;
        this._askForKeyframe();
        this.onError(err);
      },
    });
    // VP8 carries no colour space; Chromium's cameras and the PyAV participants
    // both produce BT.601 limited range, so say so (VP9 headers override it).
    this.decoder.configure({ codec, optimizeForLatency: true, colorSpace: BT601 });
  }

  _reset() {
    this.waitingForKey = true;
    this._closeDecoder();
    this._askForKeyframe();
  }

  _closeDecoder() {
    const dec = this.decoder;
    this.decoder = null;
    if (dec && dec.state !== 'closed') {
      try { dec.close(); } catch { /* already closed */ }
    }
  }

  _askForKeyframe() {
    const now = performance.now();
    if (now - this._lastRequest < KEYFRAME_REQUEST_INTERVAL_MS) return;
    this._lastRequest = now;
    this.onNeedKeyframe?.();
  }
}
