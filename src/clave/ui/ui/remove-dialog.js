// "Remove this person?": a native <dialog> (modal, focus kept inside, Esc
// cancels), with the option to replace the invitation they hold.

import { $ } from './dom.js';
import { t } from '../i18n.js';

export class RemoveDialog {
  /** onConfirm(target, replaceInvitation); target: {leaf, fingerprint, name}. */
  constructor({ onConfirm }) {
    this.dialog = $('#remove-dialog');
    this.target = null;
    this.opener = null; // the button that opened it, to return focus to
    this.dialog.addEventListener('close', () => this._closed());
    $('#remove-cancel').addEventListener('click', () => this.close());
    $('#remove-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const target = this.target;
      const rotate = $('#remove-rotate').checked;
      this.close();
      if (target) onConfirm(target, rotate);
    });
  }

  get open() {
    return this.dialog.open;
  }

  show(m) {
    this.target = { leaf: m.leaf, fingerprint: m.fingerprint, name: m.name };
    this.opener = document.activeElement;
    $('#remove-title').textContent = t('remove.title', { name: m.name });
    $('#remove-rotate').checked = true;
    $('#remove-confirm').textContent = t('remove.confirm', { name: m.name });
    this.dialog.showModal();
    $('#remove-cancel').focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  _closed() {
    const target = this.target;
    this.target = null;
    // Back to the button that opened the dialog, or its rebuilt twin, or the list heading.
    let back = this.opener && this.opener.isConnected ? this.opener : null;
    if (!back && target) {
      back = $('#participants').querySelector(`[data-key="${CSS.escape(`${target.leaf}:${target.fingerprint}`)}"] [data-remove]`);
    }
    this.opener = null;
    (back || $('#people-title')).focus();
  }
}
