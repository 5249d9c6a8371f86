// The video stage: one tile per participant (self included), screen shares as
// their own large tile with everyone else in a strip beside it.
// Tile ids: "p:<leaf>" / "p:self" for people, "s:<leaf>" / "s:self" for screens.
//
// Last-N: the engine receives the video of the members "on stage" only (the
// pinned, then the most recent speakers; its `stage` message, see engine/stage.py).
// Their tiles come first, in the engine's order, with ours; everyone else is an
// avatar tile (initials, name, a ring while speaking), in the strip beside the
// grid once there are any. Each remote tile has a Pin button (`pin`/`unpin`).
//
// Speaker view (setMode('speaker')): one tile large (the pinned member, else the
// engine's focus: `active`), the others in a filmstrip. The filmstrip goes beside or
// below the large tile, whichever shows it bigger; a screen share's tile takes the
// share's own aspect ratio, so it fills its tile without black bars.

import { avatarColor, h, icon, initials } from './dom.js';
import { stats } from '../stats.js';
import { t } from '../i18n.js';

const GAP = 12;
const ASPECT = 16 / 9;
const STRIP_SIDE = 232; // px: the filmstrip's width beside the large tile (app.css .strip)
const STRIP_BELOW = 124; // px: its height below it (layout.css)

export class Tile {
  constructor({ id, name, screen = false, self = false, colorKey = id, onPin = null }) {
    this.id = id;
    this.screen = screen;
    this.self = self;
    this.frameAge = -1; // ms since the worker drew a frame into this tile (-1: never)
    this.name = '';
    this.media = self
      ? h('video', { autoplay: true, muted: true, playsinline: true })
      : h('canvas', { width: 640, height: 360 });
    if (self) this.media.muted = true;
    this.avatarCircle = h('div', { class: 'avatar-circle' });
    this.avatarCircle.style.setProperty('--avatar', avatarColor(colorKey));
    this.nameEl = h('span', { class: 'tile-name' });
    this.levelBars = [h('i'), h('i'), h('i')];
    this.badge = h('span', { class: 'tile-badge', hidden: true });
    this.pinned = false;
    this.onStage = true;
    this.frameSize = null; // {w, h} of the last frame drawn (screen tiles: their aspect ratio)
    this.onResize = null;  // () => void: the frame size changed
    if (self) this.media.addEventListener('resize', () => this.setFrameSize(this.media.videoWidth, this.media.videoHeight));
    this.pinButton = self || screen || !onPin ? null : h('button', {
      class: 'tile-pin', type: 'button', 'aria-pressed': 'false',
      onclick: () => onPin(this, !this.pinned),
    }, t('tile.pin'));
    this.el = h('div', {
      class: `tile${screen ? ' screen-tile' : ''}${self ? ' self' : ''}`,
      dataset: { tile: id },
      role: 'group',
    },
      this.media,
      h('div', { class: 'avatar' }, this.avatarCircle),
      this.badge,
      this.pinButton,
      h('div', { class: 'tile-label' },
        icon('mic-off', 'mic-off'),
        screen ? icon('screen') : h('span', { class: 'level', 'aria-hidden': 'true' }, this.levelBars),
        this.nameEl),
      h('div', { class: 'stalled', title: t('tile.stalledTitle') },
        icon('warn'), h('span', null, t('tile.stalled'))),
    );
    this.setName(name);
    if (!screen) this.setVideoOn(false);
  }

  setName(name) {
    if (name === this.name) return;
    this.name = name;
    let label = name;
    if (this.screen) label = this.self ? t('tile.selfPresenting') : t('tile.presenting', { name });
    else if (this.self) label = t('hands.nameYou', { name });
    this.nameEl.textContent = label;
    this.el.setAttribute('aria-label', label);
    this.avatarCircle.textContent = initials(name);
  }

  setBadge(text) {
    this.badge.hidden = !text;
    this.badge.textContent = text || '';
  }

  /** For the self tile: show a local track (or nothing). */
  setStream(track) {
    const video = this.media;
    if (!track) {
      video.srcObject = null;
      this.setVideoOn(false);
      return;
    }
    const current = video.srcObject && video.srcObject.getVideoTracks()[0];
    if (current !== track) video.srcObject = new MediaStream([track]);
    video.play().catch(() => {});
    this.setVideoOn(true);
  }

  /** Pinned by us (its video stays on stage whoever speaks). */
  setPinned(on) {
    this.pinned = on;
    this.el.classList.toggle('pinned', on);
    if (this.pinButton) {
      this.pinButton.textContent = t(on ? 'tile.unpin' : 'tile.pin');
      this.pinButton.setAttribute('aria-pressed', String(on));
      this.pinButton.setAttribute('aria-label', t(on ? 'tile.unpinLabel' : 'tile.pinLabel', { name: this.name }));
    }
  }

  /** On stage (video received) or an avatar. */
  setOnStage(on) {
    this.onStage = on;
    this.el.classList.toggle('off-stage', !on);
    if (!on) this.setVideoOn(false);
  }

  setVideoOn(on) {
    this.el.classList.toggle('video-off', !on);
  }

  /** The size of the frames shown (the media worker's canvas, or our own video). */
  setFrameSize(w, h) {
    if (!w || !h || (this.frameSize && this.frameSize.w === w && this.frameSize.h === h)) return;
    this.frameSize = { w, h };
    this.onResize?.();
  }

  setMicMuted(muted) {
    this.el.classList.toggle('mic-muted', muted);
  }

  setSpeaking(on) {
    this.el.classList.toggle('speaking', on);
  }

  setDecryptFailed(on) {
    this.el.classList.toggle('decrypt-failed', on);
  }

  setLevel(level) {
    // three bars, log-ish scale
    const db = level > 0 ? 20 * Math.log10(level) : -100;
    const x = Math.max(0, Math.min(1, (db + 50) / 40));
    const heights = [0.55, 1, 0.7];
    this.levelBars.forEach((bar, i) => {
      bar.style.height = `${Math.round(4 + 10 * x * heights[i])}px`;
    });
  }

  remove() {
    if (this.self && this.media.srcObject) this.media.srcObject = null;
    this.el.remove();
  }
}

function leafOf(tile) {
  const n = Number(tile.id.slice(2));
  return Number.isFinite(n) ? n : 1e9;
}

export class Stage {
  /** onTileCreated(tile) / onTileRemoved(tile): remote tiles hand their canvas to the media worker. */
  constructor({ stage, grid, strip, onTileCreated, onTileRemoved, onPin = null }) {
    this.onTileCreated = onTileCreated;
    this.onTileRemoved = onTileRemoved;
    this.onPin = onPin;
    this.lastN = null; // the engine's last `stage`: {video, speaking, active, pinned}, or null
    this.stageEl = stage;
    this.gridEl = grid;
    this.stripEl = strip;
    this.tiles = new Map();
    this.mode = 'grid'; // or 'speaker'
    this.large = null; // the tile shown large (speaker view or a screen share), or null
    this._observer = new ResizeObserver(() => this.layout());
    this._observer.observe(stage);
  }

  get(id) {
    return this.tiles.get(id) || null;
  }

  ensure(id, options) {
    let tile = this.tiles.get(id);
    if (!tile) {
      tile = new Tile({ id, onPin: this.onPin, ...options });
      tile.onResize = () => { if (tile === this.large) this.layout(); };
      this._applyLastN(tile);
      this.tiles.set(id, tile);
      this.onTileCreated?.(tile);
      this.layout();
    } else if (options && options.name) {
      tile.setName(options.name);
    }
    return tile;
  }

  remove(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    this.tiles.delete(id);
    tile.remove();
    this.onTileRemoved?.(tile);
    this.layout();
  }

  clear() {
    this.lastN = null;
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  /** The engine's `stage` message: who is on stage, speaking, pinned. */
  setLastN(msg) {
    this.lastN = {
      video: msg.video, speaking: new Set(msg.speaking), active: msg.active, pinned: new Set(msg.pinned),
    };
    for (const tile of this.tiles.values()) this._applyLastN(tile);
    this.layout();
  }

  /** 'grid' or 'speaker' (one tile large, the others in a filmstrip). */
  setMode(mode) {
    this.mode = mode === 'speaker' ? 'speaker' : 'grid';
    this.stageEl.classList.toggle('speaker-view', this.mode === 'speaker');
    this.layout();
  }

  /** Speaker view's large tile: our pin, else the engine's focus, else the first on stage. */
  _focus(people) {
    const remote = people.filter((t) => !t.self);
    const byLeaf = (leaf) => remote.find((t) => leafOf(t) === leaf) || null;
    const last = this.lastN;
    return (last && ([...last.pinned].map(byLeaf).find(Boolean)
      || (last.active !== null && last.active !== undefined && byLeaf(last.active))
      || last.video.map(byLeaf).find(Boolean)))
      || remote.find((t) => t.onStage) || remote[0] || people[0];
  }

  /** Is this remote person's tile speaking, by the engine's ear? */
  speaking(tile) {
    return !!this.lastN && !tile.self && !tile.screen && this.lastN.speaking.has(leafOf(tile));
  }

  _applyLastN(tile) {
    if (tile.self || tile.screen || !this.lastN) return;
    const leaf = leafOf(tile);
    tile.setOnStage(this.lastN.video.includes(leaf));
    tile.setPinned(this.lastN.pinned.has(leaf));
  }

  /** Order: screens first, then people on stage (the engine's order; by leaf before it
   * said), then self, then the avatars by leaf. */
  _ordered() {
    const all = [...this.tiles.values()];
    const order = this.lastN ? this.lastN.video : [];
    const rank = (t) => (t.screen ? 0 : t.self ? 2 : t.onStage ? 1 : 3);
    const place = (t) => {
      const i = order.indexOf(leafOf(t));
      return i >= 0 ? i : 1e6 + leafOf(t);
    };
    return all.sort((a, b) => rank(a) - rank(b) || place(a) - place(b));
  }

  layout() {
    const ordered = this._ordered();
    const screens = ordered.filter((t) => t.screen);
    const avatars = ordered.filter((t) => !t.screen && !t.self && !t.onStage);
    const large = screens[0] || (this.mode === 'speaker' && ordered.length > 1 ? this._focus(ordered) : null);
    if (this.large !== large) {
      this.large?.el.classList.remove('is-large');
      large?.el.classList.add('is-large');
      this.large = large;
    }
    this.stageEl.classList.toggle('has-focus', !!large && !large.screen);
    stats.view = { mode: this.mode, large: large ? large.id : null };
    if (large) {
      this.stageEl.classList.toggle('has-screen', !!large.screen);
      this.stripEl.hidden = false;
      this._place(this.gridEl, [large]);
      this._place(this.stripEl, ordered.filter((t) => t !== large));
      this._sizeLarge(large);
      return;
    }
    this.stageEl.classList.remove('strip-below');
    if (avatars.length) {
      // Video tiles in the grid, the others as avatars in the strip beside it.
      const shown = ordered.filter((t) => !avatars.includes(t));
      this.stageEl.classList.remove('has-screen');
      this.stripEl.hidden = false;
      this._place(this.gridEl, shown);
      this._place(this.stripEl, avatars);
      this._sizeGrid(shown.length);
    } else {
      this.stageEl.classList.remove('has-screen');
      this.stripEl.hidden = true;
      this._place(this.stripEl, []);
      this._place(this.gridEl, ordered);
      this._sizeGrid(ordered.length);
    }
  }

  _place(container, tiles) {
    const current = [...container.children];
    const same = current.length === tiles.length && current.every((el, i) => el === tiles[i].el);
    if (same) return;
    for (const tile of tiles) container.append(tile.el);
    for (const el of [...container.children]) {
      if (!tiles.some((t) => t.el === el)) el.remove();
    }
    for (const tile of tiles) {
      if (tile.self && tile.media.srcObject && tile.media.paused) tile.media.play().catch(() => {});
    }
  }

  /** The large tile at its frames' aspect ratio (16:9 until known), as big as it fits,
   * with the filmstrip beside it or below it, whichever leaves it bigger. */
  _sizeLarge(tile) {
    const size = tile.frameSize;
    const aspect = tile.screen && size ? size.w / size.h : ASPECT;
    const width = this.stageEl.clientWidth;
    const height = this.stageEl.clientHeight;
    if (!width || !height) return;
    const fit = (w, h) => Math.min(w, h * aspect) * Math.min(h, w / aspect);
    const below = fit(width, height - STRIP_BELOW - GAP) > fit(width - STRIP_SIDE - GAP, height);
    this.stageEl.classList.toggle('strip-below', below);
    const w = this.gridEl.clientWidth;
    const h = this.gridEl.clientHeight;
    if (!w || !h) return;
    const tileW = Math.min(w, h * aspect);
    this.gridEl.style.setProperty('--tile-w', `${Math.floor(tileW)}px`);
    this.gridEl.style.setProperty('--tile-h', `${Math.floor(Math.min(h, tileW / aspect))}px`);
  }

  /** Largest 16:9 tiles that fit n times in the grid: 1, 2 side by side, 2x2, 3x3, ... */
  _sizeGrid(n) {
    const width = this.gridEl.clientWidth;
    const height = this.gridEl.clientHeight;
    if (!n || !width || !height) return;
    let best = { w: 0, h: 0 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      let w = (width - GAP * (cols - 1)) / cols;
      let h2 = w / ASPECT;
      if (h2 * rows + GAP * (rows - 1) > height) {
        h2 = (height - GAP * (rows - 1)) / rows;
        w = h2 * ASPECT;
      }
      if (w * h2 > best.w * best.h) best = { w, h: h2 };
    }
    this.gridEl.style.setProperty('--tile-w', `${Math.floor(best.w)}px`);
    this.gridEl.style.setProperty('--tile-h', `${Math.floor(best.h)}px`);
  }
}
