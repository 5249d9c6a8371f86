// Reading one engine `state` into the page: who joined, left or changed role
// since the previous one (for the chat's system lines), and the host's tools,
// lobby and participant list.

import { $ } from './dom.js';
import { renderLobby, renderParticipants } from './panels.js';

/**
 * What changed between `before` (the previous roster) and `msg` (a state in the meeting):
 * {notes: ["Grace joined", ...], newcomer: bool, present: Set of leaves}.
 */
export function rosterChanges(before, msg, { wasInMeeting, wasHost }) {
  const oldLeaves = new Set(before.map((m) => m.leaf));
  const oldNames = new Map(before.map((m) => [m.leaf, m.name]));
  const oldHosts = new Map(before.map((m) => [`${m.leaf}:${m.fingerprint}`, m.is_host]));
  const notes = [];
  let newcomer = false;
  for (const m of msg.roster) {
    if (m.is_self || m.leaf === msg.self_leaf || oldLeaves.has(m.leaf)) continue;
    newcomer = true;
    notes.push(`${m.name} joined`);
  }
  const present = new Set(msg.roster.map((m) => m.leaf));
  const gone = [...oldLeaves].filter((leaf) => !present.has(leaf) && leaf !== msg.self_leaf);
  for (const leaf of gone) notes.push(`${oldNames.get(leaf) || `Participant ${leaf}`} left`);
  for (const m of msg.roster) {
    const was = oldHosts.get(`${m.leaf}:${m.fingerprint}`);
    if (was === undefined || was === m.is_host || m.is_self) continue;
    notes.push(m.is_host ? `${m.name} is now a host` : `${m.name} is no longer a host`);
  }
  if (wasInMeeting && wasHost !== msg.is_host) {
    notes.push(msg.is_host ? 'You are now a host' : 'You are no longer a host');
  }
  return { notes, newcomer, present, gone };
}

const ADMISSION_NOTES = {
  locked: 'Locked: people who knock are told the meeting is locked, so there will be no requests to admit.',
  auto: 'Anyone with the invitation gets in without asking. Watch the list below for names and fingerprints you do not expect.',
  lobby: 'People with the invitation wait in the lobby until a host admits them.',
};

/** The host's switches, the lobby and the participant list. `act`: {send, members}. */
export function renderPanels(msg, { send, members }) {
  $('#host-tools').hidden = !msg.is_host;
  $('#host-badge').hidden = !msg.is_host;
  $('#locked-badge').hidden = !msg.policy.locked;
  $('#rotate-box').hidden = !msg.is_host;
  $('#toggle-lock').setAttribute('aria-checked', String(msg.policy.locked));
  $('#toggle-auto-admit').setAttribute('aria-checked', String(msg.policy.auto_admit));
  const note = ADMISSION_NOTES[msg.policy.locked ? 'locked' : msg.policy.auto_admit ? 'auto' : 'lobby'];
  if ($('#admission-note').textContent !== note) $('#admission-note').textContent = note;
  renderLobby(msg.is_host ? msg.lobby : [], {
    roster: msg.roster,
    locked: msg.policy.locked,
    waiting: msg.is_host ? msg.lobby_waiting : 0,
    onAdmit: (entry) => send({ type: 'admit', id: entry.id }),
    onAdmitAll: () => send({ type: 'admit_all' }),
    onDeny: (entry) => send({ type: 'deny', id: entry.id }),
  });
  renderParticipants(msg.roster, {
    isHost: msg.is_host,
    pending: msg.pending_removals,
    onVerify: (m, verified) => members.setVerified(m, verified),
    onSetHost: (m, host) => members.setHost(m, host),
    onRemove: (m) => members.askRemove(m),
    // A host's moderation (ui/moderation.js shows the target's side).
    onMute: (m) => send({ type: 'mute', leaf: m.leaf, fingerprint: m.fingerprint }),
    onAskUnmute: (m) => send({ type: 'ask_unmute', leaf: m.leaf, fingerprint: m.fingerprint }),
  });
  members.check();
}
