// Devices during the call and remembered choices.
//
// The device menu (meeting page) switches camera, microphone and speaker without
// leaving: a new capture track replaces the one feeding the encoder (LocalControls),
// the speaker is the AudioContext's sink (setSinkId, where supported). The choices
// made on the pre-join screen and in this menu are remembered on this page's address
// (localStorage: device ids and the microphone and camera switches, nothing secret)
// and, by label, by the engine for the next meeting on a new address
// (ui/remembered.js); they are preselected next time. window.claveStats.devices says which devices are in use:
// the ids of the tracks the media worker encodes and the speaker's sink id.

import { stats } from '../stats.js';
import { $, h } from './dom.js';
import { t } from '../i18n.js';

const PREFS_KEY = 'clave.devices';

/** {camera, mic, speaker: device ids; micOn, camOn: switches}, each possibly missing. */
export function loadDevicePrefs() {
  try {
    const saved = JSON.parse(localStorage.getItem(PREFS_KEY) || '{}');
    return saved && typeof saved === 'object' ? saved : {};
  } catch {
    return {};
  }
}

/** Remember some choices (merged into what was remembered). */
export function saveDevicePrefs(changes) {
  const prefs = { ...loadDevicePrefs(), ...changes };
  for (const key of ['camera', 'mic', 'speaker']) {
    if (typeof prefs[key] !== 'string') delete prefs[key];
  }
  for (const key of ['micOn', 'camOn']) {
    if (typeof prefs[key] !== 'boolean') delete prefs[key];
  }
  try { localStorage.setItem(PREFS_KEY, JSON.stringify(prefs)); } catch { /* storage disabled */ }
}

export function speakerSupported() {
  return typeof AudioContext !== 'undefined' && 'setSinkId' in AudioContext.prototype;
}

/** window.claveStats.devices: what is in use right now (read when asked). */
export function exposeDevices(link, playout) {
  const idOf = (track) => (track && track.readyState === 'live' ? track.getSettings().deviceId || null : null);
  Object.defineProperty(stats, 'devices', {
    enumerable: true,
    get: () => ({
      camera: idOf(link.tracks.video),
      mic: idOf(link.tracks.audio),
      speaker: playout.ctx ? playout.ctx.sinkId ?? null : null,
    }),
  });
}

export class DeviceMenu {
  /**
   * controls: LocalControls (chooseCamera, chooseMic, chooseSpeaker, media);
   * inMeeting(): the menu may open.
   */
  constructor({ controls, inMeeting }) {
    this.controls = controls;
    this.inMeeting = inMeeting;
    this.button = $('#toggle-devices');
    this.pop = $('#device-menu');
    this.selects = { camera: $('#menu-camera'), mic: $('#menu-mic'), speaker: $('#menu-speaker') };
    this.button.addEventListener('click', () => (this.pop.hidden ? this.open() : this.close()));
    $('#device-menu-close').addEventListener('click', () => this.close(true));
    this.selects.camera.addEventListener('change', () => controls.chooseCamera(this.selects.camera.value));
    this.selects.mic.addEventListener('change', () => controls.chooseMic(this.selects.mic.value));
    this.selects.speaker.addEventListener('change', () => controls.chooseSpeaker(this.selects.speaker.value));
    this.pop.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape') return;
      ev.stopPropagation(); // the page's Escape would close the side panel too
      this.close(true);
    });
    document.addEventListener('pointerdown', (ev) => {
      if (!this.pop.hidden && !this.pop.contains(ev.target) && !this.button.contains(ev.target)) this.close();
    });
    // The meeting screen went away (the meeting ended): closed, not open on a rejoin.
    const screen = this.pop.closest('section');
    if (screen) {
      new MutationObserver(() => { if (screen.hidden) this.close(); })
        .observe(screen, { attributes: true, attributeFilter: ['hidden'] });
    }
  }

  get isOpen() {
    return !this.pop.hidden;
  }

  async open() {
    if (!this.inMeeting()) return;
    this.pop.hidden = false;
    this.button.setAttribute('aria-expanded', 'true');
    await this.refresh();
    this.selects.camera.focus();
  }

  /** `restoreFocus`: closed from the keyboard or its button: back to the menu button. */
  close(restoreFocus = false) {
    if (this.pop.hidden) return;
    this.pop.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
    if (restoreFocus) this.button.focus();
  }

  /** Fill the pickers with the devices there are now, the ones in use selected. */
  async refresh() {
    if (this.pop.hidden) return;
    let devices;
    try {
      devices = await this.controls.media.listDevices();
    } catch (err) {
      console.warn('clave: enumerateDevices failed', err);
      return;
    }
    const active = this.controls.media.activeIds();
    fill(this.selects.camera, devices.cameras, active.camera, t('device.noCamera'));
    fill(this.selects.mic, devices.mics, active.mic, t('device.noMicrophone'));
    const speakers = speakerSupported() && devices.speakers.length > 0;
    $('#menu-speaker-field').hidden = !speakers;
    $('#menu-speaker-note').hidden = speakers;
    if (speakers) fill(this.selects.speaker, devices.speakers, this.controls.media.speakerId, t('device.defaultSpeaker'));
  }
}

function fill(select, devices, activeId, emptyLabel) {
  const options = devices.length
    ? devices.map((d) => h('option', { value: d.deviceId }, d.label))
    : [h('option', { value: '' }, emptyLabel)];
  select.replaceChildren(...options);
  if (activeId && devices.some((d) => d.deviceId === activeId)) select.value = activeId;
  select.disabled = devices.length === 0;
}
