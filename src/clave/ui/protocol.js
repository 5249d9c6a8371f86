// The local protocol between the glass and the engine on 127.0.0.1: framing
// and validation only (used by the page and by the media worker).
//
// Text frames: JSON control messages (validated here, so the rest of the glass
// only ever sees well-formed values). Binary frames: media.
//   glass -> engine: [kind u8][flags u8][capture µs u64 BE][chunk]
//   engine -> glass: [kind u8][flags u8][sender leaf u32 BE][capture µs u64 BE][chunk]
// kind: 0 audio, 1 video, 2 screen; flags bit 0: keyframe, bits 1-2: simulcast
// layer (0 smallest .. 2 full size; audio 0).

export const KIND = Object.freeze({ audio: 0, video: 1, screen: 2 });
export const KIND_NAMES = Object.freeze(['audio', 'video', 'screen']);
const FLAG_KEYFRAME = 1;
const LAYER_SHIFT = 1;
export const MAX_LAYER = 2;
const OUT_HEADER = 10;
const IN_HEADER = 14;

/** Microseconds since the Unix epoch, the clock every capture timestamp uses. */
export function nowUs() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** One encoded chunk (EncodedVideoChunk/EncodedAudioChunk) as a glass -> engine frame,
 * of simulcast `layer` (0..MAX_LAYER). */
export function packChunk(kind, keyframe, captureUs, chunk, layer = 0) {
  const out = new Uint8Array(OUT_HEADER + chunk.byteLength);
  out[0] = kind;
  out[1] = (keyframe ? FLAG_KEYFRAME : 0) | ((layer & 3) << LAYER_SHIFT);
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
  const layer = (flags >> LAYER_SHIFT) & 3;
  if (layer > MAX_LAYER) return null;
  const sender = view.getUint32(2, false);
  const captureUs = Number(view.getBigUint64(6, false));
  return {
    kind,
    kindName: KIND_NAMES[kind],
    keyframe: (flags & FLAG_KEYFRAME) !== 0,
    layer,
    sender,
    captureUs,
    data: new Uint8Array(buffer, IN_HEADER),
  };
}

// ---------- control messages: SCHEMA ----------
//
// Every control message, both ways, as data: SCHEMA.toGlass (engine -> glass,
// read by parseControl) and SCHEMA.toEngine (glass -> engine, checked by
// checkOutgoing), each a map of message type -> {field: descriptor}. The
// engine's definitions are clave.engine.glass_messages (docs/PROTOCOL.md,
// "Local UI channel"); tests/engine/test_glass_schema.py checks that both say
// the same. This module touches no DOM: Node imports it for that test.
//
// A descriptor: {type: 'str', max, min?, pattern?} | {type: 'int', min?, max?,
// decimal? (a string of decimal digits is accepted too)} | {type: 'float'} |
// {type: 'bool'} | {type: 'enum', values} | {type: 'list', of, max} |
// {type: 'dict', key, of, max} | {type: 'object', fields}; `nullable: true`
// (null is a value), `optional: true` (the field may be absent).
// For reading only (not compared with the engine's): `fallback`, what an
// absent or null value becomes, and an empty string, a string not matching
// `pattern`, an unknown enumeration value or an int out of bounds; `loose`
// (int: a non-number is the fallback, a number is kept as it came); `echo`
// (int: a number, or a string, kept as it came, to be sent back);
// `keep(entry)` (list: entries to keep) and `finish(entry)` (object).

const U32 = 4294967295;
const NAME = 64; // characters of a display name (docs/PROTOCOL.md, "Identity")
const CHAT = 4000;
const SHORT = 200; // a fingerprint, the security code, a familiarity sentence
const SENTENCE = 500;
const LINK = 2048;
const LIST = 1000;
const STATS = 32 * 1024;
const INVITE_LINK = '^clave://[^\\s/?#]+/\\S*$'; // an invitation (it holds the meeting's secret)
const PAGE_URL = '^https?://[^\\s/?#]+/[^\\s#]*$'; // the relay's page for invitees (no secret)
const DECIMAL = /^[0-9]{1,10}$/;

const str = (max, more) => ({ type: 'str', max, ...more });
const int = (more) => ({ type: 'int', ...more });
const float = (more) => ({ type: 'float', ...more });
const bool = (more) => ({ type: 'bool', ...more });
const oneOf = (values, more) => ({ type: 'enum', values, ...more });
const listOf = (of, max, more) => ({ type: 'list', of, max, ...more });
const dictOf = (key, of, max, more) => ({ type: 'dict', key, of, max, ...more });
const fields = (f, more) => ({ type: 'object', fields: f, ...more });
const NULLABLE = { nullable: true };
const OPTIONAL = { optional: true };

const ID = int({ min: 0, max: U32, decimal: true }); // a leaf or a join request id
// The fixed set of reactions (clave.meeting.app_messages.REACTIONS).
export const REACTIONS = Object.freeze(['\u{1F44D}', '\u{1F44F}', '\u2764\uFE0F', '\u{1F602}', '\u{1F62E}', '\u{1F389}']);
const SWITCHES = { mic: bool(), cam: bool(), screen: bool() };
const VIDEO_KINDS = ['video', 'screen'];
const LAYER_IF_ANY = int({ min: 0, max: 2, nullable: true, optional: true, fallback: null });
const FINGERPRINT_IF_STILL = str(SHORT, { nullable: true, optional: true });
const COUNTS = dictOf(str(40), int({ min: 0 }), STATS, OPTIONAL);
const PERSON = {
  name: str(NAME, { fallback: 'Unnamed' }),
  fingerprint: str(SHORT),
};
const FAMILIARITY = { familiarity: str(SHORT, { fallback: 'new' }) };
const CONFUSABLE = { confusable_with: str(NAME, { nullable: true, fallback: null }) };

// The choices the engine keeps for the next meeting (clave.engine.glass_prefs).
const MAYBE = { nullable: true, optional: true, fallback: null };
const REMEMBERED = {
  name: str(NAME, MAYBE),
  camera: str(SHORT, MAYBE), // devices by label: an id differs from one address to the next
  mic: str(SHORT, MAYBE),
  speaker: str(SHORT, MAYBE),
  mic_on: bool(MAYBE),
  cam_on: bool(MAYBE),
  lang: str(3, { pattern: '^[a-z]{2,3}$', ...MAYBE }),
  view: oneOf(['grid', 'speaker'], MAYBE),
};

export const SCHEMA = Object.freeze({
  toGlass: {
    hello: {
      role: oneOf(['host', 'guest'], { fallback: 'guest' }),
      link: str(LINK),
      info_url: str(LINK, { pattern: PAGE_URL, fallback: null }),
      default_name: str(NAME),
      fingerprint: str(SHORT, NULLABLE),
      media: fields(SWITCHES, NULLABLE),
      remembered: fields(REMEMBERED, MAYBE),
    },
    state: {
      phase: oneOf(['prejoin', 'connecting', 'lobby', 'in_meeting', 'ended'], { fallback: 'connecting' }),
      self_leaf: int(NULLABLE),
      is_host: bool(),
      epoch: int(NULLABLE),
      security_code: str(SHORT, NULLABLE),
      roster: listOf(fields({
        leaf: int({ min: 0, fallback: -1 }),
        ...PERSON,
        is_host: bool(),
        is_self: bool(),
        role: oneOf(['owner', 'host', 'successor', 'member'], {
          fallback: (e) => (e.is_host === true ? 'host' : 'member'),
        }),
        ...FAMILIARITY,
        verified: bool(),
        ...CONFUSABLE,
        mic: bool(NULLABLE), // the member's announced switches (null: not said yet)
        cam: bool(NULLABLE),
        away: bool(OPTIONAL), // sent only while somebody is away
        recording: bool({ optional: true, fallback: false }), // announced: records the meeting
      }), LIST, { keep: (e) => e.leaf >= 0 }),
      lobby: listOf(fields({
        // `id` goes back to the engine exactly as it came; `key` is its string form.
        id: int({ echo: true, fallback: '' }),
        ...PERSON,
        ...FAMILIARITY,
        ...CONFUSABLE,
      }, { finish: (e) => ({ ...e, key: String(e.id) }) }), LIST, { keep: (e) => e.key !== '' }),
      lobby_waiting: int({ min: 0, fallback: 0 }), // all waiting; `lobby` lists the first 50
      policy: fields({ locked: bool(), auto_admit: bool() }),
      pending_removals: listOf(int({ min: 0, fallback: -1 }), LIST, { keep: (leaf) => leaf >= 0 }),
      ordering: str(SENTENCE, { nullable: true, fallback: null }),
      link: str(LINK, { nullable: true, pattern: INVITE_LINK, fallback: null }),
      info_url: str(LINK, { pattern: PAGE_URL, fallback: null }),
      connection: oneOf(['connected', 'reconnecting', 'closed'], NULLABLE),
      reconnects: int({ min: 0, fallback: 0 }),
      rejoining: str(SENTENCE, { nullable: true, fallback: null }),
      rejoin: oneOf(['knock', 'restart'], NULLABLE),
      // Leaves with a raised hand, in the order raised; who muted our audio (null: nobody).
      hands: listOf(int({ min: 0, fallback: -1 }), LIST, { optional: true, keep: (leaf) => leaf >= 0 }),
      muted_by: str(NAME, { nullable: true, optional: true, fallback: null }),
    },
    padlock: {
      state: oneOf(['encrypted', 'warning', 'rekeying', 'reconnecting', 'not_encrypted'], {
        fallback: 'not_encrypted',
      }),
      detail: str(SENTENCE),
    },
    frame_failed: {
      sender: int(NULLABLE),
      name: str(NAME, { nullable: true, fallback: '' }),
      reason: str(300),
    },
    chat: {
      sender: int(NULLABLE),
      name: str(NAME, { fallback: 'Unnamed' }),
      text: str(CHAT),
      ts: int({ loose: true }), // ms since the Unix epoch
      // our own message only: who it could not reach (away), or not sent yet (link down)
      missed: listOf(str(NAME, { fallback: 'Unnamed' }), LIST, { optional: true }),
      queued: bool(OPTIONAL),
    },
    // `layer`: a keyframe of that simulcast layer only (null or absent: of every layer).
    keyframe_request: { kind: oneOf(VIDEO_KINDS, { fallback: 'video' }), layer: LAYER_IF_ANY },
    // Who is on stage (video received; the rest are avatars) and who is speaking.
    stage: {
      video: listOf(int({ min: 0, fallback: -1 }), LIST, { keep: (leaf) => leaf >= 0 }),
      layers: dictOf(str(40), int({ min: 0, max: 2, fallback: 0 }), LIST),
      speaking: listOf(int({ min: 0, fallback: -1 }), LIST, { keep: (leaf) => leaf >= 0 }),
      active: int({ min: 0, nullable: true, fallback: null }),
      pinned: listOf(int({ min: 0, fallback: -1 }), LIST, { keep: (leaf) => leaf >= 0 }),
    },
    alert: {
      id: int(),
      kind: oneOf(['counterfeit_welcome', 'forged_reply', 'unexpected_rotation', 'refused_takeover'], {
        fallback: 'unknown',
      }),
      message: str(SENTENCE),
    },
    ended: {
      reason: str(SENTENCE),
      outcome: oneOf(['declined', 'locked', 'full'], NULLABLE),
      // Whether we had been in the meeting (an engine may say; else the page keeps track).
      joined: bool({ fallback: null }),
    },
    error: { message: str(SENTENCE, { fallback: 'Unknown error' }) },
    reaction: { sender: int({ min: 0 }), name: str(NAME, { fallback: 'Unnamed' }), emoji: oneOf(REACTIONS) },
    // A host asks us to unmute: the user chooses.
    unmute_request: { by: int({ min: 0 }), name: str(NAME, { fallback: 'Unnamed' }) },
    // Our own recording (started from this page): on or off, and the file it writes.
    recording: { on: bool(), path: str(LINK, { nullable: true, fallback: null }) },
  },
  toEngine: {
    join: { name: str(NAME) },
    chat: { text: str(CHAT, { min: 1 }) },
    admit: { id: ID },
    admit_all: {}, // every waiting request, in batches
    deny: { id: ID },
    lock: { locked: bool() },
    auto_admit: { on: bool() },
    remove: { leaf: ID, replace_invitation: bool(OPTIONAL), fingerprint: FINGERPRINT_IF_STILL },
    set_host: { leaf: ID, host: bool(), fingerprint: FINGERPRINT_IF_STILL },
    verify: { leaf: ID, verified: bool(), fingerprint: FINGERPRINT_IF_STILL },
    rotate: {},
    request_keyframe: { leaf: ID, kind: oneOf(VIDEO_KINDS) },
    leave: {},
    pin: { leaf: ID },
    unpin: { leaf: ID },
    view: { mode: oneOf(['grid', 'speaker']) }, // layout: the focus large, or a grid
    media_state: SWITCHES,
    hand: { up: bool() },
    lower_hand: { leaf: ID },
    react: { emoji: oneOf(REACTIONS) },
    ask_unmute: { leaf: ID, fingerprint: FINGERPRINT_IF_STILL },
    mute: { leaf: ID, fingerprint: FINGERPRINT_IF_STILL },
    record: { on: bool() }, // host: start or stop a recording this engine writes
    remember: { choices: fields(REMEMBERED) }, // keep for the next meeting (null: keep as is)
    // The media worker's report (media/worker.js): keys "<leaf>:<kind>", kinds, leaves.
    stats: {
      interval_ms: int({ min: 0, optional: true }),
      decoded: COUNTS,
      latency_ms: dictOf(str(40), listOf(float(), STATS), STATS, OPTIONAL),
      decoded_total: COUNTS,
      sent_total: COUNTS,
      lag_skips: int({ min: 0, optional: true }),
      audio_dropped: int({ min: 0, optional: true }),
      audio: dictOf(str(40), dictOf(str(40), float(NULLABLE), STATS), STATS, OPTIONAL),
      decoded_layers: COUNTS, // "<leaf>:<kind>:<layer>" -> decoder outputs
    },
  },
});

// ---------- reading engine -> glass messages ----------

class BadMessage extends Error {}

const patterns = new Map();
function matches(pattern, s) {
  if (!patterns.has(pattern)) patterns.set(pattern, new RegExp(pattern));
  return patterns.get(pattern).test(s);
}
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function fallbackOf(d, parent, otherwise = null) {
  if (!('fallback' in d)) return otherwise;
  return typeof d.fallback === 'function' ? d.fallback(parent) : d.fallback;
}

/** One value as the page may use it (see the descriptors above); throws BadMessage. */
const READ = {
  str(d, value) {
    if (value === null || value === undefined) return fallbackOf(d, null, d.nullable ? null : '');
    if (typeof value !== 'string') throw new BadMessage('expected a string');
    const s = value.length > d.max ? value.slice(0, d.max) : value;
    if (s === '' && 'fallback' in d) return d.fallback;
    if (d.pattern && !matches(d.pattern, s)) return fallbackOf(d);
    return s;
  },
  int(d, value) {
    if (value === null || value === undefined) return fallbackOf(d);
    if (d.echo) {
      if (typeof value === 'number' && Number.isFinite(value)) return value;
      if (typeof value !== 'string') throw new BadMessage('expected a string');
      return value.slice(0, SHORT);
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      if (d.loose) return fallbackOf(d);
      throw new BadMessage('expected a number');
    }
    if (d.loose) return value;
    const n = Math.trunc(value);
    return n < (d.min ?? -Infinity) || n > (d.max ?? Infinity) ? fallbackOf(d) : n;
  },
  float(d, value) {
    return typeof value === 'number' && Number.isFinite(value) ? value : fallbackOf(d);
  },
  bool(d, value) {
    if (value === null && d.nullable) return fallbackOf(d, null, null); // null: "not said"
    return typeof value === 'boolean' ? value : fallbackOf(d, null, false);
  },
  enum(d, value, parent) {
    return d.values.includes(value) ? value : fallbackOf(d, parent);
  },
  list(d, value) {
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) throw new BadMessage('expected a list');
    const out = value.slice(0, d.max).map((entry) => read(d.of, entry, value));
    return d.keep ? out.filter(d.keep) : out;
  },
  dict(d, value) {
    if (value === null || value === undefined) return {};
    if (!isObject(value)) throw new BadMessage('expected an object');
    const entries = Object.entries(value).slice(0, d.max);
    return Object.fromEntries(entries.map(([k, v]) => [READ.str(d.key, k), read(d.of, v, value)]));
  },
  object(d, value) {
    if ((value === null || value === undefined) && d.nullable) return null;
    const out = readFields(d.fields, value);
    return d.finish ? d.finish(out) : out;
  },
};

function read(d, value, parent) {
  return READ[d.type](d, value, parent);
}

function readFields(fieldMap, value) {
  if (value === null || value === undefined) value = {};
  if (!isObject(value)) throw new BadMessage('expected an object');
  const out = {};
  for (const [name, d] of Object.entries(fieldMap)) out[name] = read(d, value[name], value);
  return out;
}

/**
 * Validate one engine -> glass JSON text against SCHEMA.toGlass. Returns {msg} or
 * {error}; never throws. Unknown message types are reported as {ignored: type}.
 */
export function parseControl(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: 'not JSON' };
  }
  if (!isObject(raw) || typeof raw.type !== 'string') {
    return { error: 'not a message object' };
  }
  if (!Object.hasOwn(SCHEMA.toGlass, raw.type)) return { ignored: raw.type.slice(0, 40) };
  try {
    return { msg: { type: raw.type, ...readFields(SCHEMA.toGlass[raw.type], raw) } };
  } catch (err) {
    return { error: `bad ${raw.type.slice(0, 40)} message: ${err.message}` };
  }
}

// ---------- checking glass -> engine messages ----------

function inBounds(d, n) {
  return n >= (d.min ?? -Infinity) && n <= (d.max ?? Infinity);
}

/** Why `value` does not fit descriptor `d`, or null if it does. */
const CHECK = {
  str(d, value) {
    if (typeof value !== 'string') return 'must be a string';
    const length = [...value].length; // characters, as the engine counts them
    if (!inBounds(d, length)) return `must have ${d.min ?? 0} to ${d.max} characters`;
    return d.pattern && !matches(d.pattern, value) ? 'is not in the expected form' : null;
  },
  int(d, value) {
    const n = d.decimal && typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value;
    if (!Number.isInteger(n)) return 'must be an integer';
    return inBounds(d, n) ? null : 'is out of range';
  },
  float(d, value) {
    return typeof value === 'number' ? null : 'must be a number';
  },
  bool(d, value) {
    return typeof value === 'boolean' ? null : 'must be true or false';
  },
  enum(d, value) {
    return d.values.includes(value) ? null : `must be one of ${d.values.join(', ')}`;
  },
  list(d, value) {
    if (!Array.isArray(value)) return 'must be a list';
    if (value.length > d.max) return `has more than ${d.max} entries`;
    for (const entry of value) {
      const problem = check(d.of, entry);
      if (problem) return `has an entry that ${problem}`;
    }
    return null;
  },
  dict(d, value) {
    if (!isObject(value)) return 'must be an object';
    const entries = Object.entries(value);
    if (entries.length > d.max) return `has more than ${d.max} entries`;
    for (const [k, v] of entries) {
      const keyProblem = CHECK.str(d.key, k);
      if (keyProblem) return `has a key that ${keyProblem}`;
      const problem = check(d.of, v);
      if (problem) return `has a value that ${problem}`;
    }
    return null;
  },
  object(d, value) {
    return checkFields(d.fields, value, []);
  },
};

function check(d, value) {
  // What goes on the wire: JSON.stringify writes a non-finite number as null.
  const sent = typeof value === 'number' && !Number.isFinite(value) ? null : value;
  if (sent === null) return d.nullable ? null : 'must not be null';
  return CHECK[d.type](d, sent);
}

function checkFields(fieldMap, value, extra) {
  if (!isObject(value)) return 'must be an object';
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fieldMap, key) && !extra.includes(key) && value[key] !== undefined) {
      return `"${key}" is not a field of it`;
    }
  }
  for (const [name, d] of Object.entries(fieldMap)) {
    if (value[name] === undefined) {
      if (!d.optional) return `"${name}" is missing`;
      continue;
    }
    const problem = check(d, value[name]);
    if (problem) return `"${name}" ${problem}`;
  }
  return null;
}

/** Why `message` is not a glass -> engine message of SCHEMA.toEngine, or null if it is. */
export function checkOutgoing(message) {
  const type = isObject(message) ? message.type : undefined;
  if (typeof type !== 'string' || !Object.hasOwn(SCHEMA.toEngine, type)) {
    return `unknown message type ${String(type).slice(0, 40)}`;
  }
  const problem = checkFields(SCHEMA.toEngine[type], message, ['type']);
  return problem && `${type}: ${problem}`;
}
