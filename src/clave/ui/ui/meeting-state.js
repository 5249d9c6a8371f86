// One engine `state` message into the page: roster and tiles (a member whose
// connection dropped shows "Reconnecting…" on its tile), the relay link banner,
// security code, invitation, host tools and lobby, then the phase.

import { $ } from './dom.js';
import { stats } from '../stats.js';
import { sentence } from './ended.js';
import { toast } from './toast.js';
import { renderSecurityCode } from './panels.js';
import { renderPanels, rosterChanges } from './roster.js';
import { t } from '../i18n.js';

const lobbySeen = new Set();

function renderOrdering(ordering) {
  const banner = $('#ordering-alert');
  banner.hidden = !ordering;
  const text = ordering
    ? t('alert.onHoldText', { reason: sentence(ordering) })
    : '';
  if ($('#ordering-text').textContent !== text) $('#ordering-text').textContent = text;
}

/**
 * `page`: {state, link, stage, chat, invite, members, connection, controls, endedScreen,
 * forgetSender(leaf), enterPhase(phase), rejoinOffer()} of app.js.
 */
export function applyState(msg, page) {
  const { state, link, stage, chat, invite, members, connection, controls, endedScreen } = page;
  if (state.rejoinRequested) {
    if (msg.phase === 'ended') return; // sent before the engine saw our Rejoin
    state.rejoinRequested = false;
    state.ended = false;
  }
  const wasInMeeting = state.phase === 'in_meeting';
  const wasHost = state.isHost;
  const before = state.roster;
  const rejoiningChanged = msg.rejoining !== state.rejoining;
  state.selfLeaf = msg.self_leaf;
  state.isHost = msg.is_host;
  state.wasHost = state.wasHost || msg.is_host;
  state.roster = msg.roster;
  state.policy = msg.policy;
  state.rejoin = msg.rejoin;
  state.rejoining = msg.rejoining;
  Object.assign(stats, {
    selfLeaf: msg.self_leaf,
    epoch: msg.epoch,
    ordering: msg.ordering,
    pendingRemovals: msg.pending_removals,
    rejoining: msg.rejoining,
    roles: Object.fromEntries(msg.roster.map((m) => [m.leaf, m.role])),
    names: Object.fromEntries(msg.roster.map((m) => [m.leaf, m.name])),
  });
  connection.set(msg.connection, msg.reconnects);

  // The invitation: hosts may replace it (members get the new one).
  const linkReplaced = Boolean(state.link && msg.link && state.link !== msg.link && !state.ended);
  state.link = msg.link;
  state.infoUrl = msg.info_url;
  invite.renderInfoUrl();
  renderOrdering(msg.ordering);

  const codeChanged = msg.security_code !== state.securityCode && state.securityCode !== null;
  state.securityCode = msg.security_code;
  stats.securityCode = msg.security_code;
  renderSecurityCode(msg.security_code, msg.epoch);

  const self = msg.roster.find((m) => m.is_self || m.leaf === msg.self_leaf);
  if (self) {
    state.name = self.name;
    stage.get('p:self')?.setName(self.name);
  }
  if (msg.phase === 'in_meeting') {
    const change = rosterChanges(before, msg, { wasInMeeting, wasHost });
    for (const m of msg.roster) {
      if (m.is_self || m.leaf === msg.self_leaf) continue;
      stage.ensure(`p:${m.leaf}`, { name: m.name, colorKey: `p:${m.leaf}` })
        .setBadge(m.away ? t('alert.reconnecting') : switchesText(m));
      stage.get(`s:${m.leaf}`)?.setName(m.name);
    }
    for (const leaf of change.gone) page.forgetSender(leaf);
    if (wasInMeeting && wasHost !== msg.is_host) {
      toast(t(msg.is_host ? 'toast.nowHost' : 'toast.noLongerHost'), { iconName: 'shield' });
    }
    if (wasInMeeting && (change.notes.length || codeChanged)) {
      const what = change.notes.length ? `${change.notes.join(', ')}. ` : '';
      chat.system(codeChanged ? `${what}${t('note.newCode')}` : what.trim());
    }
    // Tiles for decoders of leaves that left while we were not looking.
    for (const tile of [...stage.tiles.values()]) {
      const leaf = Number(tile.id.slice(2));
      if (!tile.self && Number.isFinite(leaf) && !change.present.has(leaf)) page.forgetSender(leaf);
    }
    if (change.newcomer) {
      link.requestKeyframe('video');
      link.requestKeyframe('screen');
    }
  }
  if (linkReplaced) {
    stats.invitationsReplaced++;
    toast(t('toast.inviteReplaced'), { ms: 7000, iconName: 'link' });
    chat.system(t('note.inviteReplaced'));
    invite.replaced(msg.link);
  }

  const newLobby = msg.lobby.filter((e) => !lobbySeen.has(e.key));
  for (const e of msg.lobby) lobbySeen.add(e.key);
  if (msg.is_host && newLobby.length && msg.phase === 'in_meeting' && document.hidden) {
    document.title = t('app.titleAsking', { name: newLobby[0].name });
  }
  renderPanels(msg, { send: (message) => link.send(message), members });
  page.hands.render(msg);
  page.moderation.render(msg);
  page.recording.render(msg); // "Recording by <name>" (ui/recording.js)
  if (msg.phase === 'in_meeting') document.title = t('app.titleIn', { count: msg.roster.length });
  if (msg.phase !== state.phase || msg.phase === 'in_meeting') page.enterPhase(msg.phase);
  else if (rejoiningChanged && (msg.phase === 'lobby' || msg.phase === 'connecting')) {
    page.enterPhase(msg.phase); // say why we wait
  }
  if (state.ended) endedScreen.setRejoin(page.rejoinOffer());
  else stats.phase = msg.phase;
  controls.updateSending();
}

/** A member's announced switches, as a tile badge: "Muted", "Camera off" (or ''); a
 * member that records says only "● Recording" (the People list has the rest). */
export function switchesText(m) {
  if (m.recording) return t('recording.tag');
  return [m.mic === false ? t('tile.muted') : '', m.cam === false ? t('tile.camOff') : '']
    .filter(Boolean).join(' · ');
}
