// Pre-join: name, camera/microphone preview and pickers, join button.

import { remember } from './remembered.js';
import { $, h } from './dom.js';
import { t } from '../i18n.js';

const MAX_NAME = 64;

export class Prejoin {
  /**
   * handlers: onJoin(name), onToggleMic(), onToggleCam(),
   * onCamera(deviceId), onMic(deviceId), onSpeaker(deviceId)
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.form = $('#join-form');
    this.name = $('#name');
    this.join = $('#join');
    this.error = $('#name-error');
    this.role = $('#prejoin-role');
    this.preview = $('#preview');
    this.previewOff = $('#preview-off');
    this.previewOffText = $('#preview-off-text');
    this.meter = $('#mic-meter-bar');
    this.micBtn = $('#pre-mic');
    this.camBtn = $('#pre-cam');
    this.cameraSelect = $('#camera-select');
    this.micSelect = $('#mic-select');
    this.speakerSelect = $('#speaker-select');
    this.ready = false;
    this.busy = false;
    this._level = 0;

    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this._submit();
    });
    this.name.addEventListener('input', () => {
      this.error.hidden = true;
      this.name.removeAttribute('aria-invalid');
    });
    this.micBtn.addEventListener('click', () => handlers.onToggleMic());
    this.camBtn.addEventListener('click', () => handlers.onToggleCam());
    this.cameraSelect.addEventListener('change', () => handlers.onCamera(this.cameraSelect.value));
    this.micSelect.addEventListener('change', () => handlers.onMic(this.micSelect.value));
    this.speakerSelect.addEventListener('change', () => handlers.onSpeaker(this.speakerSelect.value));
  }

  setHello({ role, default_name: defaultName, remembered: kept }) {
    this.role.textContent = t(role === 'host' ? 'prejoin.roleHost' : 'prejoin.roleGuest');
    if (!this.name.value) {
      let saved = '';
      try {
        // A name typed before switching the language (which reloads the page) comes back.
        saved = sessionStorage.getItem('clave.nameDraft') || localStorage.getItem('clave.name')
          || (kept && kept.name) || '';
        sessionStorage.removeItem('clave.nameDraft');
      } catch { /* storage disabled */ }
      this.name.value = (saved || defaultName || '').slice(0, MAX_NAME);
    }
    this.ready = true;
    this._updateButton();
    if (!this.name.value) this.name.focus();
  }

  setBusy(busy) {
    this.busy = busy;
    this.join.textContent = t(busy ? 'prejoin.joining' : 'prejoin.join');
    this._updateButton();
  }

  _updateButton() {
    this.join.disabled = !this.ready || this.busy;
  }

  _submit() {
    if (!this.ready || this.busy) return;
    const name = this.name.value.trim().replace(/\s+/g, ' ');
    let problem = '';
    if (!name) problem = t('prejoin.nameEmpty');
    else if (Array.from(name).length > MAX_NAME) problem = t('prejoin.nameLong', { max: MAX_NAME });
    else if (/[\u0000-\u001f\u007f]/.test(name)) problem = t('prejoin.nameControl');
    if (problem) {
      this.error.textContent = problem;
      this.error.hidden = false;
      this.name.setAttribute('aria-invalid', 'true');
      this.name.focus();
      return;
    }
    try { localStorage.setItem('clave.name', name); } catch { /* storage disabled */ }
    remember({ name });
    this.handlers.onJoin(name);
  }

  /** Keep a typed name across a reload (the language selector reloads the page). */
  keepDraft() {
    const draft = this.name.value.trim();
    try { if (draft) sessionStorage.setItem('clave.nameDraft', draft); } catch { /* storage disabled */ }
  }

  /** Show the camera preview (or the "camera off" placeholder). */
  showPreview(track, note = t('prejoin.cameraOff')) {
    if (track) {
      const current = this.preview.srcObject && this.preview.srcObject.getVideoTracks()[0];
      if (current !== track) this.preview.srcObject = new MediaStream([track]);
      this.preview.play().catch(() => {});
      this.previewOff.hidden = true;
    } else {
      this.preview.srcObject = null;
      this.previewOffText.textContent = note;
      this.previewOff.hidden = false;
    }
  }

  setToggles(micOn, camOn) {
    this.micBtn.setAttribute('aria-pressed', String(micOn));
    this.micBtn.setAttribute('aria-label', t(micOn ? 'prejoin.micOff' : 'prejoin.micTurnOn'));
    this.camBtn.setAttribute('aria-pressed', String(camOn));
    this.camBtn.setAttribute('aria-label', t(camOn ? 'prejoin.camOff' : 'prejoin.camTurnOn'));
  }

  setMicLevel(level) {
    this._level = Math.max(level, this._level * 0.85);
    const db = this._level > 0 ? 20 * Math.log10(this._level) : -100;
    const pct = Math.max(0, Math.min(100, ((db + 55) / 45) * 100));
    this.meter.style.height = `${pct.toFixed(0)}%`;
  }

  /** Fill the device pickers; `active` = {camera, mic, speaker} ids in use (or chosen). */
  setDevices({ cameras, mics, speakers }, active, speakerSupported) {
    fill(this.cameraSelect, cameras, active.camera, t('device.noCamera'));
    fill(this.micSelect, mics, active.mic, t('device.noMicrophone'));
    $('#speaker-field').hidden = !speakerSupported || speakers.length === 0;
    if (speakerSupported) fill(this.speakerSelect, speakers, active.speaker, t('device.defaultSpeaker'));
  }
}

function fill(select, devices, activeId, emptyLabel) {
  const previous = select.value;
  const options = devices.length
    ? devices.map((d) => h('option', { value: d.deviceId }, d.label))
    : [h('option', { value: '' }, emptyLabel)];
  select.replaceChildren(...options);
  const want = activeId || previous;
  if (want && devices.some((d) => d.deviceId === want)) select.value = want;
  select.disabled = devices.length === 0;
}
