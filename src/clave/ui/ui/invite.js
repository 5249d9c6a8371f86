// The invitation card and button: copy the clave:// invitation (it holds the
// meeting secret, so it is never shown unless copying fails), copy the relay's
// secret-free web page for invitees, and a host's "Replace invitation".

import { $ } from './dom.js';
import { toast } from './toast.js';

/** Copy on a user action only; `fallback()` if the clipboard is not available. */
async function copyText(text, okMessage, fallback) {
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    toast(okMessage, { kind: 'ok' });
  } catch {
    fallback();
  }
}

export class InviteTools {
  /**
   * invitation(): the current clave:// invitation (or ''); infoUrl(): the page for invitees
   * (or null); rotate(): ask the engine to replace the invitation (null: not a host,
   * false: not connected); onError(message).
   */
  constructor({ invitation, infoUrl, rotate, onError }) {
    this.invitation = invitation;
    this.infoUrl = infoUrl;
    this.onError = onError;
    this.popOpener = null;
    $('#copy-link').addEventListener('click', () => this.copyInvite());
    $('#copy-invite').addEventListener('click', () => this.copyInvite());
    $('#copy-info-url').addEventListener('click', () => this.copyInfoUrl());
    $('#rotate-invite').addEventListener('click', () => {
      const sent = rotate();
      if (sent === false) onError('Not connected: the invitation was not replaced.');
      else if (sent) toast('Replacing the invitation…', { iconName: 'link' });
    });
    $('#invite-close').addEventListener('click', () => this.closePop());
  }

  get popOpen() {
    return !$('#invite-pop').hidden;
  }

  renderInfoUrl() {
    const url = this.infoUrl();
    $('#info-url-box').hidden = !url;
    if (url && $('#info-url').textContent !== url) $('#info-url').textContent = url;
  }

  /** The invitation changed: the popover, if open, shows the new one. */
  replaced(url) {
    if (this.popOpen) $('#invite-input').value = url;
  }

  async copyInvite() {
    const url = this.invitation();
    if (!url) {
      this.onError('No invite link yet.');
      return;
    }
    const opener = document.activeElement;
    await copyText(url, 'Invitation copied. Anyone with it can ask to join: send it only to the people you invite.', () => {
      this.popOpener = opener;
      $('#invite-pop').hidden = false;
      const input = $('#invite-input');
      input.value = url;
      input.focus();
      input.select();
    });
  }

  async copyInfoUrl() {
    const url = this.infoUrl();
    if (!url) return;
    await copyText(url, 'Web page address copied (it holds no secret).', () => {
      const range = document.createRange();
      range.selectNodeContents($('#info-url'));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      toast('Copying did not work here: the address is selected, press Ctrl+C to copy it.');
    });
  }

  /** The fallback popover shows the invitation: clear it from the page when closed. */
  closePop() {
    const hadFocus = $('#invite-pop').contains(document.activeElement);
    $('#invite-pop').hidden = true;
    $('#invite-input').value = '';
    if (hadFocus && this.popOpener && this.popOpener.isConnected) this.popOpener.focus();
    this.popOpener = null;
  }
}
