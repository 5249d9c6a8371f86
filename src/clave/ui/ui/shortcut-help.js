// "Keyboard shortcuts" (the ? key): a native modal <dialog> listing the meeting's
// shortcuts from the same table that binds them, so the list cannot drift.

import { h } from './dom.js';
import { t } from '../i18n.js';

export class ShortcutHelp {
  /** shortcuts: [[key, what it does], ...] in the order shown. */
  constructor(shortcuts) {
    this.opener = null;
    const rows = shortcuts.map(([key, label]) =>
      h('div', { class: 'shortcut-row' },
        h('dt', null, h('kbd', null, key === ' ' ? t('keys.space') : key.length === 1 ? key.toUpperCase() : key)),
        h('dd', null, label)));
    this.closeButton = h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => this.close() }, t('common.close'));
    this.dialog = h('dialog', { id: 'shortcuts-dialog', class: 'dialog', 'aria-labelledby': 'shortcuts-title' },
      h('div', { class: 'dialog-form' },
        h('h2', { id: 'shortcuts-title' }, t('keys.title')),
        h('p', { class: 'hint' }, t('keys.hint')),
        h('dl', { class: 'shortcut-list' }, rows),
        h('div', { class: 'popover-actions' }, this.closeButton)));
    this.dialog.addEventListener('close', () => {
      if (this.opener && this.opener.focus) this.opener.focus();
      this.opener = null;
    });
    document.body.append(this.dialog);
  }

  get open() {
    return this.dialog.open;
  }

  show() {
    if (this.dialog.open) return;
    this.opener = document.activeElement;
    this.dialog.showModal();
    this.closeButton.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}
