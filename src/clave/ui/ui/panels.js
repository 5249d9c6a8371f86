// The side panel: people (security code, host admission tools, invitation,
// participants with fingerprints, roles and familiarity), the lobby and chat.

import { chatNodes, deliveryNote } from './chat-text.js';
import { $, avatarColor, clockTime, h, icon, initials, syncKeyed } from './dom.js';
import { t, tParts } from '../i18n.js';

export class SidePanel {
  constructor({ onOpenChange }) {
    this.el = $('#side');
    this.tabs = { people: $('#tab-people'), chat: $('#tab-chat') };
    this.panels = { people: $('#panel-people'), chat: $('#panel-chat') };
    this.buttons = { people: $('#toggle-people'), chat: $('#toggle-chat') };
    this.current = null;
    this.onOpenChange = onOpenChange;
    this.tabs.people.addEventListener('click', () => this.show('people'));
    this.tabs.chat.addEventListener('click', () => this.show('chat'));
    this.buttons.people.addEventListener('click', () => this.toggle('people'));
    this.buttons.chat.addEventListener('click', () => this.toggle('chat'));
    $('#side-close').addEventListener('click', () => this.close());
    for (const tab of Object.values(this.tabs)) {
      tab.addEventListener('keydown', (ev) => {
        if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
          this.show(this.current === 'people' ? 'chat' : 'people');
          this.tabs[this.current].focus();
        }
      });
    }
  }

  toggle(name) {
    if (this.current === name) this.close();
    else this.show(name);
  }

  show(name) {
    this.current = name;
    this.el.hidden = false;
    for (const key of ['people', 'chat']) {
      const on = key === name;
      this.tabs[key].setAttribute('aria-selected', String(on));
      this.tabs[key].tabIndex = on ? 0 : -1;
      this.panels[key].hidden = !on;
      this.buttons[key].setAttribute('aria-pressed', String(on));
    }
    this.onOpenChange?.(name);
  }

  close() {
    this.current = null;
    this.el.hidden = true;
    for (const key of ['people', 'chat']) this.buttons[key].setAttribute('aria-pressed', 'false');
    this.onOpenChange?.(null);
  }
}

/** Security code in the top bar and the people panel. */
export function renderSecurityCode(code, epoch) {
  const text = code || '—';
  const top = $('#security-code');
  if (top.textContent !== text) top.textContent = text;
  const full = $('#security-code-full');
  if (full.dataset.code === (code || '')) return;
  full.dataset.code = code || '';
  full.replaceChildren();
  if (code) {
    // Groups of 5 digits in a grid (4 + 3): easy to read aloud and to compare.
    const groups = code.split(/\s+/).filter(Boolean);
    full.append(...groups.map((g) => h('span', { class: 'code-group' }, g)));
    full.setAttribute('aria-label', t('code.aria', { code: groups.join(', ') }));
  } else {
    full.textContent = '—';
    full.removeAttribute('aria-label');
  }
  $('#epoch-text').textContent = typeof epoch === 'number' ? t('code.epoch', { epoch }) : '';
}

// ---------- people: fingerprints, familiarity, roles, warnings ----------

const ROLES = new Set(['owner', 'host', 'successor']); // badges: role.<name>, role.<name>Title

function capitalize(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/**
 * What the engine's familiarity label means: 'self' | 'verified' | 'known' | 'new'
 * | 'changed' (a different key than the person of that name met before) | 'other'.
 */
export function familiarityKind(label) {
  const text = String(label || '').trim();
  if (text === 'you') return 'self';
  if (text === 'verified') return 'verified';
  if (text === 'new') return 'new';
  if (text.startsWith('known since')) return 'known';
  if (text.startsWith('\u26a0')) return 'changed';
  return 'other';
}

/** A warning line: icon, "Warning:" for screen readers, text and advice. */
function warnBlock(cls, text, advice) {
  return h('p', { class: `warn-block ${cls}` },
    icon('warn'),
    h('span', null,
      h('span', { class: 'visually-hidden' }, t('people.warning')),
      h('strong', null, text),
      advice ? ` ${advice}` : null));
}

/**
 * The familiarity label: {pill, warning} (either may be null). A changed key is a
 * warning; "verified" is a badge in the participants list and a pill in the lobby.
 */
function familiarityView(label, { lobby }) {
  const kind = familiarityKind(label);
  const pill = (text) => ({ pill: h('span', { class: `familiarity familiarity-${kind}` }, text), warning: null });
  switch (kind) {
    case 'self':
      return { pill: null, warning: null };
    case 'changed': {
      // The engine's words ("⚠ a different key than the Grace you met before"), in ours.
      const raw = String(label).replace(/^\u26a0\ufe0f?\s*/, '');
      const named = /^a different key than the (.+) you met before$/.exec(raw);
      const text = named ? t('people.changedKey', { name: named[1] }) : capitalize(raw);
      return {
        pill: null,
        warning: warnBlock('familiarity familiarity-changed', `${text}.`,
          t(lobby ? 'people.changedLobby' : 'people.changedMeeting')),
      };
    }
    case 'verified':
      return lobby ? pill(t('people.verifiedBefore')) : { pill: null, warning: null };
    case 'new':
      return pill(t('people.newKey'));
    case 'known': {
      const day = /^known since (\S+)$/.exec(String(label).trim());
      return pill(day ? t('people.knownSince', { day: day[1] }) : capitalize(String(label)));
    }
    default:
      return pill(capitalize(String(label)));
  }
}

function lookAlikeView(other, { lobby, self = false, roster }) {
  if (!other) return null;
  // The other name in a monospace font, where "I" and "l" or "0" and "O" differ.
  const them = h('code', { class: 'name-mono' }, other);
  if (self) {
    return warnBlock('lookalike-warning', tParts('people.lookalikeSelf', { name: them }),
      t('people.lookalikeSelfAdvice'));
  }
  const present = !lobby || roster.some((m) => m.name === other);
  return warnBlock('lookalike-warning',
    tParts(present ? 'people.lookalikeHere' : 'people.lookalikeAsking', { name: them }),
    t(lobby ? 'people.lookalikeLobbyAdvice' : 'people.lookalikeAdvice'));
}

function avatarEl(name, key) {
  const avatar = h('span', { class: 'person-avatar', 'aria-hidden': 'true' }, initials(name));
  avatar.style.setProperty('--avatar', avatarColor(key));
  return avatar;
}

function fingerprintEl(fingerprint) {
  return h('span', { class: 'fingerprint', title: t('people.fingerprintTitle') },
    h('span', { class: 'visually-hidden' }, t('people.fingerprint')),
    fingerprint || t('people.noFingerprint'));
}

function actionButton({ text, label, focus, data, cls = 'btn-chip', title = null, disabled = false, onclick }) {
  return h('button', {
    type: 'button', class: `btn btn-small ${cls}`, 'aria-label': label, title,
    dataset: { focus, ...data }, disabled, onclick,
  }, text);
}

/**
 * Participants list (#participants): role badges, familiarity, verified mark,
 * look-alike and changed-key warnings; "Mark as verified" for everyone, host
 * role and removal for hosts.
 * handlers: onVerify(m, verified), onSetHost(m, host), onRemove(m)
 */
export function renderParticipants(roster, { isHost, pending = [], onVerify, onSetHost, onRemove, onMute, onAskUnmute }) {
  const list = $('#participants');
  const removing = new Set(pending);
  const hosts = roster.filter((m) => m.is_host).length;
  const order = { owner: 0, host: 1, successor: 2, member: 3 };
  const items = roster
    .slice()
    .sort((a, b) => Number(b.is_self) - Number(a.is_self)
      || (order[a.role] ?? 3) - (order[b.role] ?? 3) || a.leaf - b.leaf)
    .map((m) => {
      const isRemoving = removing.has(m.leaf);
      const sig = JSON.stringify([m.name, m.role, m.familiarity, m.verified, m.confusable_with,
        m.is_self, isHost, isRemoving, m.is_self && hosts > 1, m.mic, m.cam, m.recording]);
      return {
        key: `${m.leaf}:${m.fingerprint}`,
        sig,
        build: () => participantItem(m, { isHost, isRemoving, otherHosts: hosts - (m.is_host ? 1 : 0), roster,
          onVerify, onSetHost, onRemove, onMute, onAskUnmute }),
      };
    });
  syncKeyed(list, items, $('#people-title'));
  $('#people-count').textContent = String(roster.length);
}

function participantItem(m, { isHost, isRemoving, otherHosts, roster, onVerify, onSetHost, onRemove, onMute, onAskUnmute }) {
  const badge = ROLES.has(m.role) ? { text: t(`role.${m.role}`), title: t(`role.${m.role}Title`) } : null;
  const verified = m.verified || familiarityKind(m.familiarity) === 'verified';
  const tags = [
    m.is_self ? h('span', { class: 'tag' }, t('people.you')) : null,
    badge ? h('span', { class: `role-badge role-${m.role}`, title: badge.title, dataset: { role: m.role } }, badge.text) : null,
    verified && !m.is_self ? h('span', { class: 'verified-badge', title: t('people.verifiedTitle') },
      icon('check', 'icon-xs'), t('people.verified')) : null,
    isRemoving ? h('span', { class: 'removing-tag' }, t('people.removing')) : null,
    m.mic === false ? h('span', { class: 'tag', title: t('people.mutedTitle') }, t('people.muted')) : null,
    m.cam === false ? h('span', { class: 'tag', title: t('people.camOffTitle') }, t('people.camOff')) : null,
    m.recording ? h('span', { class: 'tag tag-rec', title: t('people.recordingTitle') }, t('recording.tag')) : null,
  ];
  const actions = [];
  if (!m.is_self) {
    actions.push(actionButton({
      text: t(verified ? 'people.unmark' : 'people.mark'),
      label: t(verified ? 'people.unmarkLabel' : 'people.markLabel', { name: m.name }),
      title: t(verified ? 'people.unmarkTitle' : 'people.markTitle'),
      focus: 'verify', data: { verify: String(m.leaf) },
      onclick: () => onVerify(m, !verified),
    }));
  }
  if (isHost && !m.is_self && !isRemoving && onMute) {
    actions.push(m.mic === false
      ? actionButton({
        text: t('people.askUnmute'), label: t('people.askUnmuteLabel', { name: m.name }), focus: 'ask-unmute',
        title: t('people.askUnmuteTitle'), data: { askUnmute: String(m.leaf) }, onclick: () => onAskUnmute(m),
      })
      : actionButton({
        text: t('people.mute'), label: t('people.muteLabel', { name: m.name }), focus: 'mute',
        title: t('people.muteTitle'), data: { mute: String(m.leaf) },
        onclick: () => onMute(m),
      }));
  }
  if (isHost && !m.is_self && !isRemoving) {
    if (m.role === 'host') {
      actions.push(actionButton({
        text: t('people.removeHost'), label: t('people.removeHostLabel', { name: m.name }), focus: 'host',
        data: { setHost: String(m.leaf), hostTo: 'false' }, onclick: () => onSetHost(m, false),
      }));
    } else if (m.role !== 'owner') {
      actions.push(actionButton({
        text: t('people.makeHost'), label: t('people.makeHostLabel', { name: m.name }), focus: 'host',
        title: t('people.makeHostTitle'),
        data: { setHost: String(m.leaf), hostTo: 'true' }, onclick: () => onSetHost(m, true),
      }));
    }
    if (m.role !== 'owner') {
      actions.push(actionButton({
        text: t('people.remove'), label: t('people.removeLabel', { name: m.name }), focus: 'remove', cls: 'btn-chip btn-chip-danger',
        data: { remove: String(m.leaf) }, onclick: () => onRemove(m),
      }));
    }
  }
  if (isHost && m.is_self && otherHosts > 0) {
    actions.push(actionButton({
      text: t('people.giveUpHost'), label: t('people.giveUpHostLabel'), focus: 'host',
      title: t('people.giveUpHostTitle'),
      data: { setHost: String(m.leaf), hostTo: 'false' }, onclick: () => onSetHost(m, false),
    }));
  }
  const fam = familiarityView(m.familiarity, { lobby: false });
  const look = lookAlikeView(m.confusable_with, { lobby: false, self: m.is_self, roster });
  const li = h('li', {
    class: `person${isRemoving ? ' is-removing' : ''}${fam.warning || look ? ' has-warning' : ''}`,
    dataset: { testid: 'participant', leaf: String(m.leaf), role: m.role, verified: String(verified) },
  },
    avatarEl(m.name, `p:${m.leaf}`),
    h('div', { class: 'person-main' },
      h('div', { class: 'person-name' }, h('span', { class: 'person-name-text' }, m.name), tags),
      fam.pill,
      fingerprintEl(m.fingerprint),
      fam.warning,
      look,
      actions.length ? h('div', { class: 'person-actions' }, actions) : null));
  if (isRemoving) li.dataset.removing = '';
  return li;
}

/** Join requests listed at most; the engine sends no more (`lobby_waiting` counts all). */
export const LOBBY_SHOWN = 50;

/**
 * Lobby (#lobby) with admit/deny buttons, host only. `locked`: knockers are told so.
 * `waiting`: requests waiting in all, of which `lobby` lists the first; hundreds may
 * wait, so the list stops at LOBBY_SHOWN ("and 230 more") and "Admit all (N)" admits
 * everyone (the engine adds them in batches).
 */
export function renderLobby(lobby, {
  roster = [], locked = false, waiting = lobby.length, onAdmit, onDeny, onAdmitAll,
}) {
  const list = $('#lobby');
  const shown = lobby.slice(0, LOBBY_SHOWN);
  const total = Math.max(waiting, lobby.length);
  // Keyed update: a request that is still waiting keeps its element, so keyboard
  // focus on its Admit/Deny button survives the engine's state updates.
  const items = shown.map((entry) => ({
    key: String(entry.key),
    sig: JSON.stringify([entry.name, entry.fingerprint, entry.familiarity, entry.confusable_with,
      entry.confusable_with ? roster.some((m) => m.name === entry.confusable_with) : false]),
    build: () => lobbyItem(entry, { roster, onAdmit, onDeny }),
  }));
  syncKeyed(list, items, $('#lobby-title'));
  $('#lobby-count').textContent = String(total);
  const more = total - shown.length;
  $('#lobby-more').hidden = more <= 0;
  $('#lobby-more').textContent = more > 0 ? t('lobby.more', { count: more }) : '';
  const all = $('#lobby-admit-all');
  all.hidden = total < 2 || locked || !onAdmitAll;
  all.textContent = t('lobby.admitAll', { count: total });
  all.onclick = () => onAdmitAll?.();
  $('#lobby-locked-note').hidden = !locked;
  $('#lobby-panel').hidden = total === 0;
}

function lobbyItem(entry, { roster, onAdmit, onDeny }) {
  const fam = familiarityView(entry.familiarity, { lobby: true });
  const look = lookAlikeView(entry.confusable_with, { lobby: true, roster });
  const warned = fam.warning || look;
  return h('li', {
    class: `person lobby-item${warned ? ' has-warning' : ''}`,
    dataset: { lobbyId: entry.key },
  },
    avatarEl(entry.name, `l:${entry.key}`),
    h('div', { class: 'person-main' },
      h('div', { class: 'person-name' }, h('span', { class: 'person-name-text' }, entry.name)),
      fam.pill,
      fingerprintEl(entry.fingerprint),
      fam.warning,
      look),
    h('div', { class: 'person-actions' },
      h('button', {
        type: 'button', class: 'btn btn-small btn-deny', dataset: { deny: entry.key, focus: 'deny' },
        'aria-label': t('lobby.denyLabel', { name: entry.name }), onclick: () => onDeny(entry),
      }, t('lobby.deny')),
      h('button', {
        type: 'button', class: 'btn btn-small btn-admit', dataset: { admit: entry.key, focus: 'admit' },
        'aria-label': t('lobby.admitLabel', { name: entry.name }), onclick: () => onAdmit(entry),
      }, t('lobby.admit'))));
}

function toDate(ts) {
  if (typeof ts !== 'number') return new Date();
  const date = new Date(ts < 1e11 ? ts * 1000 : ts); // seconds or milliseconds
  return Number.isNaN(date.getTime()) ? new Date() : date;
}

/** Chat log with local echo that is reconciled with the engine's copy. */
export class ChatLog {
  constructor({ onSend }) {
    this.log = $('#chat-log');
    this.input = $('#chat-input');
    this.form = $('#chat-form');
    this.onSend = onSend;
    this.pending = []; // {text, el, at}
    this.lastSender = null;
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this._submit();
    });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this._submit();
      }
    });
    this.input.addEventListener('input', () => this._autosize());
  }

  _autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(120, this.input.scrollHeight + 2)}px`;
  }

  _submit() {
    const text = this.input.value.trim();
    if (!text) return;
    if (!this.onSend(text)) return;
    this.input.value = '';
    this._autosize();
    const el = this._append({ name: t('common.you'), text, date: new Date(), mine: true, pending: true, sender: 'self' });
    this.pending.push({ text, el, at: performance.now() });
    setTimeout(() => el.classList.remove('pending'), 3000);
  }

  /** A chat message from the engine. Returns true if it was new (not our echo). */
  receive({ sender, name, text, ts, missed, queued }, selfLeaf) {
    const now = performance.now();
    this.pending = this.pending.filter((p) => now - p.at < 30000);
    const mine = sender !== null && sender === selfLeaf;
    if (mine) {
      const i = this.pending.findIndex((p) => p.text === text.trim() || p.text === text);
      if (i >= 0) {
        const { el } = this.pending[i];
        el.classList.remove('pending');
        this.pending.splice(i, 1);
        this._note(el, { missed, queued });
        return false;
      }
    }
    const el = this._append({ name, text, date: toDate(ts), mine, sender });
    if (mine) this._note(el, { missed, queued });
    return true;
  }

  /** Say under our own message that it did not reach everyone (see chat-text.js). */
  _note(el, delivery) {
    const note = deliveryNote(delivery);
    if (!note) return;
    el.classList.add('undelivered');
    el.append(note);
  }

  system(text) {
    this._removeEmpty();
    this.log.append(h('p', { class: 'msg-system' }, text));
    this._scroll();
    this.lastSender = null;
  }

  _removeEmpty() {
    const empty = this.log.querySelector('.chat-empty');
    if (empty) empty.remove();
  }

  _append({ name, text, date, mine, pending = false, sender }) {
    this._removeEmpty();
    const continued = this.lastSender === sender;
    const el = h('div', { class: `msg${mine ? ' mine' : ''}${pending ? ' pending' : ''}` },
      continued ? null : h('div', { class: 'msg-head' },
        h('span', { class: 'msg-name' }, mine ? t('common.you') : name),
        h('time', { class: 'msg-time', datetime: date.toISOString() }, clockTime(date))),
      h('div', { class: 'msg-text' }, chatNodes(text)));
    this.lastSender = sender;
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    this.log.append(el);
    if (atBottom || mine) this._scroll();
    return el;
  }

  _scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }
}
