// The relay link as the engine reports it (state.connection): a "Reconnecting…"
// banner over the meeting while the engine restores its relay connection. Tiles
// stay; nothing is sent meanwhile (the padlock says so); the page returns to the
// meeting by itself, without a reload. Counts go to window.claveStats.

import { $ } from './dom.js';
import { stats } from '../stats.js';
import { t } from '../i18n.js';

export class ConnectionBanner {
  constructor() {
    this.banner = $('#reconnect-alert');
    this.text = $('#reconnect-text');
    this.state = null;
  }

  /** `connection`: "connected" | "reconnecting" | "closed" | null; `reconnects`: so far. */
  set(connection, reconnects) {
    const before = this.state;
    this.state = connection;
    stats.connection = connection;
    stats.reconnects = reconnects;
    if (connection === 'reconnecting' && before !== 'reconnecting') {
      stats.reconnectingShown++;
      stats.connectionLog.push({ state: 'reconnecting', at: Date.now() });
    } else if (before === 'reconnecting' && connection === 'connected') {
      stats.connectionLog.push({ state: 'connected', at: Date.now() });
    }
    if (stats.connectionLog.length > 100) stats.connectionLog.shift();
    const show = connection === 'reconnecting';
    this.banner.hidden = !show;
    const text = show ? t('alert.reconnectingText') : '';
    if (this.text.textContent !== text) this.text.textContent = text;
  }

  get reconnecting() {
    return this.state === 'reconnecting';
  }
}
