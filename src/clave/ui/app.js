// Clave glass: the browser half of a participant. It captures, encodes,
// decodes and renders; the local engine (127.0.0.1) holds every key and does
// all the cryptography. See ARCHITECTURE.md, "The trust boundary".
//
// Module map (page thread):
//   app.js                 phases, user actions, wiring
//   engine-link.js         talks to the media worker (which owns the WebSocket)
//   protocol.js            message validation and media framing (shared with the worker)
//   stats.js               window.claveStats and the 2 s stats report
//   media/capture.js       getUserMedia / enumerateDevices / getDisplayMedia
//   media/playout.js       AudioContext + jitter-buffer worklet
//   ui/*.js                pre-join, stage/tiles, padlock, side panel, security alerts, toasts
// Media worker (media/worker.js): WebSocket, media/video.js (VideoEncoder,
// VideoDecoder per sender+kind drawing into OffscreenCanvas), media/audio.js
// (AudioEncoder, AudioDecoder per sender), media/clock.js (capture times).
// Audio worklet: media/jitter-worklet.js (jitter buffers, concealment, mixing).

import { EngineLink } from './engine-link.js';
import { addDecoded, addSent, recordChat, recordError, stats } from './stats.js';
import { LocalMedia, captureScreen, describeMediaError } from './media/capture.js';
import { VIDEO_CODECS, videoCodecSupported } from './media/video.js';
import { AudioPlayout } from './media/playout.js';
import { $ } from './ui/dom.js';
import { SecurityAlerts } from './ui/alerts.js';
import { initToasts, toast, toastError } from './ui/toast.js';
import { Prejoin } from './ui/prejoin.js';
import { Stage } from './ui/grid.js';
import { Padlock } from './ui/padlock.js';
import { ChatLog, SidePanel, renderLobby, renderParticipants, renderSecurityCode } from './ui/panels.js';

const TICK_MS = 250;
const SPEAKER_THRESHOLD = 0.02; // RMS, about -34 dBFS
const SPEAKER_HOLD_MS = 800;
const VIDEO_STALE_MS = 1500;
const SCREEN_GONE_MS = 4500;
const AUDIO_SILENT_MS = 2500;

const state = {
  hello: null,
  phase: 'loading',
  joinRequested: false,
  ended: false,
  leaving: false,
  selfLeaf: null,
  isHost: false,
  name: '',
  roster: [],
  lobby: [],
  policy: { locked: false, auto_admit: false },
  pending: [],         // leaves whose removal is under way
  ordering: null,      // why the relay is not ordering our changes (null: all is well)
  link: null,          // the current invitation (clave://…, holds the secret) while in the meeting
  epoch: null,
  securityCode: null,
  micOn: true,
  camOn: true,
  screenTrack: null,
  meetingStart: 0,
  speaker: null,
  speakerLoudAt: 0,
  localLevel: 0,
  levels: new Map(),   // leaf -> smoothed level of what they say
  silence: new Map(),  // leaf -> ms since their last audio packet
  unread: 0,
};

const screens = {
  prejoin: $('#prejoin-screen'),
  wait: $('#wait-screen'),
  meeting: $('#meeting-screen'),
  ended: $('#ended-screen'),
};

initToasts($('#toasts'));
const securityAlerts = new SecurityAlerts($('#security-alerts'));

function showError(message) {
  recordError(message);
  toastError(message);
}

// ---------- engine link (and the media worker behind it) ----------

let lastBadMessageToast = -Infinity;
const link = new EngineLink({
  onControl: (msg) => handleControl(msg),
  onStatus: (status) => handleStatus(status),
  onNeedTile: ({ id, sender, screen }) => {
    if (state.ended || sender === state.selfLeaf) return;
    stage.ensure(id, { name: nameOf(sender), screen, colorKey: `p:${sender}` });
  },
  onClose: (ev) => {
    if (state.ended) return;
    if (!ev.everOpened) {
      endMeeting('Could not connect', 'Clave on this computer did not accept this page. '
        + 'It may already be open in another tab or window (only one at a time), or it has stopped.');
      return;
    }
    endMeeting('Disconnected', `Lost the connection to Clave on this computer${ev.reason ? ` (${ev.reason})` : ''}. `
      + 'If the Clave program was closed, start it again to rejoin.');
  },
  onBadMessage: (problem) => {
    console.warn('clave: bad message from the engine:', problem);
    const now = performance.now();
    if (now - lastBadMessageToast > 10000) {
      lastBadMessageToast = now;
      showError('Ignored a malformed message from the engine.');
    }
  },
  onMediaError: (what, message) => {
    console.warn(`clave: ${what}: ${message}`);
    showError(`${what} problem: ${message}`);
  },
});

function handleStatus(status) {
  addDecoded(status.decoded, status.latencies);
  addSent(status.sent);
  stats.keyframeRequestsSent += status.keyframeRequests;
  stats.lagSkips = status.lagSkips;
  stats.audioDropped = status.audioDropped;
  stats.encoder = status.encoder;
  state.localLevel = Math.max(status.localLevel, state.localLevel * 0.8);
  if (state.phase !== 'in_meeting') prejoin.setMicLevel(state.micOn ? status.localLevel : 0);
  for (const [leaf, level] of Object.entries(status.levels)) {
    const old = state.levels.get(Number(leaf)) || 0;
    state.levels.set(Number(leaf), Math.max(level, old * 0.7));
  }
  state.silence = new Map(Object.entries(status.silence).map(([leaf, ms]) => [Number(leaf), ms]));
  for (const [id, age] of Object.entries(status.frames)) {
    const tile = stage.get(id);
    if (tile) tile.frameAge = age;
  }
}

// ---------- local media ----------

const media = new LocalMedia();
let videoCodec = VIDEO_CODECS.vp8;

media.onTracksChanged = () => {
  link.setSource('audio', media.audioTrack);
  link.setSource('video', state.camOn ? media.videoTrack : null);
  prejoin.showPreview(state.camOn ? media.videoTrack : null, state.camOn ? 'No camera' : 'Camera is off');
  const self = stage.get('p:self');
  if (self) self.setStream(state.camOn ? media.videoTrack : null);
  updateSending();
};

/** Encode and send only in the meeting, and only what is switched on. */
function updateSending() {
  const live = state.phase === 'in_meeting' && !state.ended;
  link.enable({
    audio: live && state.micOn && !!media.audioTrack,
    video: live && state.camOn && !!media.videoTrack,
    screen: live && !!state.screenTrack,
  });
}

// ---------- playback ----------

const playout = new AudioPlayout({
  onStats: (streams) => {
    stats.audio = streams;
    link.setAudioStats(streams);
  },
  onError: (err) => showError(`Audio output problem: ${err && err.message ? err.message : err}`),
});

function nameOf(leaf) {
  const member = state.roster.find((m) => m.leaf === leaf);
  return member ? member.name : `Participant ${leaf}`;
}

function forgetSender(leaf) {
  link.forget(leaf);
  state.levels.delete(leaf);
  stage.remove(`p:${leaf}`);
  stage.remove(`s:${leaf}`);
}

// ---------- UI parts ----------

const prejoin = new Prejoin({
  onJoin: (name) => join(name),
  onToggleMic: () => toggleMic(),
  onToggleCam: () => toggleCam(),
  onCamera: async (id) => {
    media.cameraId = id;
    if (!state.camOn) return;
    try {
      await media.startCamera(id);
    } catch (err) {
      showError(describeMediaError(err, 'camera'));
    }
  },
  onMic: async (id) => {
    try {
      await media.setMic(id);
    } catch (err) {
      showError(describeMediaError(err, 'microphone'));
    }
  },
  onSpeaker: async (id) => {
    try {
      await playout.setSinkId(id);
    } catch (err) {
      showError(`Could not switch speaker: ${err.message}`);
    }
  },
});

let autoOpening = false;
const stage = new Stage({
  stage: $('#stage'),
  grid: $('#grid'),
  strip: $('#strip'),
  onTileCreated: (tile) => { if (!tile.self) link.setCanvas(tile.id, tile.media); },
  onTileRemoved: (tile) => { if (!tile.self) link.dropCanvas(tile.id); },
});

const side = new SidePanel({
  onOpenChange: (name) => {
    if (name === 'chat') {
      state.unread = 0;
      renderUnread();
      if (!autoOpening) setTimeout(() => $('#chat-input').focus(), 0);
    }
    requestAnimationFrame(() => stage.layout());
  },
});

const padlock = new Padlock({
  label: $('#padlock'),
  button: $('#padlock-btn'),
  detail: $('#padlock-detail'),
  warnDot: $('#padlock-warn-dot'),
  alerts: $('#alerts'),
  onShowDetails: () => side.show('people'),
});

const chat = new ChatLog({
  onSend: (text) => {
    if (state.phase !== 'in_meeting') return false;
    if (!link.send({ type: 'chat', text: text.slice(0, 4000) })) {
      showError('Not connected: the message was not sent.');
      return false;
    }
    return true;
  },
});

function renderUnread() {
  const badge = $('#chat-unread');
  badge.hidden = state.unread === 0;
  badge.textContent = String(state.unread);
  $('#chat-dot').hidden = state.unread === 0;
}

// ---------- phases and screens ----------

function showScreen(name) {
  for (const [key, el] of Object.entries(screens)) el.hidden = key !== name;
  $('#app').dataset.phase = state.phase;
}

function setWait(title, text) {
  $('#wait-title').textContent = title;
  $('#wait-text').textContent = text;
  $('#wait-fingerprint').hidden = true;
  showScreen('wait');
}

/** In the lobby: our own identity fingerprint, to read to the host if asked. */
function showOwnFingerprint() {
  const fp = state.hello && state.hello.fingerprint;
  $('#wait-fingerprint-value').textContent = fp || '';
  $('#wait-fingerprint').hidden = !fp;
}

function enterPhase(phase) {
  const previous = state.phase;
  state.phase = phase;
  stats.phase = phase;
  if (state.ended) return;
  switch (phase) {
    case 'prejoin':
      if (state.joinRequested) setWait('Connecting…', 'Setting up encryption keys with the meeting.');
      else showScreen('prejoin');
      break;
    case 'connecting':
      setWait('Connecting…', 'Setting up encryption keys with the meeting.');
      break;
    case 'lobby':
      setWait('Waiting to be let in',
        'The host has been told you are here, with your name and key fingerprint, and is deciding '
        + 'whether to let you in. Keep this tab open.');
      showOwnFingerprint();
      break;
    case 'in_meeting':
      if (previous !== 'in_meeting') startMeetingView();
      break;
    case 'ended':
      endMeeting('Meeting ended', 'The meeting has ended.');
      break;
    default:
      break;
  }
  updateSending();
}

function startMeetingView() {
  state.meetingStart = performance.now();
  showScreen('meeting');
  if (!playout.ctx) {
    // Already in the meeting without a join click: this tab was reloaded and
    // reconnected to the running engine. Start audio; the browser may want a click.
    startAudio();
  }
  setTimeout(() => {
    if (!playout.ctx || playout.ctx.state !== 'suspended' || state.ended) return;
    toast('Click anywhere to turn on meeting audio.', { ms: 8000, iconName: 'speaker' });
    const resume = () => {
      playout.start();
      document.removeEventListener('pointerdown', resume, true);
      document.removeEventListener('keydown', resume, true);
    };
    document.addEventListener('pointerdown', resume, true);
    document.addEventListener('keydown', resume, true);
  }, 800);
  const self = stage.ensure('p:self', { name: state.name || 'You', self: true, colorKey: 'self' });
  self.setStream(state.camOn ? media.videoTrack : null);
  self.setMicMuted(!state.micOn);
  renderControls();
  link.requestKeyframe('video');
  if (window.innerWidth >= 1100 && !side.current) {
    // Wide screens start with the chat open (the security code is in the top bar).
    autoOpening = true;
    side.show('chat');
    autoOpening = false;
  }
  requestAnimationFrame(() => stage.layout());
}

let teardownDone = false;
function teardown() {
  if (teardownDone) return;
  teardownDone = true;
  updateSending();
  if (state.screenTrack) state.screenTrack.stop();
  state.screenTrack = null;
  media.onTracksChanged = null;
  media.stop();
  link.close();
  playout.close();
  stage.clear();
}

function endMeeting(heading, text) {
  if (state.ended) return;
  state.ended = true;
  stats.phase = 'ended';
  $('#app').dataset.phase = 'ended';
  $('#ended-title').textContent = heading;
  $('#ended-text').textContent = text || '';
  $('#ended-text').hidden = !text;
  showScreen('ended');
  document.title = 'Clave — meeting ended';
  teardown();
}

// ---------- control messages ----------

function handleControl(msg) {
  switch (msg.type) {
    case 'hello':
      state.hello = msg;
      prejoin.setHello(msg);
      renderInfoUrl();
      if (!state.joinRequested && !state.ended) {
        state.phase = 'prejoin';
        stats.phase = 'prejoin';
        showScreen('prejoin');
      }
      break;
    case 'state':
      applyState(msg);
      break;
    case 'padlock':
      stats.padlock = msg.state;
      stats.padlockDetail = msg.detail;
      padlock.set(msg.state, msg.detail);
      break;
    case 'frame_failed': {
      const name = msg.name || (msg.sender !== null ? nameOf(msg.sender) : '');
      stats.frameFailures.push({ sender: msg.sender, name, reason: msg.reason, at: Date.now() });
      if (stats.frameFailures.length > 200) stats.frameFailures.shift();
      padlock.frameFailed({ sender: msg.sender, name, reason: msg.reason });
      break;
    }
    case 'chat': {
      if (!msg.text) break;
      recordChat({ sender: msg.sender, name: msg.name, text: msg.text, ts: msg.ts });
      const isNew = chat.receive(msg, state.selfLeaf);
      if (isNew && msg.sender !== state.selfLeaf && side.current !== 'chat') {
        state.unread++;
        renderUnread();
        toast(`${msg.name}: ${msg.text}`, { ms: 4000, iconName: 'chat' });
      }
      break;
    }
    case 'alert':
      stats.alerts.push({ kind: msg.kind, message: msg.message, at: Date.now() });
      if (stats.alerts.length > 100) stats.alerts.shift();
      securityAlerts.add(msg);
      break;
    case 'keyframe_request':
      stats.keyframeRequestsReceived++; // the media worker already acted on it
      break;
    case 'ended':
      enterPhaseEnded(msg.reason, msg.outcome);
      break;
    case 'error':
      showError(msg.message);
      if (state.joinRequested && state.phase === 'prejoin') {
        state.joinRequested = false;
        prejoin.setBusy(false);
        showScreen('prejoin');
      }
      break;
    default:
      break;
  }
}

function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return '';
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

const OUTCOME_TITLES = {
  declined: 'Your request to join was declined',
  locked: 'The meeting is locked',
  full: 'The lobby is full',
};

/** A heading for the ended screen: a host's lobby answer, else from the engine's reason. */
function endedTitle(rawReason, outcome) {
  if (outcome && OUTCOME_TITLES[outcome]) return OUTCOME_TITLES[outcome];
  const r = String(rawReason || '').trim().toLowerCase();
  if (r.startsWith('the host declined')) return 'Your request to join was declined';
  if (r.startsWith('the meeting is locked')) return 'The meeting is locked';
  if (r.startsWith('the lobby is full')) return 'The lobby is full';
  if (r.startsWith('removed from the meeting')) return 'You were removed from the meeting';
  if (r.includes('invitation was replaced')) return 'The invitation was replaced';
  if (r.includes('to admit you') || r.includes('before you were admitted')) return 'Nobody could let you in';
  if (r.startsWith('the relay refused')) return 'The relay refused to let you in';
  if (r.startsWith('could not')) return 'Could not join the meeting';
  if (r.includes('connection to the relay was lost')) return 'Connection lost';
  if (r.startsWith('you left')) return 'You left the meeting';
  return 'Meeting ended';
}

function enterPhaseEnded(rawReason, outcome = null) {
  const reason = sentence(rawReason);
  if (state.ended && !state.leaving && reason) {
    // The reason may follow the "ended" phase (a reloaded tab gets state first).
    $('#ended-title').textContent = endedTitle(rawReason, outcome);
    $('#ended-text').textContent = reason;
    $('#ended-text').hidden = false;
    return;
  }
  state.phase = 'ended';
  endMeeting(state.leaving ? 'You left the meeting' : endedTitle(rawReason, outcome), reason || 'The meeting has ended.');
}

function applyState(msg) {
  const oldLeaves = new Set(state.roster.map((m) => m.leaf));
  const wasInMeeting = state.phase === 'in_meeting';
  const oldNames = new Map(state.roster.map((m) => [m.leaf, m.name]));
  const oldHosts = new Map(state.roster.map((m) => [`${m.leaf}:${m.fingerprint}`, m.is_host]));
  const wasHost = state.isHost;
  state.selfLeaf = msg.self_leaf;
  state.isHost = msg.is_host;
  state.roster = msg.roster;
  state.lobby = msg.lobby;
  state.policy = msg.policy;
  state.pending = msg.pending_removals;
  state.epoch = msg.epoch;
  stats.selfLeaf = msg.self_leaf;
  stats.epoch = msg.epoch;
  stats.ordering = msg.ordering;
  stats.pendingRemovals = msg.pending_removals;
  stats.roles = Object.fromEntries(msg.roster.map((m) => [m.leaf, m.role]));

  // The invitation: hosts may replace it (members get the new one).
  const linkReplaced = Boolean(state.link && msg.link && state.link !== msg.link && !state.ended);
  state.link = msg.link;
  state.infoUrl = msg.info_url;
  renderInfoUrl();
  renderOrdering(msg.ordering);

  const codeChanged = msg.security_code !== state.securityCode && state.securityCode !== null;
  state.securityCode = msg.security_code;
  stats.securityCode = msg.security_code;
  renderSecurityCode(msg.security_code, msg.epoch);

  // names, tiles
  const names = {};
  for (const m of msg.roster) names[m.leaf] = m.name;
  stats.names = names;
  const self = msg.roster.find((m) => m.is_self || m.leaf === msg.self_leaf);
  if (self) {
    state.name = self.name;
    stage.get('p:self')?.setName(self.name);
  }
  let newcomer = false;
  const notes = [];
  if (msg.phase === 'in_meeting') {
    for (const m of msg.roster) {
      if (m.is_self || m.leaf === msg.self_leaf) continue;
      if (!oldLeaves.has(m.leaf)) {
        newcomer = true;
        notes.push(`${m.name} joined`);
      }
      stage.ensure(`p:${m.leaf}`, { name: m.name, colorKey: `p:${m.leaf}` });
      stage.get(`s:${m.leaf}`)?.setName(m.name);
    }
    const present = new Set(msg.roster.map((m) => m.leaf));
    for (const leaf of oldLeaves) {
      if (!present.has(leaf) && leaf !== msg.self_leaf) {
        notes.push(`${oldNames.get(leaf) || `Participant ${leaf}`} left`);
        forgetSender(leaf);
      }
    }
    for (const m of msg.roster) {
      const before = oldHosts.get(`${m.leaf}:${m.fingerprint}`);
      if (before === undefined || before === m.is_host || m.is_self) continue;
      notes.push(m.is_host ? `${m.name} is now a host` : `${m.name} is no longer a host`);
    }
    if (wasInMeeting && wasHost !== msg.is_host) {
      notes.push(msg.is_host ? 'You are now a host' : 'You are no longer a host');
      toast(msg.is_host
        ? 'You are now a host: you can admit and remove people and replace the invitation.'
        : 'You are no longer a host.', { iconName: 'shield' });
    }
    if (wasInMeeting && (notes.length || codeChanged)) {
      const what = notes.length ? `${notes.join(', ')}. ` : '';
      chat.system(codeChanged ? `${what}New security code: compare it again.` : what.trim());
    }
    // Tiles for decoders of leaves that left while we were not looking.
    for (const tile of [...stage.tiles.values()]) {
      const leaf = Number(tile.id.slice(2));
      if (!tile.self && Number.isFinite(leaf) && !present.has(leaf)) forgetSender(leaf);
    }
  }
  if (newcomer) {
    link.requestKeyframe('video');
    link.requestKeyframe('screen');
  }
  if (linkReplaced) {
    stats.invitationsReplaced++;
    toast('Invitation replaced: share the new one. The old link no longer works.', { ms: 7000, iconName: 'link' });
    chat.system('The invitation was replaced. The old link no longer works.');
    if (!$('#invite-pop').hidden) $('#invite-input').value = msg.link;
  }

  // host tools and lobby
  const newLobby = msg.lobby.filter((e) => !lobbySeen.has(e.key));
  for (const e of msg.lobby) lobbySeen.add(e.key);
  if (msg.is_host && newLobby.length && msg.phase === 'in_meeting' && document.hidden) {
    document.title = `${newLobby[0].name} is asking to join — Clave`;
  }
  $('#host-tools').hidden = !msg.is_host;
  $('#host-badge').hidden = !msg.is_host;
  $('#locked-badge').hidden = !msg.policy.locked;
  $('#rotate-box').hidden = !msg.is_host;
  setSwitch($('#toggle-lock'), msg.policy.locked);
  setSwitch($('#toggle-auto-admit'), msg.policy.auto_admit);
  const note = msg.policy.locked
    ? 'Locked: people who knock are told the meeting is locked, so there will be no requests to admit.'
    : msg.policy.auto_admit
      ? 'Anyone with the invitation gets in without asking. Watch the list below for names and fingerprints you do not expect.'
      : 'People with the invitation wait in the lobby until a host admits them.';
  if ($('#admission-note').textContent !== note) $('#admission-note').textContent = note;
  renderLobby(msg.is_host ? msg.lobby : [], {
    roster: msg.roster,
    locked: msg.policy.locked,
    onAdmit: (entry) => link.send({ type: 'admit', id: entry.id }),
    onDeny: (entry) => link.send({ type: 'deny', id: entry.id }),
  });
  renderParticipants(msg.roster, {
    isHost: msg.is_host,
    pending: msg.pending_removals,
    onVerify: (m, verified) => setVerified(m, verified),
    onSetHost: (m, host) => setHost(m, host),
    onRemove: (m) => askRemove(m),
  });
  if (removeTarget && !stillHere(removeTarget)) {
    const gone = removeTarget.name;
    closeRemoveDialog();
    toast(`${gone} is no longer in the meeting.`);
  }
  if (msg.phase === 'in_meeting') document.title = `Clave — ${msg.roster.length} in meeting`;
  if (msg.phase !== state.phase || msg.phase === 'in_meeting') enterPhase(msg.phase);
  if (!state.ended) stats.phase = msg.phase;
}
const lobbySeen = new Set();

function setSwitch(el, on) {
  el.setAttribute('aria-checked', String(on));
}

// ---------- actions ----------

function startAudio() {
  const first = !playout.ctx;
  const ready = playout.start();
  if (first) ready.then((port) => { if (port) link.setAudioPort(port); });
  return ready;
}

async function join(name) {
  state.name = name;
  state.joinRequested = true;
  prejoin.setBusy(true);
  // The AudioContext must be created in the click (user gesture).
  const worklet = startAudio();
  if (!link.send({ type: 'join', name })) {
    state.joinRequested = false;
    prejoin.setBusy(false);
    showError('Not connected to the Clave engine yet. Try again in a moment.');
    return;
  }
  if (state.phase === 'prejoin') setWait('Connecting…', 'Setting up encryption keys with the meeting.');
  const speaker = $('#speaker-select').value;
  await worklet;
  if (speaker) playout.setSinkId(speaker).catch(() => {});
}

async function toggleMic() {
  const turningOn = !state.micOn;
  if (turningOn && !media.audioTrack) {
    try {
      await media.setMic(media.micId);
    } catch (err) {
      showError(describeMediaError(err, 'microphone'));
      return;
    }
  }
  state.micOn = turningOn;
  renderControls();
  updateSending();
}

let camBusy = false;
async function toggleCam() {
  if (camBusy) return;
  camBusy = true;
  try {
    if (state.camOn) {
      state.camOn = false;
      media.stopCamera();
    } else {
      try {
        await media.startCamera();
        state.camOn = true;
      } catch (err) {
        showError(describeMediaError(err, 'camera'));
      }
      media.onTracksChanged?.();
    }
  } finally {
    camBusy = false;
    renderControls();
    updateSending();
  }
}

async function toggleScreen() {
  if (state.phase !== 'in_meeting') return;
  if (state.screenTrack) {
    stopScreen();
    return;
  }
  let track;
  try {
    track = await captureScreen();
  } catch (err) {
    if (err && err.name === 'NotAllowedError') return; // the user cancelled the picker
    showError(describeMediaError(err, 'screen share'));
    return;
  }
  if (state.ended) {
    track.stop();
    return;
  }
  state.screenTrack = track;
  track.addEventListener('ended', () => {
    if (state.screenTrack === track) stopScreen();
  });
  link.setSource('screen', track);
  const tile = stage.ensure('s:self', { name: 'You', screen: true, self: true, colorKey: 'self' });
  tile.setStream(track);
  renderControls();
  updateSending();
  toast('You are presenting your screen. Everyone in the meeting can see it.', { kind: 'ok' });
}

function stopScreen() {
  const track = state.screenTrack;
  state.screenTrack = null;
  link.setSource('screen', null);
  updateSending();
  if (track) track.stop();
  stage.remove('s:self');
  renderControls();
}

function renderControls() {
  prejoin.setToggles(state.micOn, state.camOn);
  const mic = $('#toggle-mic');
  mic.setAttribute('aria-pressed', String(state.micOn));
  mic.setAttribute('aria-label', state.micOn ? 'Mute microphone' : 'Unmute microphone');
  mic.querySelector('.ctrl-label').textContent = state.micOn ? 'Mute' : 'Unmute';
  mic.dataset.state = state.micOn ? 'on' : 'off';
  const cam = $('#toggle-cam');
  cam.setAttribute('aria-pressed', String(state.camOn));
  cam.setAttribute('aria-label', state.camOn ? 'Turn camera off' : 'Turn camera on');
  cam.querySelector('.ctrl-label').textContent = state.camOn ? 'Stop video' : 'Start video';
  cam.dataset.state = state.camOn ? 'on' : 'off';
  const share = $('#toggle-screen');
  share.setAttribute('aria-pressed', String(!!state.screenTrack));
  share.setAttribute('aria-label', state.screenTrack ? 'Stop sharing your screen' : 'Share your screen');
  share.querySelector('.ctrl-label').textContent = state.screenTrack ? 'Stop sharing' : 'Share screen';
  const self = stage.get('p:self');
  if (self) self.setMicMuted(!state.micOn);
}

function leave() {
  if (state.ended) return;
  state.leaving = true;
  link.send({ type: 'leave' });
  endMeeting('You left the meeting', '');
}

/** The member at `m.leaf` if it is still the same person (leaf indices are reused). */
function stillHere(m) {
  return state.roster.find((r) => r.leaf === m.leaf && r.fingerprint === m.fingerprint) || null;
}

function sendAbout(m, message, what) {
  if (!stillHere(m)) {
    showError(`Cannot ${what}: ${m.name} is no longer in the meeting.`);
    return false;
  }
  if (!link.send(message)) {
    showError(`Not connected: could not ${what}.`);
    return false;
  }
  return true;
}

function setVerified(m, verified) {
  if (!sendAbout(m, { type: 'verify', leaf: m.leaf, fingerprint: m.fingerprint, verified }, 'change who is verified')) return;
  toast(verified
    ? `${m.name} is marked as verified. Clave remembers their key for later meetings.`
    : `${m.name} is no longer marked as verified.`, { kind: 'ok', iconName: verified ? 'check' : 'shield' });
}

function setHost(m, host) {
  const what = host ? `make ${m.name} a host` : 'change the host role';
  if (!sendAbout(m, { type: 'set_host', leaf: m.leaf, fingerprint: m.fingerprint, host }, what)) return;
  if (m.is_self) toast('Giving up your host role…');
  else toast(host ? `Making ${m.name} a host…` : `Taking the host role from ${m.name}…`);
}

// Remove: a small confirm dialog (native <dialog>: modal, focus kept inside, Esc cancels).
const removeDialog = $('#remove-dialog');
let removeTarget = null;  // {leaf, fingerprint, name}
let removeOpener = null;  // the button that opened it, to return focus to

function askRemove(m) {
  if (!stillHere(m)) {
    showError(`${m.name} is no longer in the meeting.`);
    return;
  }
  removeTarget = { leaf: m.leaf, fingerprint: m.fingerprint, name: m.name };
  removeOpener = document.activeElement;
  $('#remove-title').textContent = `Remove ${m.name} from the meeting?`;
  $('#remove-rotate').checked = true;
  $('#remove-confirm').textContent = `Remove ${m.name}`;
  removeDialog.showModal();
  $('#remove-cancel').focus();
}

function closeRemoveDialog() {
  if (removeDialog.open) removeDialog.close();
}

removeDialog.addEventListener('close', () => {
  const target = removeTarget;
  removeTarget = null;
  // Back to the button that opened the dialog, or its rebuilt twin, or the list heading.
  let back = removeOpener && removeOpener.isConnected ? removeOpener : null;
  if (!back && target) {
    back = $('#participants').querySelector(`[data-key="${CSS.escape(`${target.leaf}:${target.fingerprint}`)}"] [data-remove]`);
  }
  removeOpener = null;
  (back || $('#people-title')).focus();
});
$('#remove-cancel').addEventListener('click', () => closeRemoveDialog());
$('#remove-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const target = removeTarget;
  const rotate = $('#remove-rotate').checked;
  closeRemoveDialog();
  if (!target) return;
  const message = { type: 'remove', leaf: target.leaf, fingerprint: target.fingerprint, replace_invitation: rotate };
  if (!sendAbout(target, message, `remove ${target.name}`)) return;
  toast(rotate
    ? `Removing ${target.name}… The invitation will be replaced once they are out.`
    : `Removing ${target.name}…`);
});

/** The relay's web page for invitees (no secret), as the engine says it is now. */
function currentInfoUrl() {
  return state.infoUrl || (state.hello && state.hello.info_url) || null;
}

function renderInfoUrl() {
  const url = currentInfoUrl();
  $('#info-url-box').hidden = !url;
  if (url && $('#info-url').textContent !== url) $('#info-url').textContent = url;
}

function renderOrdering(ordering) {
  const banner = $('#ordering-alert');
  banner.hidden = !ordering;
  const text = ordering
    ? `${sentence(ordering)} Media stays end-to-end encrypted with the current keys.`
    : '';
  if ($('#ordering-text').textContent !== text) $('#ordering-text').textContent = text;
}

/** Copy on a user action only; `fallback()` if the clipboard is not available. */
async function copyText(text, okMessage, fallback) {
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    toast(okMessage, { kind: 'ok' });
  } catch {
    fallback();
  }
}

async function copyInvite() {
  const url = state.link || (state.hello ? state.hello.link : '');
  if (!url) {
    showError('No invite link yet.');
    return;
  }
  const opener = document.activeElement;
  await copyText(url, 'Invitation copied. Anyone with it can ask to join: send it only to the people you invite.', () => {
    invitePopOpener = opener;
    const pop = $('#invite-pop');
    pop.hidden = false;
    const input = $('#invite-input');
    input.value = url;
    input.focus();
    input.select();
  });
}

async function copyInfoUrl() {
  const url = currentInfoUrl();
  if (!url) return;
  await copyText(url, 'Web page address copied (it holds no secret).', () => {
    const range = document.createRange();
    range.selectNodeContents($('#info-url'));
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    toast('Copying did not work here: the address is selected, press Ctrl+C to copy it.');
  });
}

/** The fallback popover shows the invitation: clear it from the page when closed. */
let invitePopOpener = null;
function closeInvitePop() {
  const hadFocus = $('#invite-pop').contains(document.activeElement);
  $('#invite-pop').hidden = true;
  $('#invite-input').value = '';
  if (hadFocus && invitePopOpener && invitePopOpener.isConnected) invitePopOpener.focus();
  invitePopOpener = null;
}

function rotateInvitation() {
  if (!state.isHost) return;
  if (!link.send({ type: 'rotate' })) {
    showError('Not connected: the invitation was not replaced.');
    return;
  }
  toast('Replacing the invitation…', { iconName: 'link' });
}

// ---------- wiring ----------

$('#toggle-mic').addEventListener('click', () => toggleMic());
$('#toggle-cam').addEventListener('click', () => toggleCam());
$('#toggle-screen').addEventListener('click', () => toggleScreen());
$('#leave').addEventListener('click', () => leave());
$('#wait-cancel').addEventListener('click', () => leave());
$('#copy-link').addEventListener('click', () => copyInvite());
$('#copy-invite').addEventListener('click', () => copyInvite());
$('#copy-info-url').addEventListener('click', () => copyInfoUrl());
$('#rotate-invite').addEventListener('click', () => rotateInvitation());
$('#invite-close').addEventListener('click', () => closeInvitePop());
$('#code-btn').addEventListener('click', () => side.show('people'));
$('#toggle-lock').addEventListener('click', () => {
  link.send({ type: 'lock', locked: !state.policy.locked });
});
$('#toggle-auto-admit').addEventListener('click', () => {
  link.send({ type: 'auto_admit', on: !state.policy.auto_admit });
});

document.addEventListener('keydown', (ev) => {
  if (removeDialog.open) return; // the dialog handles its own keys (Esc cancels it)
  if (ev.key === 'Escape') {
    if (!$('#invite-pop').hidden) closeInvitePop();
    else if (side.current) side.close();
    return;
  }
  if (state.phase !== 'in_meeting' || state.ended || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const target = ev.target;
  if (target && (target.closest('input, textarea, select, [contenteditable]'))) return;
  const key = ev.key.toLowerCase();
  if (key === 'm') toggleMic();
  else if (key === 'v') toggleCam();
  else if (key === 'c') side.toggle('chat');
  else if (key === 'p') side.toggle('people');
  else return;
  ev.preventDefault();
});

window.addEventListener('error', (ev) => {
  showError(`Unexpected error: ${ev.message || 'unknown'}`);
});
window.addEventListener('unhandledrejection', (ev) => {
  ev.preventDefault();
  const reason = ev.reason && ev.reason.message ? ev.reason.message : String(ev.reason);
  console.warn('clave: unhandled rejection:', ev.reason);
  showError(`Unexpected error: ${reason}`);
});
// No "leave" on unload: the engine keeps the meeting when its tab goes away,
// so a reload reconnects to it. Leaving is the Leave button (or stopping clave).

// ---------- periodic work: speaker, tiles, stats ----------

function formatDuration(ms) {
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

function tick() {
  if (state.ended || state.phase !== 'in_meeting') return;
  const now = performance.now();
  $('#clock').textContent = formatDuration(now - state.meetingStart);
  const failing = new Set(padlock.failingSenders());
  let loudest = null;
  let loudestLevel = SPEAKER_THRESHOLD;
  for (const tile of stage.tiles.values()) {
    if (tile.screen) {
      if (!tile.self && tile.frameAge > SCREEN_GONE_MS) stage.remove(tile.id);
      continue;
    }
    let level;
    if (tile.self) {
      level = state.micOn ? state.localLevel : 0;
    } else {
      const leaf = Number(tile.id.slice(2));
      level = state.levels.get(leaf) || 0;
      tile.setVideoOn(tile.frameAge >= 0 && tile.frameAge < VIDEO_STALE_MS);
      const silent = state.silence.get(leaf);
      tile.setMicMuted(silent === undefined || silent > AUDIO_SILENT_MS);
      tile.setDecryptFailed(failing.has(String(leaf)));
    }
    tile.setLevel(level);
    if (level > loudestLevel) {
      loudestLevel = level;
      loudest = tile.id;
    }
  }
  for (const [leaf, level] of state.levels) state.levels.set(leaf, level * 0.7);
  state.localLevel *= 0.7;
  if (loudest) {
    if (loudest === state.speaker || !state.speaker || now - state.speakerLoudAt > SPEAKER_HOLD_MS) {
      state.speaker = loudest;
      state.speakerLoudAt = now;
    }
  } else if (state.speaker && now - state.speakerLoudAt > SPEAKER_HOLD_MS) {
    state.speaker = null;
  }
  // Highlight only when more than one person could be speaking.
  const highlight = stage.tiles.size > 1 ? state.speaker : null;
  for (const tile of stage.tiles.values()) tile.setSpeaking(tile.id === highlight);
  stats.activeSpeaker = highlight;
}
setInterval(tick, TICK_MS);


// ---------- start ----------

async function refreshDevices() {
  try {
    const devices = await media.listDevices();
    const speakerSupported = typeof AudioContext !== 'undefined' && 'setSinkId' in AudioContext.prototype;
    prejoin.setDevices(devices, media.activeIds(), speakerSupported);
  } catch (err) {
    console.warn('clave: enumerateDevices failed', err);
  }
}

async function start() {
  renderControls();
  if (typeof VideoEncoder === 'undefined' || typeof MediaStreamTrackProcessor === 'undefined') {
    showError('This browser lacks WebCodecs or MediaStreamTrackProcessor. Please use a current Chromium-based browser.');
  }
  const wantVp9 = new URLSearchParams(location.search).get('codec') === 'vp9'
    || (() => { try { return localStorage.getItem('clave.videoCodec') === 'vp9'; } catch { return false; } })();
  if (wantVp9 && await videoCodecSupported(VIDEO_CODECS.vp9)) videoCodec = VIDEO_CODECS.vp9;
  link.setCodec(videoCodec);
  stats.codec = videoCodec;
  link.connect();
  const errors = await media.open({ withCamera: state.camOn });
  if (!media.videoTrack) {
    state.camOn = false;
    prejoin.showPreview(null, errors.find((e) => e.includes('camera')) || 'Camera is off');
  }
  if (!media.audioTrack) state.micOn = false;
  for (const e of errors) showError(e);
  renderControls();
  await refreshDevices();
  navigator.mediaDevices?.addEventListener?.('devicechange', () => refreshDevices());
}

start().catch((err) => showError(`Could not start: ${err.message}`));
