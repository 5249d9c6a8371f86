// This participant's own capture: microphone, camera and screen switches, the
// devices behind them, what the media worker encodes, and the buttons that show
// it. The engine remembers the switches (`media_state`), so a reloaded tab
// starts as it was: mute and camera-off survive a reload. The devices chosen (and
// the switches chosen before joining) are remembered on this page's address
// (ui/devices.js) and, by label, by the engine for the next meeting (ui/remembered.js).

import { LocalMedia, captureScreen, describeMediaError } from '../media/capture.js';
import { stats } from '../stats.js';
import { $ } from './dom.js';
import { loadDevicePrefs, saveDevicePrefs, speakerSupported } from './devices.js';
import { remember } from './remembered.js';
import { toast } from './toast.js';
import { t } from '../i18n.js';

export class LocalControls {
  /**
   * link: the EngineLink; stage, prejoin: UI parts showing our own video;
   * canSend(): in the meeting with the relay link up; canShare(): in the meeting;
   * canReport(): the engine said hello (so reports do not overwrite what it remembered);
   * onError(message); playout: the AudioPlayout (its speaker).
   */
  constructor({ link, stage, prejoin, canSend, canShare, canReport, onError, playout }) {
    this.link = link;
    this.stage = stage;
    this.prejoin = prejoin;
    this.canSend = canSend;
    this.canShare = canShare;
    this.canReport = canReport;
    this.onError = onError;
    this.playout = playout;
    this.media = new LocalMedia();
    const saved = loadDevicePrefs(); // last time's choices (the engine's, after a reload, win)
    this.micOn = saved.micOn ?? true;
    this.camOn = saved.camOn ?? true;
    this.media.cameraId = saved.camera || '';
    this.media.micId = saved.mic || '';
    this.media.speakerId = saved.speaker || '';
    if (playout) playout.sinkId = this.media.speakerId;
    this.opened = false; // openDevices() ran
    this.wanted = null; // devices kept by the engine, by label (applyRemembered)
    this.screenTrack = null;
    this.camBusy = false;
    this.lastReported = '';
    this.media.onTracksChanged = () => this._tracksChanged();
    $('#toggle-mic').addEventListener('click', () => this.toggleMic());
    $('#toggle-cam').addEventListener('click', () => this.toggleCam());
    $('#toggle-screen').addEventListener('click', () => this.toggleScreen());
  }

  _tracksChanged() {
    const { media } = this;
    this.link.setSource('audio', media.audioTrack);
    this.link.setSource('video', this.camOn ? media.videoTrack : null);
    this.prejoin.showPreview(this.camOn ? media.videoTrack : null, t(this.camOn ? 'prejoin.noCamera' : 'prejoin.cameraOff'));
    this.stage.get('p:self')?.setStream(this.camOn ? media.videoTrack : null);
    this.updateSending();
  }

  /** Encode and send only in the meeting, with the relay link up, and only what is on. */
  updateSending() {
    const live = this.canSend();
    this.link.enable({
      audio: live && this.micOn && !!this.media.audioTrack,
      video: live && this.camOn && !!this.media.videoTrack,
      screen: live && !!this.screenTrack,
    });
  }

  /** Open the microphone (and the camera if it is on); switches follow what opened. */
  async openDevices() {
    this.opened = true;
    const errors = await this.media.open({ withCamera: this.camOn });
    if (!this.media.videoTrack) {
      this.camOn = false;
      this.prejoin.showPreview(null, errors.find((e) => e.includes(t('media.device.camera'))) || t('prejoin.cameraOff'));
    }
    if (!this.media.audioTrack) this.micOn = false;
    for (const e of errors) this.onError(e);
    this.render();
    this.updateSending();
  }

  /** The engine's kept choices (hello): the pre-join switches and devices by label,
   * each unless this address has a choice of its own. */
  applyRemembered(kept) {
    if (!kept) return;
    const own = loadDevicePrefs();
    if (!this.opened && own.micOn === undefined && typeof kept.mic_on === 'boolean') this.micOn = kept.mic_on;
    if (!this.opened && own.camOn === undefined && typeof kept.cam_on === 'boolean') this.camOn = kept.cam_on;
    this.wanted = {
      camera: own.camera ? null : kept.camera,
      mic: own.mic ? null : kept.mic,
      speaker: own.speaker ? null : kept.speaker,
    };
  }

  /** Once the devices are open (their labels known): switch to the kept ones. */
  async restoreRemembered() {
    const wanted = this.wanted;
    this.wanted = null;
    if (!wanted || !(wanted.camera || wanted.mic || wanted.speaker)) return;
    let devices;
    try {
      devices = await this.media.listDevices();
    } catch {
      return;
    }
    const pick = (list, label) => (label ? list.find((d) => d.label === label) : undefined);
    const active = this.media.activeIds();
    const camera = pick(devices.cameras, wanted.camera);
    if (camera && camera.deviceId !== active.camera) await this.chooseCamera(camera.deviceId);
    const mic = pick(devices.mics, wanted.mic);
    if (mic && mic.deviceId !== active.mic) await this.chooseMic(mic.deviceId);
    const speaker = pick(devices.speakers, wanted.speaker);
    if (speaker && speakerSupported() && speaker.deviceId !== this.media.speakerId) {
      await this.chooseSpeaker(speaker.deviceId);
    }
  }

  /** Keep a chosen device's label for the next meeting (its id is this address's). */
  async _rememberDevice(kind, id) {
    try {
      const devices = await this.media.listDevices();
      const list = { camera: devices.cameras, mic: devices.mics, speaker: devices.speakers }[kind];
      const device = list.find((d) => d.deviceId === id);
      if (device && device.label) remember({ [kind]: device.label });
    } catch { /* not listed: nothing kept */ }
  }

  /** Fill the pre-join device pickers (labels appear once permission is granted). */
  async refreshDevices() {
    try {
      const devices = await this.media.listDevices();
      this.prejoin.setDevices(devices, { ...this.media.activeIds(), speaker: this.media.speakerId },
        speakerSupported());
    } catch (err) {
      console.warn('clave: enumerateDevices failed', err);
    }
  }

  /** The engine remembered this page's switches (a reload): start as they were. */
  applyPrefs(prefs) {
    if (prefs) {
      stats.mediaRestored = { ...prefs };
      this.micOn = prefs.mic;
      if (prefs.cam && !this.camOn && !this.opened) this.camOn = true; // not opened yet
      if (!prefs.cam && this.camOn) {
        this.camOn = false;
        if (this.media.videoTrack) this.media.stopCamera();
      }
      if (prefs.screen) {
        toast(t('controls.shareStopped'),
          { ms: 8000, iconName: 'screen' });
      }
    }
    this.render();
    this.updateSending();
  }

  /** Tell the engine how the switches are, so a reloaded tab gets them back. */
  report() {
    if (!this.canReport()) return;
    const message = { type: 'media_state', mic: this.micOn, cam: this.camOn, screen: !!this.screenTrack };
    const key = JSON.stringify(message);
    if (key !== this.lastReported && this.link.send(message)) this.lastReported = key;
  }

  /** A camera chosen (pre-join or the device menu): the new track replaces the one
   * feeding the encoder; with the camera off, it is the one used when it goes on. */
  async chooseCamera(id) {
    this.media.cameraId = id;
    saveDevicePrefs({ camera: id });
    this._rememberDevice('camera', id);
    if (!this.camOn) return;
    try {
      await this.media.startCamera(id);
    } catch (err) {
      this.onError(describeMediaError(err, 'camera'));
    }
  }

  async chooseMic(id) {
    saveDevicePrefs({ mic: id });
    this._rememberDevice('mic', id);
    try {
      await this.media.setMic(id);
    } catch (err) {
      this.media.micId = id; // tried again when the microphone goes on
      this.onError(describeMediaError(err, 'microphone'));
    }
  }

  async chooseSpeaker(id) {
    this.media.speakerId = id;
    saveDevicePrefs({ speaker: id });
    this._rememberDevice('speaker', id);
    try {
      await this.playout?.setSinkId(id);
    } catch (err) {
      console.warn('clave: setSinkId failed:', err);
      this.onError(t('controls.speakerFailed'));
    }
  }

  /** Before joining, the switches are a choice remembered for next time. */
  _rememberSwitches() {
    if (this.canShare()) return;
    saveDevicePrefs({ micOn: this.micOn, camOn: this.camOn });
    remember({ mic_on: this.micOn, cam_on: this.camOn });
  }

  async toggleMic() {
    const turningOn = !this.micOn;
    if (turningOn && !this.media.audioTrack) {
      try {
        await this.media.setMic(this.media.micId);
      } catch (err) {
        this.onError(describeMediaError(err, 'microphone'));
        return;
      }
    }
    this.micOn = turningOn;
    this._rememberSwitches();
    this.render();
    this.updateSending();
  }

  async toggleCam() {
    if (this.camBusy) return;
    this.camBusy = true;
    try {
      if (this.camOn) {
        this.camOn = false;
        this.media.stopCamera();
      } else {
        try {
          await this.media.startCamera();
          this.camOn = true;
        } catch (err) {
          this.onError(describeMediaError(err, 'camera'));
        }
        this._tracksChanged();
      }
    } finally {
      this.camBusy = false;
      this._rememberSwitches();
      this.render();
      this.updateSending();
    }
  }

  async toggleScreen() {
    if (!this.canShare()) return;
    if (this.screenTrack) {
      this.stopScreen();
      return;
    }
    let track;
    try {
      track = await captureScreen();
    } catch (err) {
      if (err && err.name === 'NotAllowedError') return; // the user cancelled the picker
      this.onError(describeMediaError(err, 'screen'));
      return;
    }
    if (!this.canShare()) {
      track.stop();
      return;
    }
    this.screenTrack = track;
    track.addEventListener('ended', () => {
      if (this.screenTrack === track) this.stopScreen();
    });
    this.link.setSource('screen', track);
    const tile = this.stage.ensure('s:self', { name: t('common.you'), screen: true, self: true, colorKey: 'self' });
    tile.setStream(track);
    this.render();
    this.updateSending();
    toast(t('controls.presenting'), { kind: 'ok' });
  }

  stopScreen() {
    const track = this.screenTrack;
    this.screenTrack = null;
    this.link.setSource('screen', null);
    this.updateSending();
    if (track) track.stop();
    this.stage.remove('s:self');
    this.render();
  }

  /** The meeting is over: nothing captured any more (the camera light goes out). The
   * switches stay as they are, for a rejoin. */
  stopAll() {
    this.updateSending();
    if (this.screenTrack) {
      const track = this.screenTrack;
      this.screenTrack = null;
      this.link.setSource('screen', null);
      track.stop();
    }
    this.media.stop();
  }

  /** The engine is gone. */
  shutdown() {
    this.media.onTracksChanged = null;
    this.stopAll();
  }

  render() {
    this.prejoin.setToggles(this.micOn, this.camOn);
    const mic = $('#toggle-mic');
    mic.setAttribute('aria-pressed', String(this.micOn));
    mic.setAttribute('aria-label', t(this.micOn ? 'controls.muteMic' : 'controls.unmuteMic'));
    mic.querySelector('.ctrl-label').textContent = t(this.micOn ? 'controls.mute' : 'controls.unmute');
    mic.dataset.state = this.micOn ? 'on' : 'off';
    const cam = $('#toggle-cam');
    cam.setAttribute('aria-pressed', String(this.camOn));
    cam.setAttribute('aria-label', t(this.camOn ? 'controls.camOff' : 'controls.camOn'));
    cam.querySelector('.ctrl-label').textContent = t(this.camOn ? 'controls.stopVideo' : 'controls.startVideo');
    cam.dataset.state = this.camOn ? 'on' : 'off';
    const share = $('#toggle-screen');
    share.setAttribute('aria-pressed', String(!!this.screenTrack));
    share.setAttribute('aria-label', t(this.screenTrack ? 'controls.stopShareLabel' : 'controls.shareLabel'));
    share.querySelector('.ctrl-label').textContent = t(this.screenTrack ? 'controls.stopShare' : 'controls.share');
    this.stage.get('p:self')?.setMicMuted(!this.micOn);
    stats.switches = { mic: this.micOn, cam: this.camOn, screen: !!this.screenTrack };
    this.report();
  }
}
