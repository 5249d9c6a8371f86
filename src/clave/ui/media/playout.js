// Playback on the main thread: one AudioContext (48 kHz, interactive) with the
// jitter-buffer worklet. Decoded PCM reaches the worklet directly from the
// media worker through a MessagePort, never through this thread.
//
// Browsers hold audio back until the user clicks on the page (autoplay rules):
// that is not a failure, the page just asks for a click (resumeOnGesture). A
// failure is audio that could not start at all; a context closed while its
// worklet was still loading (the page is shutting audio down) is neither.

export class AudioPlayout {
  /**
   * onPort(port): a new worklet is ready, hand `port` to the media worker;
   * onFailed(err): audio output could not start (the raw error is for the console; the
   * next start(), in a click, tries again); onStats(streams): the jitter buffers' state.
   */
  constructor({ onStats, onPort, onFailed }) {
    this.onStats = onStats;
    this.onPort = onPort;
    this.onFailed = onFailed || (() => {});
    this.ctx = null;
    this.node = null;
    this.failed = false;
    this.sinkId = ''; // the speaker chosen ('' : the default), applied to each new context
    this.workletStats = {};
    this._starting = null;
    this._armed = false;
    this._closed = false;
  }

  /**
   * Create the AudioContext (or resume it). Call it in a user gesture (the join click)
   * so the browser lets it run. Resolves to the MessagePort for the media worker's PCM,
   * or null if audio could not start.
   */
  start() {
    if (this._closed) return Promise.resolve(null);
    if (!this.ctx) {
      let ctx;
      try {
        ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
      } catch (err) {
        this._fail(err);
        return Promise.resolve(null);
      }
      this.ctx = ctx;
      this.failed = false;
      if (this.sinkId && typeof ctx.setSinkId === 'function') {
        ctx.setSinkId(this.sinkId).catch((err) => console.warn('clave: the speaker chosen is gone:', err));
      }
      this._starting = this._loadWorklet(ctx);
    }
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    return this._starting;
  }

  async _loadWorklet(ctx) {
    try {
      await ctx.audioWorklet.addModule(new URL('./jitter-worklet.js', import.meta.url));
      if (ctx !== this.ctx) return null; // closed meanwhile: nothing to play into
      const node = new AudioWorkletNode(ctx, 'clave-jitter', {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { targetMs: 50 },
      });
      node.port.onmessage = (ev) => {
        if (ev.data && ev.data.t === 'stats') {
          this.workletStats = ev.data.streams;
          this.onStats?.(ev.data.streams);
        }
      };
      node.connect(ctx.destination);
      this.node = node;
      const channel = new MessageChannel();
      node.port.postMessage({ t: 'port', port: channel.port1 }, [channel.port1]);
      this.onPort?.(channel.port2);
      return channel.port2;
    } catch (err) {
      if (ctx !== this.ctx || ctx.state === 'closed') return null; // shut down meanwhile
      this._fail(err);
      ctx.close().catch(() => {});
      return null;
    }
  }

  _fail(err) {
    console.warn('clave: audio output could not start:', err);
    this.ctx = null;
    this.node = null;
    this.failed = true;
    this.onFailed(err);
  }

  /** Soon after the meeting shows: if audio is still held back (no click on this page
   * yet), call `prompt()` and start audio on the next click or key press. */
  resumeOnGesture(prompt) {
    setTimeout(() => {
      if (!this.ctx || this.ctx.state !== 'suspended') return; // a failure is told by onFailed
      prompt();
      this.startOnGesture();
    }, 800);
  }

  /** Start (or resume) audio on the next click or key press on the page. */
  startOnGesture() {
    if (this._armed) return;
    this._armed = true;
    const resume = () => {
      this._armed = false;
      document.removeEventListener('pointerdown', resume, true);
      document.removeEventListener('keydown', resume, true);
      this.start();
    };
    document.addEventListener('pointerdown', resume, true);
    document.addEventListener('keydown', resume, true);
  }

  async setSinkId(id) {
    this.sinkId = id || '';
    if (this.ctx && typeof this.ctx.setSinkId === 'function') await this.ctx.setSinkId(this.sinkId);
  }

  /** For good: the page is done (its engine is gone). */
  close() {
    this._closed = true;
    const ctx = this.ctx;
    this.ctx = null;
    this.node = null;
    if (ctx) ctx.close().catch(() => {});
  }
}
