// Clave glass: the browser half of a participant. It captures, encodes,
// decodes and renders; the local engine (127.0.0.1) holds every key and does
// all the cryptography. See ARCHITECTURE.md, "The trust boundary".
//
// Module map (page thread):
//   app.js                 phases, control messages, wiring
//   engine-link.js         talks to the media worker (which owns the WebSocket)
//   protocol.js            control messages (SCHEMA) and media framing (shared with the worker)
//   stats.js               window.claveStats
//   media/capture.js       getUserMedia / enumerateDevices / getDisplayMedia
//   media/playout.js       AudioContext + jitter-buffer worklet
//   ui/controls.js         our microphone, camera and screen switches (remembered by the engine)
//   ui/prejoin.js          name, device preview and pickers
//   ui/grid.js             the stage and its tiles
//   ui/padlock.js          the honest padlock and decryption warnings
//   ui/connection.js       the "Reconnecting…" banner (relay link state)
//   ui/screens.js, ended.js   the screens; the ended one with its Rejoin button
//   ui/control.js          what the page does with each engine message
//   ui/meeting-state.js    one engine `state` into the page
//   ui/roster.js, panels.js   who joined or left; people, lobby, host tools, chat
//   ui/members.js, remove-dialog.js   verify, host role, remove
//   ui/hands.js            raised hands (queue in raise order), reactions on tiles
//   ui/moderation.js       "asks you to unmute", "muted by <host>" (the target's side)
//   ui/recording.js        "● Recording by <name>" for all; a host's Record control
//   ui/invite.js           copying the invitation and the page for invitees
//   ui/activity.js         media worker status; clock, active speaker, tile states
//   ui/keys.js             keyboard shortcuts
//   ui/alerts.js, toast.js security alerts, toasts
//   ui/problems.js         what the user is told when something fails (in words)
//   i18n.js, i18n/*.js     the words: one catalogue per language, English the fallback
// Media worker (media/worker.js): WebSocket, media/video.js (VideoEncoder,
// VideoDecoder per sender+kind drawing into OffscreenCanvas), media/audio.js
// (AudioEncoder, AudioDecoder per sender), media/clock.js (capture times).
// Audio worklet: media/jitter-worklet.js (jitter buffers, concealment, mixing).
//
// The engine outlives a meeting: after Leave or a failure the page offers to
// rejoin (a fresh admission). While the engine restores its relay link the
// meeting stays on screen under a "Reconnecting…" banner.

import { applyStatic, bindLanguageSelect, t } from './i18n.js';
import { EngineLink } from './engine-link.js';
import { recordError, stats } from './stats.js';
import { VIDEO_CODECS, videoCodecSupported } from './media/video.js';
import { AudioPlayout } from './media/playout.js';
import { $ } from './ui/dom.js';
import { SecurityAlerts } from './ui/alerts.js';
import { initToasts, toast, toastError } from './ui/toast.js';
import { Problems, audioPrompt } from './ui/problems.js';
import { Prejoin } from './ui/prejoin.js';
import { Stage } from './ui/grid.js';
import { Padlock } from './ui/padlock.js';
import { ConnectionBanner } from './ui/connection.js';
import { EndedScreen, describeEnd, sentence } from './ui/ended.js';
import { Screens } from './ui/screens.js';
import { InviteTools } from './ui/invite.js';
import { LocalControls } from './ui/controls.js';
import { MemberActions } from './ui/members.js';
import { controlHandlers } from './ui/control.js';
import { TICK_MS, applyStatus, tick } from './ui/activity.js';
import { bindKeys } from './ui/keys.js';
import { ChatLog, SidePanel } from './ui/panels.js';
import { ShortcutHelp } from './ui/shortcut-help.js';
import { HandsAndReactions } from './ui/hands.js';
import { ModerationView } from './ui/moderation.js';
import { RecordingView } from './ui/recording.js';
import { LayoutSwitch, fitControls, keepToastsClear } from './ui/layout.js';
import { DeviceMenu, exposeDevices } from './ui/devices.js';

const HELLO_WAIT_MS = 2000; // open the devices without the engine's hello after this long

const state = {
  hello: null,
  phase: 'loading',
  joinRequested: false,
  rejoinRequested: false, // Rejoin clicked: ignore what the engine sent before it saw that
  ended: false,        // the meeting is over (the engine may start another: Rejoin)
  dead: false,         // the engine is gone: nothing more can happen in this page
  leaving: false,
  selfLeaf: null,
  isHost: false,
  wasHost: false,      // hosted at some point (Rejoin is explained accordingly)
  name: '',
  roster: [],
  policy: { locked: false, auto_admit: false },
  link: null,          // the current invitation (clave://…, holds the secret) while in the meeting
  infoUrl: null,
  securityCode: null,
  rejoin: null,        // after the end: what Rejoin does ("knock" | "restart"), from the engine
  rejoining: null,     // why the engine is being admitted afresh (it missed too much while away)
  outcome: null,       // a host's lobby answer that ended the meeting
  joined: null,        // in the meeting since the last Join (false: not yet; null: unknown, a reload)
  meetingStart: 0,
  speaker: null,
  speakerLoudAt: 0,
  localLevel: 0,
  levels: new Map(),   // leaf -> smoothed level of what they say
  silence: new Map(),  // leaf -> ms since their last audio packet
  unread: 0,
};

// The page's static words in the chosen language (i18n.js), and the language selectors.
applyStatic(document);

const screens = new Screens();

initToasts($('#toasts'));
const securityAlerts = new SecurityAlerts($('#security-alerts'));

function showError(message) {
  recordError(message);
  toastError(message);
}

const problems = new Problems({
  showError,
  inMeeting: () => state.phase === 'in_meeting' && !state.ended && !state.dead,
  playout: () => playout,
});

let helloArrived;
const helloReady = new Promise((resolve) => { helloArrived = resolve; });

// ---------- engine link (and the media worker behind it) ----------

let lastBadMessageToast = -Infinity;
const link = new EngineLink({
  onControl: (msg) => handleControl(msg),
  onStatus: (status) => applyStatus(status, state, stage, (level) => {
    if (state.phase !== 'in_meeting') prejoin.setMicLevel(controls.micOn ? level : 0);
  }),
  onNeedTile: ({ id, sender, screen }) => {
    if (state.ended || sender === state.selfLeaf) return;
    stage.ensure(id, { name: nameOf(sender), screen, colorKey: `p:${sender}` });
  },
  onClose: (ev) => {
    if (!ev.everOpened) {
      engineGone(t('app.couldNotConnect'), t('app.couldNotConnectText'));
    } else if (state.ended && !state.rejoinRequested) {
      engineGone(null, null);
    } else {
      if (ev.reason) console.warn('clave: the engine closed the connection:', ev.code, ev.reason);
      engineGone(t('app.disconnected'), t('app.disconnectedText'));
    }
  },
  onBadMessage: (problem) => {
    console.warn('clave: bad message from the engine:', problem);
    const now = performance.now();
    if (now - lastBadMessageToast > 10000) {
      lastBadMessageToast = now;
      showError(t('app.badMessage'));
    }
  },
  onMediaError: (what, message) => problems.media(what, message),
  onUnexpected: (err) => problems.unexpected(err),
});

// ---------- playback ----------

const playout = new AudioPlayout({
  onStats: (streams) => {
    stats.audio = streams;
    link.setAudioStats(streams);
  },
  onPort: (port) => link.setAudioPort(port),
  onFailed: () => problems.audioFailed(),
});

function nameOf(leaf) {
  const member = state.roster.find((m) => m.leaf === leaf);
  return member ? member.name : t('common.participant', { leaf });
}

function forgetSender(leaf) {
  link.forget(leaf);
  state.levels.delete(leaf);
  stage.remove(`p:${leaf}`);
  stage.remove(`s:${leaf}`);
}

/** Every other member's tiles and decoders (a new meeting core numbers members anew). */
function forgetOthers() {
  for (const tile of [...stage.tiles.values()]) {
    const leaf = Number(tile.id.slice(2));
    if (!tile.self && Number.isFinite(leaf)) forgetSender(leaf);
  }
  for (const m of state.roster) forgetSender(m.leaf);
  state.roster = [];
  state.selfLeaf = null;
  state.securityCode = null;
}

// ---------- UI parts ----------

let videoCodec = VIDEO_CODECS.vp8;

const prejoin = new Prejoin({
  onJoin: (name) => join(name),
  onToggleMic: () => controls.toggleMic(),
  onToggleCam: () => controls.toggleCam(),
  onCamera: (id) => controls.chooseCamera(id), // remembered for next time (ui/devices.js)
  onMic: (id) => controls.chooseMic(id),
  onSpeaker: (id) => controls.chooseSpeaker(id),
});
for (const select of [$('#lang-select'), $('#lang-select-meeting')]) {
  bindLanguageSelect(select, { beforeSwitch: () => prejoin.keepDraft() });
}

let autoOpening = false;
const stage = new Stage({
  stage: $('#stage'),
  grid: $('#grid'),
  strip: $('#strip'),
  onTileCreated: (tile) => { if (!tile.self) link.setCanvas(tile.id, tile.media); },
  onTileRemoved: (tile) => { if (!tile.self) link.dropCanvas(tile.id); },
  onPin: (tile, on) => link.send({ type: on ? 'pin' : 'unpin', leaf: Number(tile.id.slice(2)) }),
});

const connection = new ConnectionBanner();

const controls = new LocalControls({
  link,
  stage,
  prejoin,
  canSend: () => state.phase === 'in_meeting' && !state.ended && !connection.reconnecting,
  canShare: () => state.phase === 'in_meeting' && !state.ended,
  canReport: () => state.hello !== null && !state.dead,
  onError: (message) => showError(message),
  playout,
});
const layoutSwitch = new LayoutSwitch({ stage, send: (message) => link.send(message) });
const deviceMenu = new DeviceMenu({ controls, inMeeting: () => state.phase === 'in_meeting' && !state.ended });
exposeDevices(link, playout);
keepToastsClear($('#toasts'), $('#side'));
fitControls($('.controls'));

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

const endedScreen = new EndedScreen({ onRejoin: () => rejoin() });

const chat = new ChatLog({
  onSend: (text) => {
    if (state.phase !== 'in_meeting') return false;
    if (connection.reconnecting) {
      showError(t('chat.notSentReconnecting'));
      return false;
    }
    if (!link.send({ type: 'chat', text: text.slice(0, 4000) })) {
      showError(t('chat.notSent'));
      return false;
    }
    return true;
  },
});

const invite = new InviteTools({
  invitation: () => state.link || (state.hello ? state.hello.link : ''),
  infoUrl: () => state.infoUrl || (state.hello && state.hello.info_url) || null,
  rotate: () => (state.isHost ? link.send({ type: 'rotate' }) : null),
  onError: (message) => showError(message),
});

const members = new MemberActions({
  roster: () => state.roster,
  send: (message) => link.send(message),
  onError: (message) => showError(message),
});

const hands = new HandsAndReactions({
  send: (message) => state.phase === 'in_meeting' && !state.ended && link.send(message),
  stage,
  nameOf: (leaf) => nameOf(leaf),
});
const moderation = new ModerationView({ controls });
const recording = new RecordingView({
  send: (message) => state.phase === 'in_meeting' && !state.ended && link.send(message),
  onError: (message) => showError(message),
});

/** What ui/meeting-state.js and ui/control.js need of this page. */
const page = {
  state, link, stage, chat, invite, members, connection, controls, endedScreen, hands, moderation, recording,
  layoutSwitch,
  forgetSender, enterPhase, rejoinOffer,
  prejoin, padlock, securityAlerts, side, showScreen, showError, nameOf, renderUnread,
  enterPhaseEnded, helloArrived: () => { helloArrived(); layoutSwitch.announce(); },
};

function renderUnread() {
  const badge = $('#chat-unread');
  badge.hidden = state.unread === 0;
  badge.textContent = String(state.unread);
  $('#chat-dot').hidden = state.unread === 0;
}

// ---------- phases and screens ----------

function showScreen(name) {
  screens.show(name, state.phase);
}

function enterPhase(phase) {
  const previous = state.phase;
  state.phase = phase;
  stats.phase = phase;
  if (phase === 'in_meeting') state.joined = true;
  else if ((phase === 'connecting' || phase === 'lobby') && state.joined === null) state.joined = false;
  if (state.ended) return;
  if (previous === 'in_meeting' && phase !== 'in_meeting') forgetOthers(); // a new core comes
  switch (phase) {
    case 'prejoin':
      if (state.joinRequested) screens.connecting(phase);
      else showScreen('prejoin');
      break;
    case 'connecting':
      screens.connecting(phase, state.rejoining);
      break;
    case 'lobby':
      screens.lobby(state.rejoining, state.hello && state.hello.fingerprint);
      break;
    case 'in_meeting':
      if (previous !== 'in_meeting') startMeetingView();
      break;
    case 'ended': { // the reason follows in the engine's `ended` message
      const { title, text } = describeEnd('', null, state.joined);
      endMeeting(title, state.joined === null ? '' : text);
      break;
    }
    default:
      break;
  }
  controls.updateSending();
}

function startMeetingView() {
  state.meetingStart = performance.now();
  showScreen('meeting');
  if (!playout.ctx) {
    // Already in the meeting without a join click: this tab was reloaded and
    // reconnected to the running engine. Start audio; the browser may want a click.
    startAudio();
  }
  playout.resumeOnGesture(() => {
    if (!state.ended) toast(audioPrompt(), { ms: 8000, iconName: 'speaker' });
  });
  const self = stage.ensure('p:self', { name: state.name || t('common.you'), self: true, colorKey: 'self' });
  self.setStream(controls.camOn ? controls.media.videoTrack : null);
  self.setMicMuted(!controls.micOn);
  controls.render();
  link.requestKeyframe('video');
  if (window.innerWidth >= 1100 && !side.current) {
    // Wide screens start with the chat open (the security code is in the top bar).
    autoOpening = true;
    side.show('chat');
    autoOpening = false;
  }
  requestAnimationFrame(() => stage.layout());
}

/** What the Rejoin button offers now, or null (the engine is gone). */
function rejoinOffer() {
  if (state.dead || !link.open) return null;
  const mode = state.rejoin || (state.wasHost && state.roster.length <= 1 ? 'restart' : 'knock');
  return { mode, wasHost: state.wasHost, outcome: state.outcome };
}

/** The meeting is over; the engine lives on and can start another (Rejoin). */
function endMeeting(heading, text) {
  if (state.ended) return;
  state.ended = true;
  state.joinRequested = false;
  stats.phase = 'ended';
  endedScreen.show(heading, text, rejoinOffer());
  screens.show('ended', 'ended');
  document.title = t(state.joined === true ? 'app.titleEnded' : 'app.titleNotIn');
  members.dialog.close();
  controls.stopAll(); // nothing captured or sent any more (the camera light goes out)
  forgetOthers();
  stage.clear();
}

/** The engine is gone (or never accepted this page): nothing more can happen here.
 * `heading` null: the meeting had already ended; keep saying why, only Rejoin goes. */
function engineGone(heading, text) {
  if (state.dead) return;
  state.dead = true;
  state.rejoinRequested = false;
  if (heading === null && state.ended) {
    endedScreen.setRejoin(null);
  } else {
    state.ended = false;
    endMeeting(heading || t('app.disconnected'), text);
  }
  controls.shutdown();
  link.close();
  playout.close();
  stage.clear();
}

// ---------- control messages ----------

const ON_CONTROL = controlHandlers(page);

/** One engine -> glass message, already read by protocol.js (SCHEMA.toGlass). */
function handleControl(msg) {
  if (Object.hasOwn(ON_CONTROL, msg.type)) ON_CONTROL[msg.type](msg);
}

function enterPhaseEnded(rawReason, outcome = null, joined = null) {
  if (joined !== null) state.joined = joined;
  const { title, text } = describeEnd(rawReason, outcome, state.joined);
  state.outcome = outcome;
  if (state.ended && !state.leaving && sentence(rawReason)) {
    // The reason may follow the "ended" phase (a reloaded tab gets state first).
    endedScreen.show(title, text, rejoinOffer());
    return;
  }
  state.phase = 'ended';
  endMeeting(state.leaving ? leftTitle() : title, text);
}

function leftTitle() {
  return t(state.joined === false ? 'ended.stoppedWaiting' : 'ended.left');
}

// ---------- actions ----------

function startAudio() {
  return playout.start(); // a new worklet's port reaches the media worker through onPort
}

async function join(name) {
  state.name = name;
  state.joinRequested = true;
  state.joined = false;
  prejoin.setBusy(true);
  // The AudioContext must be created in the click (user gesture).
  const worklet = startAudio();
  if (!link.send({ type: 'join', name })) {
    state.joinRequested = false;
    prejoin.setBusy(false);
    showError(t('app.notConnectedJoin'));
    return;
  }
  if (state.phase === 'prejoin') screens.connecting(state.phase);
  const speaker = $('#speaker-select').value;
  await worklet;
  if (speaker) playout.setSinkId(speaker).catch(() => {});
}

/** After the end: a fresh admission on the same engine (same identity, same name). */
async function rejoin() {
  if (state.dead || !state.ended || state.rejoinRequested) return;
  startAudio(); // in the click: the browser lets audio resume
  const name = state.name || (state.hello && state.hello.default_name) || '';
  if (!link.send({ type: 'join', name })) {
    showError(t('app.notConnectedRejoin'));
    return;
  }
  endedScreen.setBusy();
  stats.rejoins++;
  // state.ended stays true until the engine's first state after the join (see applyState).
  state.rejoinRequested = true;
  state.joinRequested = true;
  state.joined = false;
  state.leaving = false;
  state.outcome = null;
  screens.wait(t('wait.rejoining'), t('wait.settingUpAgain'), state.phase);
  await controls.openDevices();
  if (state.ended && !state.rejoinRequested) controls.stopAll(); // it failed meanwhile
}

function leave() {
  if (state.ended) return;
  state.leaving = true;
  link.send({ type: 'leave' });
  endMeeting(leftTitle(), '');
}

// ---------- wiring ----------

$('#leave').addEventListener('click', () => leave());
$('#wait-cancel').addEventListener('click', () => leave());
$('#code-btn').addEventListener('click', () => side.show('people'));
$('#toggle-lock').addEventListener('click', () => {
  link.send({ type: 'lock', locked: !state.policy.locked });
});
$('#toggle-auto-admit').addEventListener('click', () => {
  link.send({ type: 'auto_admit', on: !state.policy.auto_admit });
});

// One table binds the shortcuts and lists them in the "?" dialog.
const SHORTCUTS = [
  ['m', t('keys.mic'), () => controls.toggleMic()],
  ['v', t('keys.cam'), () => controls.toggleCam()],
  ['c', t('keys.chat'), () => side.toggle('chat')],
  ['p', t('keys.people'), () => side.toggle('people')],
  ['h', t('keys.hand'), () => hands.toggleHand()],
  ['?', t('keys.help'), () => shortcutHelp.show()],
];
const shortcutHelp = new ShortcutHelp([
  ...SHORTCUTS.map(([key, label]) => [key, label]),
  ['Esc', t('keys.escape')],
]);
bindKeys({
  dialogOpen: () => members.dialog.open || shortcutHelp.open,
  onEscape: () => {
    if (!hands.bar.hidden) hands.toggleBar(false);
    else if (invite.popOpen) invite.closePop();
    else if (side.current) side.close();
  },
  inMeeting: () => state.phase === 'in_meeting' && !state.ended,
  actions: Object.fromEntries(SHORTCUTS.map(([key, , action]) => [key, action])),
});

window.addEventListener('error', (ev) => {
  problems.unexpected(ev.error || ev.message || 'unknown');
});
window.addEventListener('unhandledrejection', (ev) => {
  ev.preventDefault();
  problems.unexpected(ev.reason);
});
// No "leave" on unload: the engine keeps the meeting for a short grace when its
// tab goes away, so a reload reconnects to it; a tab that stays closed makes it leave.

setInterval(() => {
  if (state.ended || state.phase !== 'in_meeting') return;
  tick(state, controls.micOn, stage, new Set(padlock.failingSenders()));
}, TICK_MS);

// ---------- start ----------

async function start() {
  controls.render();
  if (typeof VideoEncoder === 'undefined' || typeof MediaStreamTrackProcessor === 'undefined') {
    showError(t('app.noWebCodecs'));
  }
  const wantVp9 = new URLSearchParams(location.search).get('codec') === 'vp9'
    || (() => { try { return localStorage.getItem('clave.videoCodec') === 'vp9'; } catch { return false; } })();
  if (wantVp9 && await videoCodecSupported(VIDEO_CODECS.vp9)) videoCodec = VIDEO_CODECS.vp9;
  link.setCodec(videoCodec);
  stats.codec = videoCodec;
  link.connect();
  // The engine's hello says how the switches were (a reload): open only what was on.
  await Promise.race([helloReady, new Promise((resolve) => { setTimeout(resolve, HELLO_WAIT_MS); })]);
  if (!state.dead && !state.ended) {
    await controls.openDevices();
    await controls.restoreRemembered(); // devices kept by label (labels come with permission)
  }
  if (state.ended) controls.stopAll(); // the meeting was over before the devices opened
  await controls.refreshDevices();
  navigator.mediaDevices?.addEventListener?.('devicechange', () => {
    controls.refreshDevices();
    deviceMenu.refresh();
  });
}

start().catch((err) => {
  console.error('clave: the page could not start:', err);
  showError(t('app.couldNotStart'));
});
