// Counters for tests and benchmarks: window.claveStats, and a {"type":"stats"}
// report to the engine every 2 s.
//
// Keys are "<leaf>:<kind>" with kind "audio" | "video" | "screen"; counts are
// DECODER OUTPUTS (frames actually decoded), not packets received.

import { nowUs } from './protocol.js';

const MAX_LATENCIES = 5000;
const MAX_CHATS = 500;

export const stats = {
  phase: 'loading',
  selfLeaf: null,
  epoch: null,
  decoded: {},          // "<leaf>:<kind>" -> decoder outputs since the page loaded
  names: {},            // leaf -> display name
  securityCode: null,
  padlock: null,        // "encrypted" | "rekeying" | "not_encrypted" (null before the engine says)
  padlockDetail: '',
  chats: [],            // {sender, name, text, ts}
  latencies: [],        // capture-to-decode ms, every kind (most recent MAX_LATENCIES)
  latencyByKey: {},     // "<leaf>:<kind>" -> recent ms samples (last 300)
  sent: { audio: 0, video: 0, screen: 0 },   // chunks handed to the engine
  frameFailures: [],    // {sender, name, reason, at}
  keyframeRequestsSent: 0,
  keyframeRequestsReceived: 0,
  errors: [],           // messages shown as error toasts
  audio: {},            // jitter buffer state per sender (from the worklet)
  codec: null,
};
window.claveStats = stats;

let pendingDecoded = {};
let pendingLatency = {};

export function countDecoded(sender, kindName, captureUs) {
  const key = `${sender}:${kindName}`;
  stats.decoded[key] = (stats.decoded[key] || 0) + 1;
  pendingDecoded[key] = (pendingDecoded[key] || 0) + 1;
  if (typeof captureUs === 'number' && captureUs > 0) {
    const ms = (nowUs() - captureUs) / 1000;
    if (ms > -1000 && ms < 60000) {
      const rounded = Math.round(ms * 10) / 10;
      stats.latencies.push(rounded);
      if (stats.latencies.length > MAX_LATENCIES) stats.latencies.splice(0, stats.latencies.length - MAX_LATENCIES);
      const perKey = stats.latencyByKey[key] || (stats.latencyByKey[key] = []);
      perKey.push(rounded);
      if (perKey.length > 300) perKey.shift();
      (pendingLatency[key] || (pendingLatency[key] = [])).push(rounded);
    }
  }
}

export function countSent(kindName) {
  stats.sent[kindName] = (stats.sent[kindName] || 0) + 1;
}

export function recordChat(entry) {
  stats.chats.push(entry);
  if (stats.chats.length > MAX_CHATS) stats.chats.shift();
}

export function recordError(message) {
  stats.errors.push(String(message));
  if (stats.errors.length > 100) stats.errors.shift();
}

/**
 * The periodic report. `decoded` and `latency_ms` cover the interval since the
 * previous report; `decoded_total` is cumulative.
 */
export function takeReport(intervalMs) {
  const report = {
    type: 'stats',
    interval_ms: Math.round(intervalMs),
    decoded: pendingDecoded,
    latency_ms: pendingLatency,
    decoded_total: { ...stats.decoded },
    sent_total: { ...stats.sent },
    padlock: stats.padlock,
    audio: stats.audio,
  };
  pendingDecoded = {};
  pendingLatency = {};
  return report;
}
