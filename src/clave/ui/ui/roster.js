// Reading one engine `state` into the page: who joined, left or changed role
// since the previous one (for the chat's system lines), and the host's tools,
// lobby and participant list.

import { $ } from './dom.js';
import { renderLobby, renderParticipants } from './panels.js';
import { t } from '../i18n.js';

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
    notes.push(t('note.joined', { name: m.name }));
  }
  const present = new Set(msg.roster.map((m) => m.leaf));
  const gone = [...oldLeaves].filter((leaf) => !present.has(leaf) && leaf !== msg.self_leaf);
  for (const leaf of gone) notes.push(t('note.left', { name: oldNames.get(leaf) || t('common.participant', { leaf }) }));
  for (const m of msg.roster) {
    const was = oldHosts.get(`${m.leaf}:${m.fingerprint}`);
    if (was === undefined || was === m.is_host || m.is_self) continue;
    notes.push(t(m.is_host ? 'note.nowHost' : 'note.noLongerHost', { name: m.name }));
  }
  if (wasInMeeting && wasHost !== msg.is_host) {
    notes.push(t(msg.is_host ? 'note.youHost' : 'note.youNoLongerHost'));
  }
  return { notes, newcomer, present, gone };
}

// Catalogue keys: host.note.locked, host.note.auto, host.note.lobby.

/** The host's switches, the lobby and the participant list. `act`: {send, members}. */
export function renderPanels(msg, { send, members }) {
  $('#host-tools').hidden = !msg.is_host;
  $('#host-badge').hidden = !msg.is_host;
  $('#locked-badge').hidden = !msg.policy.locked;
  $('#rotate-box').hidden = !msg.is_host;
  $('#toggle-lock').setAttribute('aria-checked', String(msg.policy.locked));
  $('#toggle-auto-admit').setAttribute('aria-checked', String(msg.policy.auto_admit));
  const note = t(msg.policy.locked ? 'host.note.locked' : msg.policy.auto_admit ? 'host.note.auto' : 'host.note.lobby');
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
