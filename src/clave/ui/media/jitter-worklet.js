// AudioWorkletProcessor 'clave-jitter': one jitter buffer per sender, mixed
// into one mono output.
//
// Per sender:
//  * buffering: playback starts (or resumes) once `target` audio is queued;
//    target = max(base 50 ms, 20 ms + 2.5 x measured arrival jitter) plus a
//    boost after underruns (+10 ms each, up to 100 ms, decaying by 4 ms per
//    second of clean play), capped at 250 ms;
//  * concealment: on an underrun the last 20 ms are replayed with a decaying
//    gain (silent after ~100 ms), cross-faded in and out, so gaps do not click;
//  * latency control: above target + 20 ms a quiet (pause) 20 ms frame is
//    dropped whole when one comes up, else one sample in 100 is skipped (1 %
//    faster; 3 % above target + 60 ms); above target + 150 ms whole old frames
//    are dropped.
// Messages in (on a MessagePort from the media worker, handed over as
// {t:'port', port}): {t:'pcm', s:sender, pcm:Float32Array, rate}, {t:'remove', s}.
// Messages out (1/s): {t:'stats', streams:{sender:{bufferedMs,targetMs,...}}}.

/* global sampleRate, currentTime, registerProcessor, AudioWorkletProcessor */

const RATE = sampleRate;
const MS = RATE / 1000;
const HIST = Math.round(20 * MS);     // concealment replays the last 20 ms
const FADE = Math.round(2.5 * MS);    // cross-fade length
const CONCEAL_DECAY = Math.pow(0.001, 1 / (100 * MS)); // -60 dB after 100 ms
const MAX_TARGET = 250 * MS;
const MAX_BOOST = 100 * MS;
const BOOST_STEP = 10 * MS;
const BOOST_DECAY_MS_PER_S = 4;
const QUIET_RMS = 0.004; // about -48 dBFS
const IDLE_REMOVE_S = 10;

function resample(pcm, from) {
  if (from === RATE || !(from > 0)) return pcm;
  const n = Math.max(1, Math.round(pcm.length * RATE / from));
  const out = new Float32Array(n);
  const step = from / RATE;
  for (let i = 0; i < n; i++) {
    const x = i * step;
    const j = Math.floor(x);
    const f = x - j;
    const a = pcm[Math.min(j, pcm.length - 1)];
    const b = pcm[Math.min(j + 1, pcm.length - 1)];
    out[i] = a + (b - a) * f;
  }
  return out;
}

class SenderBuffer {
  constructor(baseTarget) {
    this.queue = [];
    this.quiet = [];      // per queued frame: is it a pause we may drop?
    this.head = 0;        // read offset into queue[0]
    this.buffered = 0;    // samples queued
    this.playing = false;
    this.baseTarget = baseTarget;
    this.boost = 0;
    this.jitterMs = 0;
    this.lastArrival = -1;
    this.lastData = currentTime;
    this.hist = new Float32Array(HIST);
    this.histPos = 0;
    this.conceal = new Float32Array(HIST);
    this.concealIdx = 0;
    this.concealGain = 0;
    this.fadeIn = 0;
    this.fadeOut = 0;
    this.lastSample = 0;
    this.skipCounter = 0;
    this.stats = { underruns: 0, concealed: 0, dropped: 0, played: 0 };
  }

  target() {
    const jitterTarget = (20 + 2.5 * this.jitterMs) * MS;
    return Math.min(MAX_TARGET, Math.max(this.baseTarget, jitterTarget) + this.boost);
  }

  push(pcm) {
    const nowMs = currentTime * 1000;
    if (this.lastArrival >= 0) {
      const deviation = (nowMs - this.lastArrival) - pcm.length / MS;
      this.jitterMs += (Math.abs(deviation) - this.jitterMs) / 16;
    }
    this.lastArrival = nowMs;
    this.lastData = currentTime;
    let sum = 0;
    for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
    this.queue.push(pcm);
    this.quiet.push(Math.sqrt(sum / pcm.length) < QUIET_RMS);
    this.buffered += pcm.length;
    // Far too much queued (a burst after a stall): drop the oldest frames.
    const limit = this.target() + 150 * MS;
    while (this.buffered > limit && this.queue.length > 1) {
      const old = this.queue.shift();
      this.quiet.shift();
      this.buffered -= old.length - this.head;
      this.stats.dropped += old.length - this.head;
      this.head = 0;
    }
  }

  _take() {
    const chunk = this.queue[0];
    const s = chunk[this.head++];
    this.buffered--;
    if (this.head >= chunk.length) {
      this.queue.shift();
      this.quiet.shift();
      this.head = 0;
    }
    return s;
  }

  /** Too much queued: drop the next frame whole if it is a pause. */
  _dropQuietFrame() {
    if (this.head !== 0 || this.queue.length < 2 || !this.quiet[0]) return false;
    const frame = this.queue.shift();
    this.quiet.shift();
    this.buffered -= frame.length;
    this.stats.dropped += frame.length;
    return true;
  }

  _concealSample() {
    if (this.concealGain < 1e-4) return 0;
    const s = this.conceal[this.concealIdx] * this.concealGain;
    this.concealIdx = (this.concealIdx + 1) % HIST;
    this.concealGain *= CONCEAL_DECAY;
    return s;
  }

  _startConcealment() {
    // Freeze the last 20 ms played, oldest first, and replay it from there.
    for (let i = 0; i < HIST; i++) this.conceal[i] = this.hist[(this.histPos + i) % HIST];
    this.concealIdx = 0;
    this.concealGain = 1;
    this.fadeOut = FADE;
  }

  render(out, n) {
    // Start once the cushion is there, or drain a short tail when the sender
    // stopped (muted) before the cushion filled up.
    if (!this.playing && this.buffered > 0
        && (this.buffered >= this.target() || currentTime - this.lastData > 0.15)) {
      this.playing = true;
      this.fadeIn = FADE;
    }
    const target = this.target();
    const excess = this.buffered - target;
    const skipEvery = excess > 60 * MS ? 33 : excess > 20 * MS ? 100 : 0;
    for (let i = 0; i < n; i++) {
      let s;
      if (this.playing && this.buffered > 0) {
        if (skipEvery && this.buffered - target > 20 * MS && !this._dropQuietFrame()
            && ++this.skipCounter >= skipEvery && this.buffered > 1) {
          this.skipCounter = 0;
          this._take(); // play slightly faster to bring latency back down
          this.stats.dropped++;
        }
        s = this._take();
        if (this.fadeIn > 0) {
          const k = this.fadeIn / FADE;
          s = s * (1 - k) + this._concealSample() * k;
          this.fadeIn--;
        }
        this.hist[this.histPos] = s;
        this.histPos = (this.histPos + 1) % HIST;
        this.stats.played++;
      } else {
        if (this.playing) {
          // Underrun: conceal, and ask for a larger cushion next time.
          this.playing = false;
          this.stats.underruns++;
          this.boost = Math.min(MAX_BOOST, this.boost + BOOST_STEP);
          this._startConcealment();
        }
        s = this._concealSample();
        if (this.fadeOut > 0) {
          const k = this.fadeOut / FADE;
          s = s * (1 - k) + this.lastSample * k;
          this.fadeOut--;
        }
        if (this.concealGain >= 1e-4) this.stats.concealed++;
      }
      this.lastSample = s;
      out[i] += s;
    }
    if (this.playing && this.boost > 0) {
      this.boost = Math.max(0, this.boost - (n / RATE) * BOOST_DECAY_MS_PER_S * MS);
    }
  }

  idle() {
    return !this.playing && this.buffered === 0 && currentTime - this.lastData > IDLE_REMOVE_S;
  }

  report() {
    return {
      bufferedMs: Math.round(this.buffered / MS),
      targetMs: Math.round(this.target() / MS),
      jitterMs: Math.round(this.jitterMs * 10) / 10,
      underruns: this.stats.underruns,
      concealedMs: Math.round(this.stats.concealed / MS),
      droppedMs: Math.round(this.stats.dropped / MS),
      playedMs: Math.round(this.stats.played / MS),
    };
  }
}

class ClaveJitterProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const targetMs = options && options.processorOptions && options.processorOptions.targetMs;
    this.baseTarget = (typeof targetMs === 'number' && targetMs > 0 ? targetMs : 50) * MS;
    this.streams = new Map();
    this.lastReport = currentTime;
    this.port.onmessage = (ev) => this.onMessage(ev.data);
  }

  onMessage(msg) {
    if (!msg || typeof msg !== 'object') return;
    if (msg.t === 'port' && msg.port) {
      msg.port.onmessage = (ev) => this.onMessage(ev.data);
    } else if (msg.t === 'pcm' && msg.pcm instanceof Float32Array && msg.pcm.length > 0) {
      let stream = this.streams.get(msg.s);
      if (!stream) {
        stream = new SenderBuffer(this.baseTarget);
        this.streams.set(msg.s, stream);
      }
      stream.push(resample(msg.pcm, msg.rate));
    } else if (msg.t === 'remove') {
      this.streams.delete(msg.s);
    }
  }

  process(inputs, outputs) {
    const channels = outputs[0];
    if (!channels || !channels.length) return true;
    const out = channels[0];
    out.fill(0);
    for (const [sender, stream] of this.streams) {
      stream.render(out, out.length);
      if (stream.idle()) this.streams.delete(sender);
    }
    for (let i = 0; i < out.length; i++) {
      const x = out[i];
      out[i] = x > 1 ? 1 : x < -1 ? -1 : x;
    }
    for (let c = 1; c < channels.length; c++) channels[c].set(out);
    if (currentTime - this.lastReport >= 1) {
      this.lastReport = currentTime;
      const streams = {};
      for (const [sender, stream] of this.streams) streams[sender] = stream.report();
      this.port.postMessage({ t: 'stats', streams });
    }
    return true;
  }
}

registerProcessor('clave-jitter', ClaveJitterProcessor);
