// The local protocol between the glass and the engine on 127.0.0.1: framing
// and validation only (used by the page and by the media worker).
//
// Text frames: JSON control messages (validated here, so the rest of the glass
// only ever sees well-formed values). Binary frames: media.
//   glass -> engine: [kind u8][flags u8][capture µs u64 BE][chunk]
//   engine -> glass: [kind u8][flags u8][sender leaf u32 BE][capture µs u64 BE][chunk]
// kind: 0 audio, 1 video, 2 screen; flags bit 0: keyframe.

export const KIND = Object.freeze({ audio: 0, video: 1, screen: 2 });
export const KIND_NAMES = Object.freeze(['audio', 'video', 'screen']);
const FLAG_KEYFRAME = 1;
const OUT_HEADER = 10;
const IN_HEADER = 14;

/** Microseconds since the Unix epoch, the clock every capture timestamp uses. */
export function nowUs() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** One encoded chunk (EncodedVideoChunk/EncodedAudioChunk) as a glass -> engine frame. */
export function packChunk(kind, keyframe, captureUs, chunk) {
  const out = new Uint8Array(OUT_HEADER + chunk.byteLength);
  out[0] = kind;
  out[1] = keyframe ? FLAG_KEYFRAME : 0;
  new DataView(out.buffer).setBigUint64(2, BigInt(Math.max(0, Math.round(captureUs))), false);
  chunk.copyTo(out.subarray(OUT_HEADER));
  return out.buffer;
}

/** Parse an engine -> glass media frame; null if malformed. */
export function parseMedia(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength <= IN_HEADER) return null;
  const view = new DataView(buffer);
  const kind = view.getUint8(0);
  if (kind > 2) return null;
  const flags = view.getUint8(1);
  const sender = view.getUint32(2, false);
  const captureUs = Number(view.getBigUint64(6, false));
  return {
    kind,
    kindName: KIND_NAMES[kind],
    keyframe: (flags & FLAG_KEYFRAME) !== 0,
    sender,
    captureUs,
    data: new Uint8Array(buffer, IN_HEADER),
  };
}

// ---------- control message validation ----------

class BadMessage extends Error {}

function str(value, max = 10000, fallback = '') {
  if (value === null || value === undefined) return fallback;
  if (typeof value !== 'string') throw new BadMessage('expected a string');
  return value.length > max ? value.slice(0, max) : value;
}
function optStr(value, max = 10000) {
  return value === null || value === undefined ? null : str(value, max);
}
function int(value, fallback = null) {
  if (value === null || value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new BadMessage('expected a number');
  return Math.trunc(value);
}
function bool(value) {
  return value === true;
}
function list(value, max = 1000) {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new BadMessage('expected a list');
  return value.slice(0, max);
}
function obj(value) {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new BadMessage('expected an object');
  return value;
}
function oneOf(value, allowed, fallback) {
  return allowed.includes(value) ? value : fallback;
}

const PHASES = ['prejoin', 'connecting', 'lobby', 'in_meeting', 'ended'];
const PADLOCK = ['encrypted', 'warning', 'rekeying', 'reconnecting', 'not_encrypted'];
const CONNECTION = ['connected', 'reconnecting', 'closed'];
const ROLES = ['owner', 'host', 'successor', 'member'];
const ALERTS = ['counterfeit_welcome', 'forged_reply', 'unexpected_rotation', 'refused_takeover'];

/** An invitation: a clave:// URL (it holds the meeting secret), or null. */
function inviteLink(value) {
  const s = optStr(value, 2048);
  return s !== null && /^clave:\/\/[^\s/?#]+\/\S*$/.test(s) ? s : null;
}
/** The relay's web page for invitees (no secret): an http(s) URL without fragment, or null. */
function pageUrl(value) {
  const s = optStr(value, 2048);
  return s !== null && /^https?:\/\/[^\s/?#]+\/[^\s#]*$/.test(s) ? s : null;
}
/** A name the engine says another member's looks like, or null. */
function optName(value) {
  const s = optStr(value, 64);
  return s ? s : null;
}

const VALIDATORS = {
  hello: (m) => ({
    type: 'hello',
    role: oneOf(m.role, ['host', 'guest'], 'guest'),
    link: str(m.link, 2048),
    info_url: pageUrl(m.info_url),
    default_name: str(m.default_name, 64),
    fingerprint: optStr(m.fingerprint, 200),
    media: (() => {
      if (m.media === null || m.media === undefined) return null;
      const s = obj(m.media);
      return { mic: bool(s.mic), cam: bool(s.cam), screen: bool(s.screen) };
    })(),
  }),
  state: (m) => ({
    type: 'state',
    phase: oneOf(m.phase, PHASES, 'connecting'),
    self_leaf: int(m.self_leaf, null),
    is_host: bool(m.is_host),
    epoch: int(m.epoch, null),
    security_code: optStr(m.security_code, 200),
    roster: list(m.roster).map((r) => {
      const e = obj(r);
      return {
        leaf: int(e.leaf, -1),
        name: str(e.name, 64) || 'Unnamed',
        fingerprint: str(e.fingerprint, 200),
        is_host: bool(e.is_host),
        is_self: bool(e.is_self),
        role: oneOf(e.role, ROLES, bool(e.is_host) ? 'host' : 'member'),
        familiarity: str(e.familiarity, 200) || 'new',
        verified: bool(e.verified),
        confusable_with: optName(e.confusable_with),
        away: bool(e.away),
      };
    }).filter((r) => r.leaf >= 0),
    lobby: list(m.lobby).map((r) => {
      const e = obj(r);
      // `id` goes back to the engine exactly as it came (a number, normally);
      // `key` is its string form for the page.
      const id = typeof e.id === 'number' && Number.isFinite(e.id) ? e.id : str(e.id, 200);
      return {
        id,
        key: String(id),
        name: str(e.name, 64) || 'Unnamed',
        fingerprint: str(e.fingerprint, 200),
        familiarity: str(e.familiarity, 200) || 'new',
        confusable_with: optName(e.confusable_with),
      };
    }).filter((r) => r.key !== ''),
    policy: (() => {
      const p = obj(m.policy);
      return { locked: bool(p.locked), auto_admit: bool(p.auto_admit) };
    })(),
    pending_removals: list(m.pending_removals).map((v) => int(v, -1)).filter((v) => v >= 0),
    ordering: optStr(m.ordering, 500) || null,
    link: inviteLink(m.link),
    info_url: pageUrl(m.info_url),
    connection: oneOf(m.connection, CONNECTION, null),
    reconnects: Math.max(0, int(m.reconnects, 0)),
    rejoining: optStr(m.rejoining, 500) || null,
    rejoin: oneOf(m.rejoin, ['knock', 'restart'], null),
  }),
  padlock: (m) => ({
    type: 'padlock',
    state: oneOf(m.state, PADLOCK, 'not_encrypted'),
    detail: str(m.detail, 500),
  }),
  frame_failed: (m) => ({
    type: 'frame_failed',
    sender: int(m.sender, null),
    name: str(m.name, 64),
    reason: str(m.reason, 300),
  }),
  chat: (m) => ({
    type: 'chat',
    sender: int(m.sender, null),
    name: str(m.name, 64) || 'Unnamed',
    text: str(m.text, 4000),
    ts: typeof m.ts === 'number' && Number.isFinite(m.ts) ? m.ts : null,
  }),
  keyframe_request: (m) => ({
    type: 'keyframe_request',
    kind: oneOf(m.kind, ['video', 'screen'], 'video'),
  }),
  alert: (m) => ({
    type: 'alert',
    id: int(m.id, null),
    kind: oneOf(m.kind, ALERTS, 'unknown'),
    message: str(m.message, 500),
  }),
  ended: (m) => ({
    type: 'ended',
    reason: str(m.reason, 500),
    outcome: oneOf(m.outcome, ['declined', 'locked', 'full'], null),
    // Whether we had been in the meeting (an engine may say; else the page keeps track).
    joined: typeof m.joined === 'boolean' ? m.joined : null,
  }),
  error: (m) => ({ type: 'error', message: str(m.message, 500) || 'Unknown error' }),
};

/**
 * Validate one engine -> glass JSON text. Returns {msg} or {error}; never throws.
 * Unknown message types are reported as {ignored: type}.
 */
export function parseControl(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: 'not JSON' };
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || typeof raw.type !== 'string') {
    return { error: 'not a message object' };
  }
  const validate = VALIDATORS[raw.type];
  if (!validate) return { ignored: raw.type.slice(0, 40) };
  try {
    return { msg: validate(raw) };
  } catch (err) {
    return { error: `bad ${raw.type.slice(0, 40)} message: ${err.message}` };
  }
}
