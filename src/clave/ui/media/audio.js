// Audio in the media worker: microphone AudioData -> AudioEncoder (Opus,
// 48 kHz mono, 32 kbit/s, 20 ms, DTX) -> chunks; received chunks -> one
// AudioDecoder per sender -> PCM posted straight to the jitter-buffer worklet.
//
// DTX (RFC 6716 section 2.1.9): in silence the encoder sends nothing (or, in some
// Chromium versions, 1-2 byte packets, which we leave out), so audio traffic grows
// with the number of people speaking, not with the meeting; the receiving engines
// tell who speaks from which packets arrive. Muted, nothing is encoded or sent at
// all (setEnabled(false) closes the encoder); others learn of the mute from the
// engine's media_state message, not from silence.

import { KIND, nowUs, packChunk } from '../protocol.js';
import { CaptureClock } from './clock.js';
import { pumpTrack } from './track-reader.js';

const OPUS_BITRATE = 32000;
const OPUS_FRAME_US = 20000;
const MAX_DECODE_QUEUE = 6; // packets (120 ms) waiting in one sender's decoder
const DTX_BYTES = 2; // a packet this small is DTX silence: not sent

/** Opus options: DTX when this browser's AudioEncoder supports it (memoised). */
let dtxSupport = null;
function opusOptions(config) {
  if (dtxSupport === null) {
    dtxSupport = AudioEncoder.isConfigSupported({ ...config, opus: { ...config.opus, usedtx: true } })
      .then((res) => res.supported === true && res.config?.opus?.usedtx === true)
      .catch(() => false);
  }
  return dtxSupport;
}

function rms(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

/**
 * Reads the microphone's AudioData stream; reports its level (onLevel) always,
 * and encodes only while enabled (in the meeting, unmuted).
 *
 * Capture times: the encoder's output timestamps count samples from its first
 * input, so they fall behind real time whenever input was dropped. Instead we
 * keep our own queue of what went in (wall-clock capture time, sample count)
 * and give each 20 ms packet the capture time of its first sample.
 */
export class AudioSender {
  constructor({ onChunk, onLevel, onError }) {
    this.onChunk = onChunk;
    this.onLevel = onLevel;
    this.onError = onError || ((err) => console.warn('clave audio encoder:', err));
    this.enabled = false;
    this.source = null;
    this._reader = null;
    this._generation = 0;
    this._encoder = null;
    this._format = null;
    this._rate = 48000;
    this._clock = new CaptureClock();
    this._inputs = [];   // {captureUs, frames} in encode order
    this._consumed = 0;  // frames of _inputs[0] already covered by output packets
    this._scratch = new Float32Array(4096);
    this.stats = { encoded: 0, bytes: 0, dropped: 0, dtxSkipped: 0, dtx: null };
    this._dtx = false;
  }

  /** Whether to ask for DTX (checked once, before the first encoder). */
  async checkDtx(sampleRate = 48000, numberOfChannels = 1) {
    this._dtx = await opusOptions(this._config(sampleRate, numberOfChannels));
    this.stats.dtx = this._dtx;
    if (this._dtx) this._closeEncoder(); // an encoder opened meanwhile: a new one, with DTX
    return this._dtx;
  }

  _config(sampleRate, numberOfChannels, dtx = false) {
    return {
      codec: 'opus',
      sampleRate,
      numberOfChannels: Math.min(numberOfChannels, 2),
      bitrate: OPUS_BITRATE,
      opus: dtx ? { frameDuration: OPUS_FRAME_US, usedtx: true } : { frameDuration: OPUS_FRAME_US },
    };
  }

  setSource(readable) {
    if (readable === this.source) return;
    this._generation++;
    const reader = this._reader;
    this._reader = null;
    if (reader) reader.cancel().catch(() => {});
    this.source = readable;
    this._clock = new CaptureClock(); // a new track may count time from elsewhere
    if (readable) this._read(readable, this._generation);
  }

  setEnabled(on) {
    if (on === this.enabled) return;
    this.enabled = on;
    if (!on) this._closeEncoder(); // a fresh encoder (and timeline) on unmute
  }

  close() {
    this.setSource(null);
    this._closeEncoder();
  }

  async _read(readable, generation) {
    await pumpTrack(readable, {
      current: () => generation === this._generation,
      onItem: (data) => this._onData(data),
      onError: (err) => this.onError(err),
      hold: (reader) => { this._reader = reader; },
      release: (reader) => { if (this._reader === reader) this._reader = null; },
    });
  }

  _onData(data) {
    try {
      const captureUs = this._clock.observe(data.timestamp, data.duration);
      const n = data.numberOfFrames;
      const buf = this._scratch.length >= n ? this._scratch.subarray(0, n) : new Float32Array(n);
      data.copyTo(buf, { planeIndex: 0, format: 'f32-planar' });
      this.onLevel?.(rms(buf));
      if (!this.enabled) return;
      const format = `${data.sampleRate}/${data.numberOfChannels}`;
      if (!this._encoder || this._encoder.state === 'closed' || format !== this._format) {
        this._configure(data.sampleRate, data.numberOfChannels);
        this._format = format;
      }
      if (this._encoder.encodeQueueSize > 10) {
        this.stats.dropped++;
        return;
      }
      this._inputs.push({ captureUs, frames: n });
      if (this._inputs.length > 500) { // never unbounded
        this._inputs.shift();
        this._consumed = 0;
      }
      this._encoder.encode(data);
    } catch (err) {
      this._closeEncoder();
      this.onError(err);
    } finally {
      data.close();
    }
  }

  _configure(sampleRate, numberOfChannels) {
    this._closeEncoder();
    this._encoder = new AudioEncoder({
      output: (chunk) => this._onChunk(chunk),
      error: (err) => {
        this._encoder = null;
        this._format = null;
        this.onError(err);
      },
    });
    this._rate = sampleRate;
    // Opus itself always runs at 48 kHz; the config names the input format.
    this._encoder.configure(this._config(sampleRate, numberOfChannels, this._dtx));
  }

  _closeEncoder() {
    const enc = this._encoder;
    this._encoder = null;
    this._format = null;
    this._inputs = [];
    this._consumed = 0;
    if (enc && enc.state !== 'closed') {
      try { enc.close(); } catch { /* already closed */ }
    }
  }

  /** Capture time of the next packet's first sample; advances by `frames`. */
  _takeCapture(frames) {
    const head = this._inputs[0];
    if (!head) return nowUs();
    const captureUs = head.captureUs + (this._consumed / this._rate) * 1e6;
    let left = frames;
    while (left > 0 && this._inputs.length) {
      const first = this._inputs[0];
      const available = first.frames - this._consumed;
      if (available > left) {
        this._consumed += left;
        left = 0;
      } else {
        left -= available;
        this._inputs.shift();
        this._consumed = 0;
      }
    }
    return captureUs;
  }

  _onChunk(chunk) {
    const durationUs = chunk.duration || OPUS_FRAME_US;
    const captureUs = this._takeCapture(Math.round((durationUs / 1e6) * this._rate));
    if (chunk.byteLength <= DTX_BYTES) { // DTX silence: nothing to send
      this.stats.dtxSkipped++;
      return;
    }
    this.stats.encoded++;
    this.stats.bytes += chunk.byteLength;
    if (this.onChunk(packChunk(KIND.audio, true, captureUs, chunk)) === false) this.stats.dropped++;
  }
}

/**
 * One AudioDecoder per sender. Decoded PCM goes to `port` (connected to the
 * jitter-buffer worklet); onDecoded(sender, captureUs) counts outputs, with
 * the capture time of the packet each came from.
 */
export class AudioReceiver {
  constructor({ onDecoded, onError }) {
    this.onDecoded = onDecoded;
    this.onError = onError || ((err) => console.warn('clave audio decoder:', err));
    this.port = null;
    this.dropped = 0;
    this.decoders = new Map(); // sender -> {decoder, level, lastAt}
  }

  setPort(port) {
    this.port = port;
  }

  push(frame) {
    let entry = this.decoders.get(frame.sender);
    if (!entry || !entry.decoder || entry.decoder.state === 'closed') {
      entry = this._open(frame.sender);
      if (!entry) return;
    }
    entry.lastAt = performance.now();
    if (entry.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      // This thread is behind: drop rather than fall further behind (the
      // jitter buffer conceals the gap).
      this.dropped++;
      return;
    }
    entry.captures.push(frame.captureUs);
    if (entry.captures.length > 200) entry.captures.shift(); // never unbounded
    try {
      entry.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: frame.captureUs, data: frame.data }));
    } catch (err) {
      this.remove(frame.sender);
      this.onError(err);
    }
  }

  _open(sender) {
    const entry = { decoder: null, level: 0, lastAt: performance.now(), captures: [] };
    try {
      entry.decoder = new AudioDecoder({
        output: (data) => this._onAudio(sender, entry, data),
        error: (err) => {
          if (this.decoders.get(sender) === entry) this.decoders.delete(sender);
          this.onError(err);
        },
      });
      entry.decoder.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 });
    } catch (err) {
      this.onError(err);
      return null;
    }
    this.decoders.set(sender, entry);
    return entry;
  }

  _onAudio(sender, entry, data) {
    try {
      const pcm = new Float32Array(data.numberOfFrames);
      data.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
      entry.level = Math.max(rms(pcm), entry.level);
      // One output per packet, in order. The output's own timestamp is no use:
      // Chromium counts it on from the first packet, so it falls behind after
      // every dropped packet.
      const captureUs = entry.captures.shift();
      this.onDecoded?.(sender, captureUs ?? 0);
      if (this.port) this.port.postMessage({ t: 'pcm', s: sender, pcm, rate: data.sampleRate }, [pcm.buffer]);
    } finally {
      data.close();
    }
  }

  /** Peak level per sender since the last call (0..1), and ms since each sender's last packet. */
  takeLevels() {
    const levels = {};
    const silence = {};
    const now = performance.now();
    for (const [sender, entry] of this.decoders) {
      levels[sender] = entry.level;
      silence[sender] = Math.round(now - entry.lastAt);
      entry.level = 0;
    }
    return { levels, silence };
  }

  remove(sender) {
    const entry = this.decoders.get(sender);
    this.decoders.delete(sender);
    if (entry && entry.decoder && entry.decoder.state !== 'closed') {
      try { entry.decoder.close(); } catch { /* closed */ }
    }
    this.port?.postMessage({ t: 'remove', s: sender });
  }

  close() {
    for (const sender of [...this.decoders.keys()]) this.remove(sender);
  }
}
