// Raised hands and reactions (MLS application messages, sent by the engine):
// the "Raise hand" and "React" buttons, a hand on each raised tile, the queue of
// raised hands in raise order (hosts can lower any; everyone their own), and
// reactions floating on the sender's tile. The engine holds every sender to a
// rate limit; a reaction beyond ours is simply not sent.

import { REACTIONS } from '../protocol.js';
import { stats } from '../stats.js';
import { $, h } from './dom.js';
import { t } from '../i18n.js';

// The names of protocol.js's REACTIONS, in the same order (catalogue keys).
const REACTION_NAMES = ['react.thumbsUp', 'react.clap', 'react.heart', 'react.laugh', 'react.surprised', 'react.party'];
const MAX_FLOATING = 6; // reactions floating on one tile at once (older ones go)
const SVG_NS = 'http://www.w3.org/2000/svg';
const HAND = 'M8 13V5.5a1.5 1.5 0 0 1 3 0V12M11 11V4a1.5 1.5 0 0 1 3 0v7M14 11V5.5a1.5 1.5 0 0 1 3 0V13'
  + 'M17 9.5a1.5 1.5 0 0 1 3 0V15a6 6 0 0 1-6 6h-1.5a6 6 0 0 1-4.7-2.3L4.6 14.9a1.5 1.5 0 0 1 2.3-1.9L8 14';
const SMILE = 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8.5 14a4 4 0 0 0 7 0M9 9.5h.01M15 9.5h.01';

/** An outline icon (as the sprite's) drawn from one path, with no font needed. */
function pathIcon(d, extraClass = '') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', extraClass ? `icon ${extraClass}` : 'icon');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', d);
  svg.append(path);
  return svg;
}

export class HandsAndReactions {
  /** send(message): false if not connected; stage: the tiles; nameOf(leaf). */
  constructor({ send, stage, nameOf }) {
    this.send = send;
    this.stage = stage;
    this.nameOf = nameOf;
    this.hands = [];
    this.selfLeaf = null;
    this.isHost = false;
    stats.hands = [];
    stats.reactionsShown = []; // {sender, emoji}: every reaction floated on a tile
    this.handButton = h('button', {
      type: 'button', id: 'toggle-hand', class: 'ctrl', 'aria-pressed': 'false', title: t('hands.raiseTitle'),
      'aria-label': t('hands.raiseLabel'),
      onclick: () => this.toggleHand(),
    }, pathIcon(HAND), h('span', { class: 'ctrl-label' }, t('hands.raise')));
    this.reactButton = h('button', {
      type: 'button', id: 'toggle-react', class: 'ctrl', 'aria-expanded': 'false', 'aria-controls': 'react-bar',
      'aria-label': t('react.label'), title: t('react.button'), onclick: () => this.toggleBar(),
    }, pathIcon(SMILE), h('span', { class: 'ctrl-label' }, t('react.button')));
    this.bar = h('div', { id: 'react-bar', class: 'react-bar', role: 'group', 'aria-label': t('react.group'), hidden: true },
      REACTIONS.map((emoji, i) => h('button', {
        type: 'button', class: 'react-btn', 'aria-label': t(REACTION_NAMES[i]), title: t(REACTION_NAMES[i]),
        dataset: { emoji }, onclick: () => this.react(emoji),
      }, emoji)));
    const leave = $('#leave');
    leave.before(this.handButton, this.reactButton);
    $('.controls').append(this.bar);
    this.queueList = h('ol', { id: 'hands-list', class: 'hands-list' });
    this.queueCard = h('section', { id: 'hands-card', class: 'card', 'aria-labelledby': 'hands-title', hidden: true },
      h('h2', { id: 'hands-title' }, pathIcon(HAND, 'icon-sm'), `${t('hands.title')} `,
        h('span', { id: 'hands-count', class: 'count count-accent' }, '0')),
      this.queueList);
    $('#panel-people').prepend(this.queueCard);
  }

  get handUp() {
    return this.selfLeaf !== null && this.hands.includes(this.selfLeaf);
  }

  toggleHand() {
    this.send({ type: 'hand', up: !this.handUp });
  }

  toggleBar(open = this.bar.hidden) {
    this.bar.hidden = !open;
    this.reactButton.setAttribute('aria-expanded', String(open));
    if (open) this.bar.querySelector('button')?.focus();
  }

  react(emoji) {
    this.send({ type: 'react', emoji });
  }

  /** From each `state`: the queue, our hand button, the hands on the tiles. */
  render(msg) {
    const inMeeting = msg.phase === 'in_meeting';
    this.selfLeaf = msg.self_leaf;
    this.isHost = msg.is_host;
    this.hands = inMeeting ? msg.hands || [] : [];
    stats.hands = this.hands.slice();
    const up = this.handUp;
    this.handButton.setAttribute('aria-pressed', String(up));
    this.handButton.querySelector('.ctrl-label').textContent = t(up ? 'hands.lower' : 'hands.raise');
    this.handButton.setAttribute('aria-label', t(up ? 'hands.lowerLabel' : 'hands.raiseLabel'));
    for (const tile of this.stage.tiles.values()) {
      if (tile.screen) continue;
      const leaf = tile.self ? this.selfLeaf : Number(tile.id.slice(2));
      const position = this.hands.indexOf(leaf);
      tileHand(tile, position >= 0 ? position + 1 : 0);
    }
    this._renderQueue(msg.roster);
  }

  _renderQueue(roster) {
    const names = new Map(roster.map((m) => [m.leaf, m.name]));
    this.queueCard.hidden = this.hands.length === 0;
    $('#hands-count').textContent = String(this.hands.length);
    this.queueList.replaceChildren(...this.hands.map((leaf) => {
      const self = leaf === this.selfLeaf;
      const name = names.get(leaf) || this.nameOf(leaf);
      const canLower = self || this.isHost;
      return h('li', { class: 'hand-item', dataset: { testid: 'hand', leaf: String(leaf) } },
        h('span', { class: 'hand-name' }, self ? t('hands.nameYou', { name }) : name),
        canLower ? h('button', {
          type: 'button', class: 'btn-chip', dataset: { lower: String(leaf) },
          'aria-label': self ? t('hands.lowerLabel') : t('hands.lowerOther', { name }),
          onclick: () => this.send({ type: 'lower_hand', leaf }),
        }, t('hands.lowerShort')) : null);
    }));
  }

  /** A member's reaction (ours too): float it on their tile. */
  reaction(msg) {
    const id = msg.sender === this.selfLeaf ? 'p:self' : `p:${msg.sender}`;
    const tile = this.stage.get(id);
    if (!tile) return;
    stats.reactionsShown.push({ sender: msg.sender, emoji: msg.emoji });
    if (stats.reactionsShown.length > 200) stats.reactionsShown.shift();
    const floating = tile.el.querySelectorAll('.reaction-float');
    if (floating.length >= MAX_FLOATING) floating[0].remove();
    this.floated = (this.floated || 0) + 1;
    const offset = 10 + ((this.floated * 23) % 60); // spread out, without randomness
    const el = h('span', { class: 'reaction-float', role: 'img', 'aria-label': t('react.reacted', { name: msg.name, emoji: msg.emoji }) }, msg.emoji);
    el.style.left = `${offset}%`;
    el.addEventListener('animationend', () => el.remove());
    tile.el.append(el);
  }
}

/** A hand (with its place in the queue) on a tile, or none (`place` 0). */
function tileHand(tile, place) {
  let badge = tile.el.querySelector('.tile-hand');
  if (!place) {
    badge?.remove();
    return;
  }
  if (!badge) {
    badge = h('span', { class: 'tile-hand', role: 'img' }, pathIcon(HAND, 'icon-xs'), h('b'));
    tile.el.append(badge);
  }
  badge.querySelector('b').textContent = String(place);
  badge.setAttribute('aria-label', t('hands.tile', { place }));
}
