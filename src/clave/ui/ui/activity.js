// What the media worker reports (every 100 ms), and four times a second in the
// meeting: the clock, who is speaking (with a hold so the highlight does not
// flicker), and each tile's video / muted / cannot-decrypt state.

import { $ } from './dom.js';
import { addDecoded, addSent, stats } from '../stats.js';

export const TICK_MS = 250;
const SPEAKER_THRESHOLD = 0.02; // RMS, about -34 dBFS
const SPEAKER_HOLD_MS = 800;
const VIDEO_STALE_MS = 1500;
const SCREEN_GONE_MS = 4500;
const AUDIO_SILENT_MS = 2500;

/** One status report of the media worker (every 100 ms): counters, levels, frame ages.
 * `onLocalLevel(level)`: our microphone's level (the pre-join meter). */
export function applyStatus(status, state, stage, onLocalLevel) {
  addDecoded(status.decoded, status.latencies);
  for (const [key, n] of Object.entries(status.decodedLayers || {})) {
    stats.decodedLayers[key] = (stats.decodedLayers[key] || 0) + n;
  }
  for (const [key, n] of Object.entries(status.receivedLayers || {})) {
    stats.receivedLayers[key] = (stats.receivedLayers[key] || 0) + n;
  }
  addSent(status.sent);
  stats.keyframeRequestsSent += status.keyframeRequests;
  stats.lagSkips = status.lagSkips;
  stats.audioDropped = status.audioDropped;
  stats.encoder = status.encoder;
  stats.dtx = status.encoder?.audio?.dtx ?? null;
  state.localLevel = Math.max(status.localLevel, state.localLevel * 0.8);
  onLocalLevel(status.localLevel);
  for (const [leaf, level] of Object.entries(status.levels)) {
    const old = state.levels.get(Number(leaf)) || 0;
    state.levels.set(Number(leaf), Math.max(level, old * 0.7));
  }
  state.silence = new Map(Object.entries(status.silence).map(([leaf, ms]) => [Number(leaf), ms]));
  for (const [id, age] of Object.entries(status.frames)) {
    const tile = stage.get(id);
    if (tile) tile.frameAge = age;
  }
  for (const [id, [w, h]] of Object.entries(status.sizes || {})) stage.get(id)?.setFrameSize(w, h);
}

function formatDuration(ms) {
  const s = Math.floor(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * One tick. `state` holds meetingStart, localLevel, levels (leaf -> level), silence
 * (leaf -> ms), speaker, speakerLoudAt; `micOn`: our microphone switch; `failing`:
 * leaves whose frames fail to decrypt.
 */
export function tick(state, micOn, stage, failing) {
  const now = performance.now();
  $('#clock').textContent = formatDuration(now - state.meetingStart);
  let loudest = null;
  let loudestLevel = SPEAKER_THRESHOLD;
  for (const tile of stage.tiles.values()) {
    if (tile.screen) {
      if (!tile.self && tile.frameAge > SCREEN_GONE_MS) stage.remove(tile.id);
      continue;
    }
    let level;
    if (tile.self) {
      level = micOn ? state.localLevel : 0;
    } else {
      const leaf = Number(tile.id.slice(2));
      level = state.levels.get(leaf) || 0;
      tile.setVideoOn(tile.onStage && tile.frameAge >= 0 && tile.frameAge < VIDEO_STALE_MS);
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
  // ... and wherever the engine hears someone speak (avatars included).
  for (const tile of stage.tiles.values()) tile.setSpeaking(tile.id === highlight || stage.speaking(tile));
  stats.activeSpeaker = highlight;
}
