// What a participant can do about another member from the People panel: mark
// them verified, give or take the host role, remove them (with a confirmation).
// Every request names the member's fingerprint too: leaf indices are reused.

import { RemoveDialog } from './remove-dialog.js';
import { toast } from './toast.js';

export class MemberActions {
  /** roster(): the current roster; send(message): false if not connected; onError(message). */
  constructor({ roster, send, onError }) {
    this.roster = roster;
    this.send = send;
    this.onError = onError;
    this.dialog = new RemoveDialog({
      onConfirm: (target, rotate) => {
        const message = { type: 'remove', leaf: target.leaf, fingerprint: target.fingerprint, replace_invitation: rotate };
        if (!this._sendAbout(target, message, `remove ${target.name}`)) return;
        toast(rotate
          ? `Removing ${target.name}… The invitation will be replaced once they are out.`
          : `Removing ${target.name}…`);
      },
    });
  }

  /** The member at `m.leaf` if it is still the same person. */
  stillHere(m) {
    return this.roster().find((r) => r.leaf === m.leaf && r.fingerprint === m.fingerprint) || null;
  }

  _sendAbout(m, message, what) {
    if (!this.stillHere(m)) {
      this.onError(`Cannot ${what}: ${m.name} is no longer in the meeting.`);
      return false;
    }
    if (!this.send(message)) {
      this.onError(`Not connected: could not ${what}.`);
      return false;
    }
    return true;
  }

  setVerified(m, verified) {
    const message = { type: 'verify', leaf: m.leaf, fingerprint: m.fingerprint, verified };
    if (!this._sendAbout(m, message, 'change who is verified')) return;
    toast(verified
      ? `${m.name} is marked as verified. Clave remembers their key for later meetings.`
      : `${m.name} is no longer marked as verified.`, { kind: 'ok', iconName: verified ? 'check' : 'shield' });
  }

  setHost(m, host) {
    const what = host ? `make ${m.name} a host` : 'change the host role';
    if (!this._sendAbout(m, { type: 'set_host', leaf: m.leaf, fingerprint: m.fingerprint, host }, what)) return;
    if (m.is_self) toast('Giving up your host role…');
    else toast(host ? `Making ${m.name} a host…` : `Taking the host role from ${m.name}…`);
  }

  askRemove(m) {
    if (!this.stillHere(m)) {
      this.onError(`${m.name} is no longer in the meeting.`);
      return;
    }
    this.dialog.show(m);
  }

  /** After a roster change: a confirmation about someone who left closes. */
  check() {
    const target = this.dialog.target;
    if (target && !this.stillHere(target)) {
      this.dialog.close();
      toast(`${target.name} is no longer in the meeting.`);
    }
  }
}
