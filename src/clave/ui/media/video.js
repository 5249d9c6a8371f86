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
// Simulcast: the camera is encoded in up to three layers, numbered by height:
// layer 0 up to 180 lines, 1 up to 360, 2 up to 720 (each its own VideoEncoder,
// fed the same captured frame, which the encoder scales). A capture of 360 lines
// gives layers 0 and 1; one of 720 gives all three (capture.js asks for 720p on
// machines with four cores or more). The relay forwards each receiver the layer
// it subscribed to, or the highest one we send below it.
const LAYER_HEIGHTS = Object.freeze([180, 360, 720]);
const LAYER_BITRATES = Object.freeze([150_000, 500_000, 1_500_000]);
const MAX_CAMERA = { width: 1280, height: 720 };
// Slow machine: when an encoder's queue is full, the frame is skipped on that
// layer. More than SLOW_SKIPS skips within SLOW_WINDOW captured frames drop the
// top layer (down to one); the top layer is tried again after RETRY_TOP_MS.
const SLOW_WINDOW = 60;
const SLOW_SKIPS = 6;
const RETRY_TOP_MS = 30_000;
// 720p keeps a software VP8 encoder and every receiver's decoder real-time on
// ordinary laptops; text stays readable (contentHint 'detail'). A screen share is
// one layer, 0, at its full size: the relay forwards it whatever layer a
// receiver asked for (the highest sent below the wish, else the lowest).
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

/** The layers a camera frame of w x h is sent in: [{layer, width, height, bitrate}],
 * smallest first, at most `maxLayers` of them (the smallest ones). */
export function cameraLayers(w, h, maxLayers = LAYER_HEIGHTS.length) {
  const fit = Math.min(1, MAX_CAMERA.width / w, MAX_CAMERA.height / h);
  const width = w * fit;
  const height = h * fit;
  const layers = [];
  for (let layer = 0; layer < LAYER_HEIGHTS.length && layers.length < maxLayers; layer++) {
    const below = layer ? LAYER_HEIGHTS[layer - 1] : 0;
    if (layer && height <= below + 1) break; // this capture has nothing above the last layer
    const scale = Math.min(1, LAYER_HEIGHTS[layer] / height);
    layers.push({ layer, width: even(width * scale), height: even(height * scale), bitrate: LAYER_BITRATES[layer] });
  }
  return layers;
}

/** One layer's VideoEncoder: configured for a size, forced keyframes, its counters. */
class LayerEncoder {
  constructor(sender, layer) {
    this.sender = sender;
    this.layer = layer;
    this.encoder = null;
    this.size = null;
    this.forceKey = true;
    this.lastKeyUs = 0;
    this.stats = { encoded: 0, keyframes: 0, dropped: 0, bytes: 0 };
  }

  encode(frame, spec, captureUs) {
    if (!this.encoder || this.encoder.state === 'closed' || !this.size
        || spec.width !== this.size.width || spec.height !== this.size.height) {
      this.configure(spec);
    }
    if (this.encoder.encodeQueueSize >= MAX_ENCODE_QUEUE) {
      this.stats.dropped++;
      return false;
    }
    const keyFrame = this.forceKey || captureUs - this.lastKeyUs >= KEYFRAME_INTERVAL_US;
    if (keyFrame) {
      this.forceKey = false;
      this.lastKeyUs = captureUs;
    }
    this.encoder.encode(frame, { keyFrame });
    return true;
  }

  configure(spec) {
    const { screen } = this.sender;
    const config = {
      codec: this.sender.codec,
      width: spec.width,
      height: spec.height,
      bitrate: spec.bitrate,
      framerate: screen ? SCREEN_PROFILE.framerate : CAMERA_PROFILE.framerate,
      latencyMode: 'realtime',
    };
    if (screen) config.contentHint = 'detail';
    if (!this.encoder || this.encoder.state === 'closed') {
      this.encoder = new VideoEncoder({
        output: (chunk) => this.sender._onChunk(chunk, this),
        error: (err) => {
          this.encoder = null;
          this.forceKey = true;
          this.sender.onError(err);
        },
      });
    }
    try {
      this.encoder.configure(config);
    } catch (err) {
      if (!config.contentHint) throw err;
      delete config.contentHint; // older engines reject the hint; it is only a hint
      this.encoder.configure(config);
    }
    this.size = { width: spec.width, height: spec.height };
    this.forceKey = true;
  }

  close() {
    const enc = this.encoder;
    this.encoder = null;
    this.size = null;
    this.forceKey = true;
    if (enc && enc.state !== 'closed') {
      try { enc.close(); } catch { /* already closed */ }
    }
  }
}

/**
 * Encodes the VideoFrames of a ReadableStream (a MediaStreamTrackProcessor's
 * readable, transferred to the media worker): a camera in up to three simulcast
 * layers, a screen in one.
 * onChunk(buffer, isKey, layer) receives ready-to-send glass->engine frames and
 * returns false if the frame was dropped (then that layer's next frame is a keyframe).
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
    this._layers = [];          // LayerEncoder per layer sent, smallest first
    this._canvas = null;        // for frames in a format the encoders do not take
    this._canvasCtx = null;
    this.maxLayers = screen ? 1 : LAYER_HEIGHTS.length;
    this._window = { frames: 0, skips: 0 };
    this._droppedTopAt = 0;
    this.stats = {
      framesIn: 0, encoded: 0, keyframes: 0, dropped: 0, bytes: 0, repeats: 0,
      layers: 0, topDrops: 0, perLayer: {}, converted: 0, // converted: drawn into a canvas first
    };
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
    this._forceKeys(null);
    if (readable) this._read(readable, ++this._generation);
  }

  /** Encode and send only while enabled (in the meeting, camera on). */
  setEnabled(on) {
    if (on && !this.enabled) this._forceKeys(null);
    this.enabled = on;
  }

  /** A keyframe of `layer` (null or undefined: of every layer) with the next frame. */
  requestKeyframe(layer = null) {
    this._forceKeys(layer);
  }

  _forceKeys(layer) {
    for (const enc of this._layers) {
      if (layer === null || layer === undefined || enc.layer === layer) enc.forceKey = true;
    }
  }

  close() {
    this._stopReading();
    this._dropLast();
    clearInterval(this._repeatTimer);
    this.source = null;
    this._closeEncoders();
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

  /** The layers to send this frame in: [{layer, width, height, bitrate}]. */
  _specs(w, h) {
    if (!this.screen) return cameraLayers(w, h, this.maxLayers);
    const scale = Math.min(1, SCREEN_PROFILE.maxWidth / w, SCREEN_PROFILE.maxHeight / h);
    return [{ layer: 0, width: even(w * scale), height: even(h * scale), bitrate: SCREEN_PROFILE.bitrate }];
  }

  _onFrame(input) {
    const captureUs = this._clock.observe(input.timestamp);
    let frame = input;
    try {
      this.stats.framesIn++;
      if (!this.enabled) return;
      frame = this._encodable(input);
      this._adapt();
      const specs = this._specs(frame.displayWidth, frame.displayHeight);
      while (this._layers.length > specs.length) this._layers.pop().close(); // a layer less
      let skipped = false;
      specs.forEach((spec, i) => {
        if (!this._layers[i]) this._layers[i] = new LayerEncoder(this, spec.layer);
        if (!this._layers[i].encode(frame, spec, captureUs)) {
          skipped = true;
          this.stats.dropped++;
        }
      });
      this.stats.layers = specs.length;
      this._window.frames++;
      if (skipped) this._window.skips++;
    } catch (err) {
      this._closeEncoders();
      this.onError(err);
    } finally {
      if (frame !== input) frame.close();
      input.close();
    }
  }

  /** A frame the encoders take: one whose pixel format WebCodecs does not expose (format
   * null: a camera's 16-bit grey, for one) is drawn into a canvas first. */
  _encodable(frame) {
    if (frame.format) return frame;
    const w = frame.displayWidth;
    const h = frame.displayHeight;
    if (!this._canvas || this._canvas.width !== w || this._canvas.height !== h) {
      this._canvas = new OffscreenCanvas(w, h);
      this._canvasCtx = this._canvas.getContext('2d', { alpha: false });
    }
    this._canvasCtx.drawImage(frame, 0, 0, w, h);
    this.stats.converted++;
    return new VideoFrame(this._canvas, { timestamp: frame.timestamp, duration: frame.duration ?? undefined });
  }

  /** Fewer layers when encoders fall behind; the top one back after a calm while. */
  _adapt() {
    if (this.screen) return;
    const w = this._window;
    if (w.frames >= SLOW_WINDOW) {
      if (w.skips > SLOW_SKIPS && this.maxLayers > 1) {
        this.maxLayers = Math.min(this.maxLayers, Math.max(1, this._layers.length)) - 1;
        this.maxLayers = Math.max(1, this.maxLayers);
        this._droppedTopAt = performance.now();
        this.stats.topDrops++;
      }
      w.frames = 0;
      w.skips = 0;
    }
    if (this.maxLayers < LAYER_HEIGHTS.length && this._droppedTopAt
        && performance.now() - this._droppedTopAt > RETRY_TOP_MS) {
      this.maxLayers++;
      this._droppedTopAt = this.maxLayers < LAYER_HEIGHTS.length ? performance.now() : 0;
    }
  }

  _closeEncoders() {
    for (const enc of this._layers) enc.close();
    this._layers = [];
  }

  _onChunk(chunk, enc) {
    const key = chunk.type === 'key';
    const captureUs = this._clock.toWall(chunk.timestamp);
    this.stats.encoded++;
    if (key) this.stats.keyframes++;
    this.stats.bytes += chunk.byteLength;
    enc.stats.encoded++;
    if (key) enc.stats.keyframes++;
    enc.stats.bytes += chunk.byteLength;
    this.stats.perLayer[enc.layer] = enc.stats;
    const sent = this.onChunk(packChunk(this.kind, key, captureUs, chunk, enc.layer), key, enc.layer);
    if (sent === false) {
      this.stats.dropped++;
      enc.stats.dropped++;
      enc.forceKey = true; // receivers need a fresh start after a gap
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
 * onFrame(frame, captureUs, layer) gets each decoded VideoFrame (and must close it)
 * with the simulcast layer it came from. The relay switches layers at a keyframe
 * of the new one; the decoder is opened afresh there (a new size), so nothing of
 * the old layer's state is carried over.
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
    this.layer = null;
    this._layers = []; // the layer of each chunk in the decoder, in order (one output each)
    this._lastRequest = -Infinity;
    this.stats = { received: 0, decoded: 0, skipped: 0, errors: 0, lagSkips: 0, layerSwitches: 0 };
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
      const switched = this.layer !== null && frame.layer !== this.layer;
      if (switched) this.stats.layerSwitches++;
      if (!this.decoder || this.decoder.state === 'closed' || codec !== this.codec || switched) this._open(codec);
      this.layer = frame.layer;
      this.waitingForKey = false;
    } else if (frame.layer !== this.layer) {
      this.stats.skipped++; // a delta of another layer than the one being decoded
      return;
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
      this._layers.push(frame.layer);
      if (this._layers.length > 64) this._layers.shift(); // never unbounded
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
    this._layers = [];
    this.decoder = new VideoDecoder({
      output: (videoFrame) => {
        this.stats.decoded++;
        this.lastFrameAt = performance.now();
        const layer = this._layers.length ? this._layers.shift() : this.layer;
        this.onFrame(videoFrame, videoFrame.timestamp, layer);
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
