// Pre-join: name, camera/microphone preview and pickers, join button.

import { $, h } from './dom.js';

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

  setHello({ role, default_name: defaultName }) {
    this.role.textContent = role === 'host'
      ? 'You are hosting. People with your invite link will wait in the lobby until you admit them.'
      : 'You were invited. The host will see your name and key fingerprint before letting you in.';
    if (!this.name.value) {
      let saved = '';
      try { saved = localStorage.getItem('clave.name') || ''; } catch { /* storage disabled */ }
      this.name.value = (saved || defaultName || '').slice(0, MAX_NAME);
    }
    this.ready = true;
    this._updateButton();
    if (!this.name.value) this.name.focus();
  }

  setBusy(busy) {
    this.busy = busy;
    this.join.textContent = busy ? 'Joining…' : 'Join meeting';
    this._updateButton();
  }

  _updateButton() {
    this.join.disabled = !this.ready || this.busy;
  }

  _submit() {
    if (!this.ready || this.busy) return;
    const name = this.name.value.trim().replace(/\s+/g, ' ');
    let problem = '';
    if (!name) problem = 'Please enter your name.';
    else if (Array.from(name).length > MAX_NAME) problem = `Names can be at most ${MAX_NAME} characters.`;
    else if (/[\u0000-\u001f\u007f]/.test(name)) problem = 'Names cannot contain control characters.';
    if (problem) {
      this.error.textContent = problem;
      this.error.hidden = false;
      this.name.setAttribute('aria-invalid', 'true');
      this.name.focus();
      return;
    }
    try { localStorage.setItem('clave.name', name); } catch { /* storage disabled */ }
    this.handlers.onJoin(name);
  }

  /** Show the camera preview (or the "camera off" placeholder). */
  showPreview(track, note = 'Camera is off') {
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
    this.micBtn.setAttribute('aria-label', micOn ? 'Turn off microphone' : 'Turn on microphone');
    this.camBtn.setAttribute('aria-pressed', String(camOn));
    this.camBtn.setAttribute('aria-label', camOn ? 'Turn off camera' : 'Turn on camera');
  }

  setMicLevel(level) {
    this._level = Math.max(level, this._level * 0.85);
    const db = this._level > 0 ? 20 * Math.log10(this._level) : -100;
    const pct = Math.max(0, Math.min(100, ((db + 55) / 45) * 100));
    this.meter.style.height = `${pct.toFixed(0)}%`;
  }

  /** Fill the device pickers; `active` = {camera, mic, speaker} ids in use (or chosen). */
  setDevices({ cameras, mics, speakers }, active, speakerSupported) {
    fill(this.cameraSelect, cameras, active.camera, 'No camera found');
    fill(this.micSelect, mics, active.mic, 'No microphone found');
    $('#speaker-field').hidden = !speakerSupported || speakers.length === 0;
    if (speakerSupported) fill(this.speakerSelect, speakers, active.speaker, 'Default speaker');
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
