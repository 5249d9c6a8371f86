// Counters for tests and benchmarks: window.claveStats. (The {"type":"stats"}
// report to the engine every 2 s is sent by the media worker, which has the
// same numbers first-hand.)
//
// Keys are "<leaf>:<kind>" with kind "audio" | "video" | "screen"; counts are
// DECODER OUTPUTS (frames actually decoded), not packets received.

const MAX_LATENCIES = 5000;
const MAX_CHATS = 500;

export const stats = {
  phase: 'loading',
  selfLeaf: null,
  epoch: null,
  decoded: {},          // "<leaf>:<kind>" -> decoder outputs since the page loaded
  decodedLayers: {},    // "<leaf>:<kind>:<layer>" -> decoder outputs per simulcast layer
  receivedLayers: {},   // "<leaf>:<kind>:<layer>" -> video frames received (decrypted) per layer
  stage: null,          // the engine's last `stage`: {video, layers, speaking, active, pinned}
  dtx: null,            // whether our Opus encoder uses DTX (null: not configured yet)
  names: {},            // leaf -> display name
  securityCode: null,
  padlock: null,        // "encrypted" | "warning" | "rekeying" | "not_encrypted" (null before the engine says)
  padlockDetail: '',
  ordering: null,       // why the relay is not ordering our changes (null: all is well)
  connection: null,     // the engine's relay link: "connected" | "reconnecting" | "closed" (null: no meeting)
  reconnects: 0,        // successful reconnections the engine reported
  reconnectingShown: 0, // times the page went into "Reconnecting…"
  connectionLog: [],    // {state: "reconnecting" | "connected", at}
  rejoining: null,      // why the engine is being admitted afresh (null: it is not)
  rejoins: 0,           // Rejoin clicks
  switches: null,       // {mic, cam, screen}: our own capture switches
  mediaRestored: null,  // the switches the engine handed back to this (reloaded) page
  roles: {},            // leaf -> "owner" | "host" | "successor" | "member"
  pendingRemovals: [],  // leaves whose removal is under way
  alerts: [],           // security alerts from the engine: {kind, message, at}
  invitationsReplaced: 0, // times the invitation changed while this page was in the meeting
  chats: [],            // {sender, name, text, ts}
  latencies: [],        // capture-to-decode ms, every kind (most recent MAX_LATENCIES)
  latencyByKey: {},     // "<leaf>:<kind>" -> recent ms samples (last 300)
  sent: { audio: 0, video: 0, screen: 0 },   // chunks handed to the engine
  frameFailures: [],    // {sender, name, reason, at}
  keyframeRequestsSent: 0,
  keyframeRequestsReceived: 0,
  errors: [],           // messages shown as error toasts
  mediaErrors: [],      // {what, at}: encoder/decoder errors from the media worker (details in the console)
  audioFailures: 0,     // times audio output could not start
  ended: null,          // {title, text} of the ended screen, once shown
  audio: {},            // jitter buffer state per sender (from the worklet)
  codec: null,
  encoder: {},          // encoder counters from the media worker
  lagSkips: 0,          // video deltas skipped to catch up after falling behind
  audioDropped: 0,      // audio packets dropped because decoding fell behind
  i18nMissing: [],      // text keys no catalogue has (i18n.js): shown as the key itself
};
window.claveStats = stats;

/** Merge one media-worker status: decoder outputs and latency samples per key. */
export function addDecoded(decoded, latencies) {
  for (const [key, n] of Object.entries(decoded)) {
    stats.decoded[key] = (stats.decoded[key] || 0) + n;
  }
  for (const [key, samples] of Object.entries(latencies)) {
    stats.latencies.push(...samples);
    const perKey = stats.latencyByKey[key] || (stats.latencyByKey[key] = []);
    perKey.push(...samples);
    if (perKey.length > 300) perKey.splice(0, perKey.length - 300);
  }
  if (stats.latencies.length > MAX_LATENCIES) stats.latencies.splice(0, stats.latencies.length - MAX_LATENCIES);
}

export function addSent(sent) {
  for (const [kind, n] of Object.entries(sent)) stats.sent[kind] = (stats.sent[kind] || 0) + n;
}

export function recordChat(entry) {
  stats.chats.push(entry);
  if (stats.chats.length > MAX_CHATS) stats.chats.shift();
}

export function recordError(message) {
  stats.errors.push(String(message));
  if (stats.errors.length > 100) stats.errors.shift();
}
