// What a participant can do about another member from the People panel: mark
// them verified, give or take the host role, remove them (with a confirmation).
// Every request names the member's fingerprint too: leaf indices are reused.

import { RemoveDialog } from './remove-dialog.js';
import { toast } from './toast.js';
import { t } from '../i18n.js';

export class MemberActions {
  /** roster(): the current roster; send(message): false if not connected; onError(message). */
  constructor({ roster, send, onError }) {
    this.roster = roster;
    this.send = send;
    this.onError = onError;
    this.dialog = new RemoveDialog({
      onConfirm: (target, rotate) => {
        const message = { type: 'remove', leaf: target.leaf, fingerprint: target.fingerprint, replace_invitation: rotate };
        if (!this._sendAbout(target, message, 'remove')) return;
        toast(t(rotate ? 'members.removingRotate' : 'members.removing', { name: target.name }));
      },
    });
  }

  /** The member at `m.leaf` if it is still the same person. */
  stillHere(m) {
    return this.roster().find((r) => r.leaf === m.leaf && r.fingerprint === m.fingerprint) || null;
  }

  /** `what`: 'remove' | 'verify' | 'makeHost' | 'changeHost' (members.gone.*, members.offline.*). */
  _sendAbout(m, message, what) {
    if (!this.stillHere(m)) {
      this.onError(t(`members.gone.${what}`, { name: m.name }));
      return false;
    }
    if (!this.send(message)) {
      this.onError(t(`members.offline.${what}`, { name: m.name }));
      return false;
    }
    return true;
  }

  setVerified(m, verified) {
    const message = { type: 'verify', leaf: m.leaf, fingerprint: m.fingerprint, verified };
    if (!this._sendAbout(m, message, 'verify')) return;
    toast(t(verified ? 'members.verified' : 'members.unverified', { name: m.name }),
      { kind: 'ok', iconName: verified ? 'check' : 'shield' });
  }

  setHost(m, host) {
    const what = host ? 'makeHost' : 'changeHost';
    if (!this._sendAbout(m, { type: 'set_host', leaf: m.leaf, fingerprint: m.fingerprint, host }, what)) return;
    if (m.is_self) toast(t('members.givingUp'));
    else toast(t(host ? 'members.making' : 'members.taking', { name: m.name }));
  }

  askRemove(m) {
    if (!this.stillHere(m)) {
      this.onError(t('members.gone', { name: m.name }));
      return;
    }
    this.dialog.show(m);
  }

  /** After a roster change: a confirmation about someone who left closes. */
  check() {
    const target = this.dialog.target;
    if (target && !this.stillHere(target)) {
      this.dialog.close();
      toast(t('members.gone', { name: target.name }));
    }
  }
}
