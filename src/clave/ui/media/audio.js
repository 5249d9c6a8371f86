// Audio: microphone track -> AudioEncoder (Opus, 48 kHz mono, 32 kbit/s, 20 ms)
// -> chunks; received chunks -> one AudioDecoder per sender -> the jitter
// buffer worklet, which mixes everyone into one AudioContext.

import { KIND, nowUs, packChunk } from '../protocol.js';

const OPUS = { codec: 'opus', sampleRate: 48000, numberOfChannels: 1, bitrate: 32000 };

function rms(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

/** Root-mean-square level of channel 0 of an AudioData, 0..1. */
function audioDataLevel(data, scratch) {
  const n = data.numberOfFrames;
  const buf = scratch.length >= n ? scratch.subarray(0, n) : new Float32Array(n);
  data.copyTo(buf, { planeIndex: 0, format: 'f32-planar' });
  return rms(buf);
}

/**
 * Reads the microphone with MediaStreamTrackProcessor; reports its level
 * (onLevel) always, and encodes only while enabled (in the meeting, unmuted).
 */
export class AudioSender {
  constructor({ onChunk, onLevel, onError }) {
    this.onChunk = onChunk;
    this.onLevel = onLevel;
    this.onError = onError || ((err) => console.warn('clave audio encoder:', err));
    this.enabled = false;
    this.track = null;
    this._reader = null;
    this._generation = 0;
    this._encoder = null;
    this._format = null;
    this._offsetUs = 0; // wall-clock µs minus AudioData timestamp
    this._scratch = new Float32Array(4096);
    this.stats = { encoded: 0, bytes: 0, dropped: 0 };
  }

  setTrack(track) {
    if (track === this.track) return;
    this._generation++;
    const reader = this._reader;
    this._reader = null;
    if (reader) reader.cancel().catch(() => {});
    this.track = track;
    if (track) this._read(track, this._generation);
  }

  setEnabled(on) {
    this.enabled = on;
  }

  close() {
    this.setTrack(null);
    this._closeEncoder();
  }

  async _read(track, generation) {
    let reader;
    try {
      reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    } catch (err) {
      this.onError(err);
      return;
    }
    this._reader = reader;
    try {
      while (generation === this._generation) {
        const { value: data, done } = await reader.read();
        if (done) break;
        if (generation !== this._generation) {
          data.close();
          break;
        }
        this._onData(data);
      }
    } catch (err) {
      if (generation === this._generation) this.onError(err);
    } finally {
      if (this._reader === reader) this._reader = null;
    }
  }

  _onData(data) {
    try {
      this._offsetUs = nowUs() - data.timestamp;
      this.onLevel?.(audioDataLevel(data, this._scratch));
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
      this._encoder.encode(data);
    } catch (err) {
      this._closeEncoder();
      this.onError(err);
    } finally {
      data.close();
    }
  }

  _configure(sampleRate, numberOfChannels) {
    if (!this._encoder || this._encoder.state === 'closed') {
      this._encoder = new AudioEncoder({
        output: (chunk) => this._onChunk(chunk),
        error: (err) => {
          this._encoder = null;
          this.onError(err);
        },
      });
    }
    // Opus itself always runs at 48 kHz; the config names the input format.
    this._encoder.configure({
      codec: OPUS.codec,
      sampleRate,
      numberOfChannels: Math.min(numberOfChannels, 2),
      bitrate: OPUS.bitrate,
      opus: { frameDuration: 20000 },
    });
  }

  _closeEncoder() {
    const enc = this._encoder;
    this._encoder = null;
    this._format = null;
    if (enc && enc.state !== 'closed') {
      try { enc.close(); } catch { /* already closed */ }
    }
  }

  _onChunk(chunk) {
    this.stats.encoded++;
    this.stats.bytes += chunk.byteLength;
    const captureUs = chunk.timestamp + this._offsetUs;
    if (this.onChunk(packChunk(KIND.audio, true, captureUs, chunk)) === false) this.stats.dropped++;
  }
}

/**
 * Playback: one AudioContext (48 kHz, interactive), one AudioWorkletNode with a
 * jitter buffer per sender, one AudioDecoder per sender.
 * onDecoded(sender, captureUs) counts decoder outputs; levels are per sender.
 */
export class AudioPlayout {
  constructor({ onDecoded, onError }) {
    this.onDecoded = onDecoded;
    this.onError = onError || ((err) => console.warn('clave audio decoder:', err));
    this.ctx = null;
    this.node = null;
    this.decoders = new Map(); // sender -> {decoder, level, lastAt}
    this.workletStats = {};
    this._starting = null;
  }

  /**
   * Create the AudioContext. Call from a user gesture (the join click) so the
   * browser lets it run; the worklet module loads asynchronously after.
   */
  start() {
    if (!this.ctx) {
      this.ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
      this._starting = this._loadWorklet();
    }
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    return this._starting;
  }

  async _loadWorklet() {
    try {
      await this.ctx.audioWorklet.addModule(new URL('./jitter-worklet.js', import.meta.url));
      this.node = new AudioWorkletNode(this.ctx, 'clave-jitter', {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { targetMs: 50 },
      });
      this.node.port.onmessage = (ev) => {
        if (ev.data && ev.data.t === 'stats') this.workletStats = ev.data.streams;
      };
      this.node.connect(this.ctx.destination);
    } catch (err) {
      this.onError(err);
    }
  }

  async setSinkId(id) {
    if (this.ctx && typeof this.ctx.setSinkId === 'function') await this.ctx.setSinkId(id || '');
  }

  push(frame) {
    let entry = this.decoders.get(frame.sender);
    if (!entry || entry.decoder.state === 'closed') {
      entry = this._open(frame.sender);
      if (!entry) return;
    }
    entry.lastAt = performance.now();
    try {
      entry.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: frame.captureUs, data: frame.data }));
    } catch (err) {
      this._drop(frame.sender);
      this.onError(err);
    }
  }

  _open(sender) {
    const entry = { decoder: null, level: 0, lastAt: performance.now(), scratch: null };
    try {
      entry.decoder = new AudioDecoder({
        output: (data) => this._onAudio(sender, entry, data),
        error: (err) => {
          this.decoders.delete(sender);
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
      const n = data.numberOfFrames;
      const pcm = new Float32Array(n);
      data.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
      const level = rms(pcm);
      entry.level = Math.max(level, entry.level * 0.8);
      this.onDecoded?.(sender, data.timestamp);
      if (this.node) {
        this.node.port.postMessage({ t: 'pcm', s: sender, pcm, rate: data.sampleRate }, [pcm.buffer]);
      }
    } finally {
      data.close();
    }
  }

  /** Smoothed level of what `sender` says (0..1), decaying when silent. */
  level(sender) {
    const entry = this.decoders.get(sender);
    if (!entry) return 0;
    const age = performance.now() - entry.lastAt;
    return age > 300 ? 0 : entry.level;
  }

  /** Milliseconds since the last audio chunk from `sender` (Infinity if none). */
  silenceMs(sender) {
    const entry = this.decoders.get(sender);
    return entry ? performance.now() - entry.lastAt : Infinity;
  }

  decayLevels() {
    for (const entry of this.decoders.values()) entry.level *= 0.85;
  }

  _drop(sender) {
    const entry = this.decoders.get(sender);
    this.decoders.delete(sender);
    if (entry && entry.decoder && entry.decoder.state !== 'closed') {
      try { entry.decoder.close(); } catch { /* closed */ }
    }
    this.node?.port.postMessage({ t: 'remove', s: sender });
  }

  removeSender(sender) {
    this._drop(sender);
  }

  close() {
    for (const sender of [...this.decoders.keys()]) this._drop(sender);
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
    this.node = null;
  }
}
