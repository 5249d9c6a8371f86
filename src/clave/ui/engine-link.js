// The page's handle on the engine connection. The WebSocket itself lives in
// the media worker (media/worker.js) together with every encoder and decoder;
// this class relays control messages, validated here with protocol.js (both
// ways: what the engine sends is read through SCHEMA.toGlass, what the page
// sends is checked against SCHEMA.toEngine), and hands the worker its media
// sources, tile canvases and the audio port.

import { checkOutgoing, parseControl } from './protocol.js';

export class EngineLink {
  /**
   * handlers: onOpen(), onClose({code, reason}), onControl(msg), onBadMessage(problem),
   * onStatus(status), onNeedTile({id, sender, screen}), onMediaError(what, message),
   * onUnexpected(err) (a bug in one of these handlers)
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.isOpen = false;
    this.everOpened = false;
    this.closed = false;
    this.tracks = { audio: null, video: null, screen: null };
    this.worker = new Worker(new URL('./media/worker.js', import.meta.url), { type: 'module', name: 'clave-media' });
    this.worker.onmessage = (ev) => this._onWorker(ev.data);
    this.worker.onerror = (ev) => {
      ev.preventDefault();
      handlers.onMediaError?.('Media worker', ev.message || 'failed to start');
    };
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.worker.postMessage({ t: 'connect', url: `${scheme}//${location.host}/ws` });
  }

  get open() {
    return this.isOpen;
  }

  _onWorker(msg) {
    const h = this.handlers;
    try {
      switch (msg.t) {
        case 'status': h.onStatus?.(msg); break;
        case 'control': {
          const parsed = parseControl(msg.text);
          if (parsed.msg) h.onControl(parsed.msg);
          else if (parsed.error) h.onBadMessage?.(parsed.error);
          else if (parsed.ignored) console.debug('clave: ignoring engine message', parsed.ignored);
          break;
        }
        case 'open': this.isOpen = true; this.everOpened = true; h.onOpen?.(); break;
        case 'close':
          this.isOpen = false;
          if (!this.closed) h.onClose?.({ code: msg.code, reason: msg.reason, everOpened: this.everOpened });
          break;
        case 'bad': h.onBadMessage?.(msg.problem); break;
        case 'need-tile': h.onNeedTile?.(msg); break;
        case 'error': h.onMediaError?.(msg.what, msg.message); break;
        default: break;
      }
    } catch (err) {
      // A bug in a handler must not stop the stream of messages; report and go on.
      if (h.onUnexpected) h.onUnexpected(err);
      else console.error('clave: a message handler failed:', err);
    }
  }

  /**
   * Send one control message (object). Returns false when not connected, or when the
   * message does not match SCHEMA.toEngine (a bug in the page: logged, not sent).
   */
  send(message) {
    if (!this.isOpen) return false;
    const problem = checkOutgoing(message);
    if (problem) {
      console.error('clave: not sending a malformed message to the engine:', problem);
      return false;
    }
    this.worker.postMessage({ t: 'send', text: JSON.stringify(message) });
    return true;
  }

  /** Give the worker a track to encode as kind 'audio' | 'video' | 'screen' (null: stop). */
  setSource(kind, track) {
    if (this.tracks[kind] === track) return; // already reading it
    this.tracks[kind] = track;
    if (!track) {
      this.worker.postMessage({ t: 'source', kind, readable: null });
      return;
    }
    const { readable } = new MediaStreamTrackProcessor({ track });
    this.worker.postMessage({ t: 'source', kind, readable }, [readable]);
  }

  enable(flags) {
    this.worker.postMessage({ t: 'enable', ...flags });
  }

  setCodec(codec) {
    this.worker.postMessage({ t: 'codec', codec });
  }

  requestKeyframe(kind) {
    this.worker.postMessage({ t: 'keyframe', kind });
  }

  /** Hand a tile's <canvas> to the worker, which draws decoded frames into it. */
  setCanvas(id, canvasEl) {
    const canvas = canvasEl.transferControlToOffscreen();
    this.worker.postMessage({ t: 'canvas', id, canvas }, [canvas]);
  }

  dropCanvas(id) {
    this.worker.postMessage({ t: 'drop-canvas', id });
  }

  setAudioPort(port) {
    this.worker.postMessage({ t: 'audio-port', port }, [port]);
  }

  /** The jitter buffers' state, for the worker's stats report. */
  setAudioStats(streams) {
    this.worker.postMessage({ t: 'audio-stats', streams });
  }

  forget(leaf) {
    this.worker.postMessage({ t: 'forget', leaf });
  }

  close() {
    this.closed = true;
    this.worker.postMessage({ t: 'close' });
  }
}
