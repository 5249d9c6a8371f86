// What the page does with each engine -> glass control message, one handler
// per type; protocol.js has read and checked the message first (SCHEMA.toGlass).
// A `state` goes on to ui/meeting-state.js.

import { connectRemembered } from './remembered.js';
import { adoptLanguage } from '../i18n.js';
import { recordChat, stats } from '../stats.js';
import { sentence } from './ended.js';
import { applyState } from './meeting-state.js';
import { toast } from './toast.js';

/**
 * The handlers, by message type. `page`: what ui/meeting-state.js gets of app.js, and
 * prejoin, padlock, securityAlerts, side, showScreen(name), showError(message),
 * nameOf(leaf), renderUnread(), enterPhaseEnded(reason, outcome, joined), helloArrived().
 */
export function controlHandlers(page) {
  const { state, prejoin, invite, controls, padlock, chat, side, securityAlerts, endedScreen } = page;
  const { showScreen, showError, nameOf, renderUnread, enterPhaseEnded, rejoinOffer } = page;
  return {
    hello(msg) {
      const first = !state.hello;
      state.hello = msg;
      state.wasHost = state.wasHost || msg.role === 'host';
      prejoin.setHello(msg);
      invite.renderInfoUrl();
      if (first) {
        connectRemembered(msg.remembered, (message) => page.link.send(message));
        if (adoptLanguage(msg.remembered && msg.remembered.lang)) return; // reloading
        controls.applyRemembered(msg.remembered);
        controls.applyPrefs(msg.media);
        page.layoutSwitch.adopt(msg.remembered && msg.remembered.view);
        page.helloArrived();
      }
      if (!state.joinRequested && !state.ended) {
        state.phase = 'prejoin';
        stats.phase = 'prejoin';
        showScreen('prejoin');
      }
    },
    state: (msg) => applyState(msg, page),
    padlock(msg) {
      stats.padlock = msg.state;
      stats.padlockDetail = msg.detail;
      padlock.set(msg.state, msg.detail);
    },
    frame_failed(msg) {
      const name = msg.name || (msg.sender !== null ? nameOf(msg.sender) : '');
      stats.frameFailures.push({ sender: msg.sender, name, reason: msg.reason, at: Date.now() });
      if (stats.frameFailures.length > 200) stats.frameFailures.shift();
      padlock.frameFailed({ sender: msg.sender, name, reason: msg.reason });
    },
    chat(msg) {
      if (!msg.text) return;
      recordChat({ sender: msg.sender, name: msg.name, text: msg.text, ts: msg.ts });
      const isNew = chat.receive(msg, state.selfLeaf);
      if (isNew && msg.sender !== state.selfLeaf && side.current !== 'chat') {
        state.unread++;
        renderUnread();
        toast(`${msg.name}: ${msg.text}`, { ms: 4000, iconName: 'chat' });
      }
    },
    alert(msg) {
      stats.alerts.push({ kind: msg.kind, message: msg.message, at: Date.now() });
      if (stats.alerts.length > 100) stats.alerts.shift();
      securityAlerts.add(msg);
    },
    reaction: (msg) => page.hands.reaction(msg), // ui/hands.js
    unmute_request: (msg) => page.moderation.unmuteRequest(msg), // ui/moderation.js
    recording: (msg) => page.recording.own(msg), // ui/recording.js: our own recording
    keyframe_request: () => { stats.keyframeRequestsReceived++; }, // the media worker acted on it
    stage(msg) { // who is on stage (video) and who speaks, as the engine decided (last-N)
      stats.stage = msg;
      page.stage.setLastN(msg);
    },
    ended(msg) {
      if (!state.rejoinRequested) enterPhaseEnded(msg.reason, msg.outcome, msg.joined);
    },
    error(msg) {
      showError(sentence(msg.message));
      if (state.rejoinRequested) { // the engine did not start again: back to why it ended
        state.rejoinRequested = false;
        endedScreen.setRejoin(rejoinOffer());
        showScreen('ended');
      } else if (state.joinRequested && state.phase === 'prejoin') {
        state.joinRequested = false;
        prejoin.setBusy(false);
        showScreen('prejoin');
      }
    },
  };
}
