// The side panel: people (security code, host admission tools, lobby,
// participants with fingerprints) and chat.

import { $, avatarColor, clockTime, h, icon, initials } from './dom.js';

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
    full.setAttribute('aria-label', `Security code ${groups.join(', ')}`);
  } else {
    full.textContent = '—';
    full.removeAttribute('aria-label');
  }
  $('#epoch-text').textContent = typeof epoch === 'number' ? ` (now at key epoch ${epoch})` : '';
}

function personItem({ key, name, fingerprint, tags, actions }) {
  const avatar = h('span', { class: 'person-avatar', 'aria-hidden': 'true' }, initials(name));
  avatar.style.setProperty('--avatar', avatarColor(key));
  return h('li', { class: 'person' },
    avatar,
    h('div', { class: 'person-main' },
      h('div', { class: 'person-name' }, h('span', null, name), tags),
      h('span', { class: 'fingerprint', title: 'Key fingerprint' }, fingerprint || 'no fingerprint')),
    actions && actions.length ? h('div', { class: 'person-actions' }, actions) : null);
}

/** Participants list (#participants); host sees a remove button per member. */
export function renderParticipants(roster, { isHost, onRemove }) {
  const list = $('#participants');
  const items = roster
    .slice()
    .sort((a, b) => Number(b.is_self) - Number(a.is_self) || Number(b.is_host) - Number(a.is_host) || a.leaf - b.leaf)
    .map((m) => personItem({
      key: `p:${m.leaf}`,
      name: m.name,
      fingerprint: m.fingerprint,
      tags: [
        m.is_self ? h('span', { class: 'tag' }, '(you)') : null,
        m.is_host ? h('span', { class: 'tag tag-host' }, 'Host') : null,
      ],
      actions: isHost && !m.is_self ? [
        h('button', {
          type: 'button', class: 'icon-btn', title: `Remove ${m.name}`, 'aria-label': `Remove ${m.name} from the meeting`,
          dataset: { remove: String(m.leaf) }, onclick: () => onRemove(m),
        }, icon('user-x')),
      ] : null,
    }));
  list.replaceChildren(...items);
  list.lastElementChild?.setAttribute('data-last', '');
  for (const li of list.children) li.dataset.testid = 'participant';
  $('#people-count').textContent = String(roster.length);
}

/** Lobby (#lobby) with admit/deny buttons, host only. */
export function renderLobby(lobby, { onAdmit, onDeny }) {
  const list = $('#lobby');
  // Keyed update: a request that is still waiting keeps its element, so keyboard
  // focus on its Admit/Deny button survives the engine's state updates.
  const shown = new Map([...list.children].map((li) => [li.dataset.lobbyId, li]));
  const items = lobby.map((entry) => {
    const signature = `${entry.name}\u0000${entry.fingerprint}`;
    const kept = shown.get(String(entry.key));
    if (kept && kept.dataset.signature === signature) return kept;
    const li = personItem({
      key: `l:${entry.key}`,
      name: entry.name,
      fingerprint: entry.fingerprint,
      tags: null,
      actions: [
        h('button', {
          type: 'button', class: 'btn btn-small btn-deny', dataset: { deny: entry.key },
          'aria-label': `Deny ${entry.name}`, onclick: () => onDeny(entry),
        }, 'Deny'),
        h('button', {
          type: 'button', class: 'btn btn-small btn-admit', dataset: { admit: entry.key },
          'aria-label': `Admit ${entry.name}`, onclick: () => onAdmit(entry),
        }, 'Admit'),
      ],
    });
    li.classList.add('lobby-item');
    li.dataset.lobbyId = entry.key;
    li.dataset.signature = signature;
    return li;
  });
  // Remove what left and insert what is new; kept elements are never moved.
  const wanted = new Set(items);
  for (const li of [...list.children]) if (!wanted.has(li)) li.remove();
  items.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  $('#lobby-count').textContent = String(lobby.length);
  $('#lobby-panel').hidden = lobby.length === 0;
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
    const el = this._append({ name: 'You', text, date: new Date(), mine: true, pending: true, sender: 'self' });
    this.pending.push({ text, el, at: performance.now() });
    setTimeout(() => el.classList.remove('pending'), 3000);
  }

  /** A chat message from the engine. Returns true if it was new (not our echo). */
  receive({ sender, name, text, ts }, selfLeaf) {
    const now = performance.now();
    this.pending = this.pending.filter((p) => now - p.at < 30000);
    if (sender !== null && sender === selfLeaf) {
      const i = this.pending.findIndex((p) => p.text === text.trim() || p.text === text);
      if (i >= 0) {
        this.pending[i].el.classList.remove('pending');
        this.pending.splice(i, 1);
        return false;
      }
    }
    this._append({ name, text, date: toDate(ts), mine: sender !== null && sender === selfLeaf, sender });
    return true;
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
        h('span', { class: 'msg-name' }, mine ? 'You' : name),
        h('time', { class: 'msg-time', datetime: date.toISOString() }, clockTime(date))),
      h('div', { class: 'msg-text' }, text));
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
