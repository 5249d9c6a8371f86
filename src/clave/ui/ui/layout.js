// The meeting page's layout: the grid / speaker view switch (remembered in this
// browser, told to the engine so the large tile is received at the top layer and the
// filmstrip at the lowest: `view`), toasts kept clear of the side panel (chat), and
// the control bar kept in one row (its words go when they do not fit: a longer
// language, a narrower window; the buttons keep their names).

import { $ } from './dom.js';
import { remember } from './remembered.js';
import { t } from '../i18n.js';

const VIEW_KEY = 'clave.view';

export class LayoutSwitch {
  /** stage: the Stage (ui/grid.js); send(message): to the engine (false: not sent). */
  constructor({ stage, send }) {
    this.stage = stage;
    this.send = send;
    this.button = $('#toggle-view');
    let saved = 'grid';
    try { saved = localStorage.getItem(VIEW_KEY) || 'grid'; } catch { /* storage disabled */ }
    this.mode = saved === 'speaker' ? 'speaker' : 'grid';
    this.button.addEventListener('click', () => this.set(this.mode === 'speaker' ? 'grid' : 'speaker'));
    this._render();
  }

  set(mode) {
    this.mode = mode === 'speaker' ? 'speaker' : 'grid';
    try { localStorage.setItem(VIEW_KEY, this.mode); } catch { /* storage disabled */ }
    remember({ view: this.mode });
    this._render();
    this.announce();
  }

  /** The engine's kept layout (hello): taken unless this address has its own choice,
   * which the engine is then told of. */
  adopt(kept) {
    let own = null;
    try { own = localStorage.getItem(VIEW_KEY); } catch { /* storage disabled */ }
    if (own) remember({ view: this.mode });
    else if ((kept === 'grid' || kept === 'speaker') && kept !== this.mode) this.set(kept);
  }

  /** Tell the engine (on a switch, and whenever it says hello: a reload, a restart). */
  announce() {
    this.send({ type: 'view', mode: this.mode });
  }

  _render() {
    const speaker = this.mode === 'speaker';
    this.stage.setMode(this.mode);
    this.button.setAttribute('aria-pressed', String(speaker));
    this.button.setAttribute('aria-label', t(speaker ? 'view.toGrid' : 'view.toSpeaker'));
    this.button.title = t(speaker ? 'view.grid' : 'view.speaker');
    this.button.querySelector('.ctrl-label').textContent = t(speaker ? 'view.grid' : 'view.speaker');
  }
}

/** `footer` (the control bar) gets class "compact" (labels hidden, app.css) while its
 * buttons with their words would not fit in its width. */
export function fitControls(footer) {
  const fit = () => {
    footer.classList.remove('compact');
    if (footer.clientWidth > 0 && footer.scrollWidth > footer.clientWidth + 1) footer.classList.add('compact');
  };
  new ResizeObserver(fit).observe(footer);
  // Labels change (Mute / Unmute) and buttons come and go (Record): measure again
  // (not for the ticking clock on the left).
  const watch = new MutationObserver(fit);
  for (const part of footer.querySelectorAll('.controls-center, .controls-right')) {
    watch.observe(part, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['hidden'] });
  }
  fit();
}

const TOAST_WIDTH = 560;
const MIN_ROOM = 280; // px left of the side panel below which toasts go under it instead

/**
 * Keep the toasts (`root`, fixed at the bottom centre) off the side panel (`side`):
 * centred in the room left of it, or, when that is too narrow (the panel covers the
 * stage on small screens), below the panel.
 */
export function keepToastsClear(root, side) {
  const place = () => {
    const rect = side.hidden ? null : side.getBoundingClientRect();
    const style = root.style;
    if (!rect || rect.width === 0) {
      style.left = style.width = style.bottom = '';
      return;
    }
    const room = rect.left;
    if (room >= MIN_ROOM) {
      style.left = `${Math.round(room / 2)}px`;
      style.width = `${Math.round(Math.min(TOAST_WIDTH, room - 24))}px`;
      style.bottom = '';
    } else {
      style.left = style.width = '';
      style.bottom = `${Math.max(8, Math.round(window.innerHeight - rect.bottom - 60))}px`;
    }
  };
  new ResizeObserver(place).observe(side);
  new MutationObserver(place).observe(side, { attributes: true, attributeFilter: ['hidden'] });
  const screen = side.closest('section');
  if (screen) new MutationObserver(place).observe(screen, { attributes: true, attributeFilter: ['hidden'] });
  window.addEventListener('resize', place);
  place();
}
