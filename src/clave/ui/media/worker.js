// The media worker: owns the WebSocket to the engine, the encoders (fed by
// MediaStreamTrackProcessor readables transferred from the page), the video
// decoders (drawing straight into OffscreenCanvases transferred from the
// tiles) and the audio decoders (PCM straight to the jitter-buffer worklet).
// The page thread only runs the interface, so layout, chat or a busy tab
// cannot delay media.
//
// page -> worker: {t:'connect', url} {t:'send', text} {t:'close'}
//   {t:'source', kind:'audio'|'video'|'screen', readable|null}
//   {t:'enable', audio, video, screen} {t:'codec', codec} {t:'keyframe', kind}
//   {t:'canvas', id, canvas} {t:'drop-canvas', id} {t:'audio-port', port} {t:'forget', leaf}
//   {t:'audio-stats', streams}
// worker -> page: {t:'open'} {t:'close', code, reason} {t:'control', text}
//   {t:'bad', problem} {t:'need-tile', id, sender, screen} {t:'error', what, message}
//   {t:'status', ...} every 100 ms (counts since the previous status).
// worker -> engine, every 2 s in the meeting: {"type":"stats", interval_ms,
//   decoded: {"<leaf>:<kind>": decoder outputs since the last report},
//   latency_ms: {"<leaf>:<kind>": [capture-to-decode ms, ...] since the last report},
//   decoded_total, sent_total ({kind: chunks}), lag_skips, audio_dropped,
//   audio: {leaf: jitter buffer state},
//   decoded_layers: {"<leaf>:<kind>:<layer>": decoder outputs since the page loaded}}.
// Video chunks carry their simulcast layer both ways (protocol.js); a
// keyframe_request from the engine names the layer whose encoder must make one.

import { KIND, checkOutgoing, nowUs, parseMedia } from '../protocol.js';
import { AudioReceiver, AudioSender } from './audio.js';
import { VideoSender, VideoStreamDecoder } from './video.js';

const STATUS_MS = 100;
const REPORT_MS = 2000;
const SEND_BUFFER_LIMIT = 4 * 1024 * 1024; // drop media rather than queue seconds of it

let ws = null;
let selfLeaf = null;
let phase = 'prejoin';
let audioStats = {};
const report = {
  decoded: {}, latency: {}, decodedTotal: {}, decodedLayers: {},
  sentTotal: { audio: 0, video: 0, screen: 0 }, at: performance.now(),
};
const canvases = new Map();     // tile id -> {canvas, ctx, lastFrameAt}
const tileRequests = new Set(); // tile ids asked of the page, not yet given
const decoders = new Map();     // "<leaf>:<kind>" -> VideoStreamDecoder
let pending = freshPending();
let localLevel = 0;
const lastErrorAt = new Map();

function freshPending() {
  return {
    decoded: {}, decodedLayers: {}, receivedLayers: {}, latencies: {},
    sent: { audio: 0, video: 0, screen: 0 },
    keyframeRequests: 0, droppedSends: 0,
  };
}

function post(message, transfer) {
  self.postMessage(message, transfer || []);
}

function reportError(what, err) {
  const now = performance.now();
  if (now - (lastErrorAt.get(what) ?? -Infinity) < 5000) return;
  lastErrorAt.set(what, now);
  post({ t: 'error', what, message: err && err.message ? err.message : String(err) });
}

// ---------- sending ----------

function sendMedia(kindName, buffer, essential) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  if (ws.bufferedAmount > (essential ? 2 * SEND_BUFFER_LIMIT : SEND_BUFFER_LIMIT)) {
    pending.droppedSends++;
    return false;
  }
  ws.send(buffer);
  pending.sent[kindName]++;
  report.sentTotal[kindName]++;
  return true;
}

const videoSender = new VideoSender({
  kind: KIND.video,
  onChunk: (buf, key) => sendMedia('video', buf, key),
  onError: (err) => reportError('Video encoder', err),
});
const screenSender = new VideoSender({
  kind: KIND.screen,
  screen: true,
  onChunk: (buf, key) => sendMedia('screen', buf, key),
  onError: (err) => reportError('Screen encoder', err),
});
const audioSender = new AudioSender({
  onChunk: (buf) => sendMedia('audio', buf, true),
  onLevel: (level) => { localLevel = Math.max(localLevel, level); },
  onError: (err) => reportError('Audio encoder', err),
});
const senders = { audio: audioSender, video: videoSender, screen: screenSender };
audioSender.checkDtx().catch(() => {}); // before the first encoder: Opus DTX if supported

// ---------- receiving ----------

function countDecoded(key, captureUs, layer = null) {
  if (layer !== null) {
    const byLayer = `${key}:${layer}`;
    pending.decodedLayers[byLayer] = (pending.decodedLayers[byLayer] || 0) + 1;
    report.decodedLayers[byLayer] = (report.decodedLayers[byLayer] || 0) + 1;
  }
  pending.decoded[key] = (pending.decoded[key] || 0) + 1;
  report.decoded[key] = (report.decoded[key] || 0) + 1;
  report.decodedTotal[key] = (report.decodedTotal[key] || 0) + 1;
  if (captureUs > 0) {
    const ms = (nowUs() - captureUs) / 1000;
    if (ms > -1000 && ms < 60000) {
      const rounded = Math.round(ms * 10) / 10;
      (pending.latencies[key] || (pending.latencies[key] = [])).push(rounded);
      (report.latency[key] || (report.latency[key] = [])).push(rounded);
    }
  }
}

const audioReceiver = new AudioReceiver({
  onDecoded: (sender, captureUs) => countDecoded(`${sender}:audio`, captureUs),
  onError: (err) => reportError('Audio decoder', err),
});

function draw(id, frame) {
  const target = canvases.get(id);
  if (!target) {
    if (!tileRequests.has(id)) {
      tileRequests.add(id);
      const [prefix, leaf] = id.split(':');
      post({ t: 'need-tile', id, sender: Number(leaf), screen: prefix === 's' });
    }
    return;
  }
  const { canvas } = target;
  const w = frame.displayWidth;
  const h = frame.displayHeight;
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
    target.ctx = null;
  }
  if (!target.ctx) target.ctx = canvas.getContext('2d', { alpha: false, desynchronized: true });
  target.ctx.drawImage(frame, 0, 0, w, h);
  target.lastFrameAt = performance.now();
}

function onMedia(buffer) {
  const frame = parseMedia(buffer);
  if (!frame) {
    post({ t: 'bad', problem: 'malformed media frame' });
    return;
  }
  if (frame.sender === selfLeaf) return;
  if (frame.kind === KIND.audio) {
    audioReceiver.push(frame);
    return;
  }
  const key = `${frame.sender}:${frame.kindName}`;
  const byLayer = `${key}:${frame.layer}`; // what the relay forwarded, decodable or not
  pending.receivedLayers[byLayer] = (pending.receivedLayers[byLayer] || 0) + 1;
  let decoder = decoders.get(key);
  if (!decoder) {
    const { sender, kindName } = frame;
    const id = `${kindName === 'screen' ? 's' : 'p'}:${sender}`;
    decoder = new VideoStreamDecoder({
      screen: kindName === 'screen',
      onFrame: (videoFrame, captureUs, layer) => {
        try {
          countDecoded(key, captureUs, layer);
          draw(id, videoFrame);
        } finally {
          videoFrame.close();
        }
      },
      onNeedKeyframe: () => {
        pending.keyframeRequests++;
        sendControl({ type: 'request_keyframe', leaf: sender, kind: kindName });
      },
      onError: (err) => reportError('Video decoder', err),
    });
    decoders.set(key, decoder);
  }
  decoder.push(frame);
}

function forget(leaf) {
  for (const kind of ['video', 'screen']) {
    const key = `${leaf}:${kind}`;
    decoders.get(key)?.close();
    decoders.delete(key);
  }
  audioReceiver.remove(leaf);
}

// ---------- control ----------

/** Send a control message of our own (checked against SCHEMA.toEngine, like the page's). */
function sendControl(message) {
  const problem = checkOutgoing(message);
  if (problem) console.error('clave: not sending a malformed message to the engine:', problem);
  else if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

/** The few control messages the media path acts on; the page validates and handles all. */
function peek(text) {
  if (text.length > 1_000_000) return;
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return;
  }
  if (!msg || typeof msg !== 'object') return;
  if (msg.type === 'state') {
    selfLeaf = Number.isInteger(msg.self_leaf) ? msg.self_leaf : null;
    if (typeof msg.phase === 'string') phase = msg.phase;
  } else if (msg.type === 'keyframe_request') {
    const layer = Number.isInteger(msg.layer) ? msg.layer : null;
    (msg.kind === 'screen' ? screenSender : videoSender).requestKeyframe(layer);
  }
}

function connect(url) {
  ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.addEventListener('open', () => post({ t: 'open' }));
  ws.addEventListener('close', (ev) => post({ t: 'close', code: ev.code, reason: ev.reason }));
  ws.addEventListener('message', (ev) => {
    try {
      if (typeof ev.data === 'string') {
        peek(ev.data);
        post({ t: 'control', text: ev.data });
      } else {
        onMedia(ev.data);
      }
    } catch (err) {
      reportError('Media', err);
    }
  });
}

function shutdown() {
  for (const sender of Object.values(senders)) sender.close();
  for (const decoder of decoders.values()) decoder.close();
  decoders.clear();
  audioReceiver.close();
  canvases.clear();
  if (ws) ws.close(1000, 'bye');
}

self.onmessage = (ev) => {
  const msg = ev.data;
  try {
    switch (msg.t) {
      case 'connect': connect(msg.url); break;
      case 'send': if (ws && ws.readyState === WebSocket.OPEN) ws.send(msg.text); break;
      case 'source': senders[msg.kind]?.setSource(msg.readable || null); break;
      case 'enable':
        audioSender.setEnabled(!!msg.audio);
        videoSender.setEnabled(!!msg.video);
        screenSender.setEnabled(!!msg.screen);
        break;
      case 'codec': videoSender.codec = msg.codec; break;
      case 'keyframe': (msg.kind === 'screen' ? screenSender : videoSender).requestKeyframe(); break;
      case 'canvas':
        canvases.set(msg.id, { canvas: msg.canvas, ctx: null, lastFrameAt: 0 });
        tileRequests.delete(msg.id);
        break;
      case 'drop-canvas':
        canvases.delete(msg.id);
        tileRequests.delete(msg.id);
        break;
      case 'audio-port': audioReceiver.setPort(msg.port); break;
      case 'audio-stats': audioStats = msg.streams || {}; break;
      case 'forget': forget(msg.leaf); break;
      case 'close': shutdown(); break;
      default: break;
    }
  } catch (err) {
    reportError('Media', err);
  }
};

setInterval(() => {
  const now = performance.now();
  const frames = {};
  const sizes = {}; // tile id -> [width, height] of its frames (a share's tile takes its shape)
  for (const [id, target] of canvases) {
    frames[id] = target.lastFrameAt ? Math.round(now - target.lastFrameAt) : -1;
    if (target.lastFrameAt) sizes[id] = [target.canvas.width, target.canvas.height];
  }
  const { levels, silence } = audioReceiver.takeLevels();
  let lagSkips = 0;
  for (const decoder of decoders.values()) lagSkips += decoder.stats.lagSkips;
  post({
    t: 'status',
    ...pending,
    frames,
    sizes,
    levels,
    silence,
    localLevel,
    lagSkips,
    audioDropped: audioReceiver.dropped,
    encoder: { video: videoSender.stats, screen: screenSender.stats, audio: audioSender.stats },
  });
  pending = freshPending();
  localLevel = 0;
}, STATUS_MS);

setInterval(() => {
  const now = performance.now();
  if (phase === 'in_meeting') {
    let lagSkips = 0;
    for (const decoder of decoders.values()) lagSkips += decoder.stats.lagSkips;
    sendControl({
      type: 'stats',
      interval_ms: Math.round(now - report.at),
      decoded: report.decoded,
      latency_ms: report.latency,
      decoded_total: report.decodedTotal,
      sent_total: report.sentTotal,
      lag_skips: lagSkips,
      audio_dropped: audioReceiver.dropped,
      audio: audioStats,
      decoded_layers: report.decodedLayers,
    });
  }
  report.decoded = {};
  report.latency = {};
  report.at = now;
}, REPORT_MS);
