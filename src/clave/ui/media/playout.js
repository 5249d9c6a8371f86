// Playback on the main thread: one AudioContext (48 kHz, interactive) with the
// jitter-buffer worklet. Decoded PCM reaches the worklet directly from the
// media worker through a MessagePort, never through this thread.

export class AudioPlayout {
  constructor({ onStats, onError }) {
    this.onStats = onStats;
    this.onError = onError || ((err) => console.warn('clave audio output:', err));
    this.ctx = null;
    this.node = null;
    this.workletStats = {};
    this._starting = null;
  }

  /**
   * Create the AudioContext. Call it in a user gesture (the join click) so the
   * browser lets it run. Resolves to a MessagePort for the media worker's PCM
   * (null if the worklet could not start).
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
        if (ev.data && ev.data.t === 'stats') {
          this.workletStats = ev.data.streams;
          this.onStats?.(ev.data.streams);
        }
      };
      this.node.connect(this.ctx.destination);
      const channel = new MessageChannel();
      this.node.port.postMessage({ t: 'port', port: channel.port1 }, [channel.port1]);
      return channel.port2;
    } catch (err) {
      this.onError(err);
      return null;
    }
  }

  /** Soon after the meeting shows: if the browser still holds audio back (no click on
   * this page yet), call `prompt()` and resume on the next click or key press. */
  resumeOnGesture(prompt) {
    setTimeout(() => {
      if (!this.ctx || this.ctx.state !== 'suspended') return;
      prompt();
      const resume = () => {
        this.start();
        document.removeEventListener('pointerdown', resume, true);
        document.removeEventListener('keydown', resume, true);
      };
      document.addEventListener('pointerdown', resume, true);
      document.addEventListener('keydown', resume, true);
    }, 800);
  }

  async setSinkId(id) {
    if (this.ctx && typeof this.ctx.setSinkId === 'function') await this.ctx.setSinkId(id || '');
  }

  close() {
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
    this.node = null;
  }
}
