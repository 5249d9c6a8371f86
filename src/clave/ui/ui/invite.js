// The invitation card and button: copy the clave:// invitation (it holds the
// meeting secret, so it is never shown unless copying fails), copy the relay's
// secret-free web page for invitees, and a host's "Replace invitation".

import { $ } from './dom.js';
import { toast } from './toast.js';
import { t } from '../i18n.js';

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
      if (sent === false) onError(t('invite.notReplaced'));
      else if (sent) toast(t('invite.replacing'), { iconName: 'link' });
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
      this.onError(t('invite.none'));
      return;
    }
    const opener = document.activeElement;
    await copyText(url, t('invite.copied'), () => {
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
    await copyText(url, t('invite.addressCopied'), () => {
      const range = document.createRange();
      range.selectNodeContents($('#info-url'));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      toast(t('invite.addressSelected'));
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
