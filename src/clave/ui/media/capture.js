// Capture: camera and microphone (getUserMedia with a chosen deviceId),
// device lists (enumerateDevices) and screen share (getDisplayMedia).

import { t } from '../i18n.js';

const AUDIO_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
  channelCount: { ideal: 1 },
  sampleRate: { ideal: 48000 },
};
// 720p (three simulcast layers: 180p, 360p, 720p; media/video.js) on machines with
// four cores or more; 360p (two layers) on smaller ones, where three software
// encoders would not keep up. `?camera=720` or `?camera=360` chooses.
const WANT_720P = (() => {
  const asked = new URLSearchParams(globalThis.location?.search || '').get('camera');
  if (asked === '720' || asked === '360') return asked === '720';
  return (navigator.hardwareConcurrency || 2) >= 4;
})();
const VIDEO_CONSTRAINTS = {
  width: { ideal: WANT_720P ? 1280 : 640 },
  height: { ideal: WANT_720P ? 720 : 360 },
  aspectRatio: { ideal: 16 / 9 },
  frameRate: { ideal: 30, max: 30 },
};

/** A sentence for a getUserMedia failure that says what to do; the browser's own
 * message goes to the console only. `what`: 'camera' | 'microphone' | 'screen'. */
export function describeMediaError(err, what) {
  const name = err && err.name;
  console.warn(`clave: could not start the ${what}:`, err);
  const device = t(`media.device.${what}`);
  if (name === 'NotAllowedError' || name === 'SecurityError') return t('media.denied', { device });
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return t('media.notFound', { device });
  if (name === 'NotReadableError' || name === 'AbortError') return t('media.inUse', { device });
  return t('media.failed', { device });
}

export class LocalMedia {
  constructor() {
    this.audioTrack = null;
    this.videoTrack = null;
    this.cameraId = '';
    this.micId = '';
    this.speakerId = ''; // the audio output chosen ('' : the default)
    this.onTracksChanged = null; // () => void
  }

  /** Open the microphone (and camera if `withCamera`). Returns a list of error sentences. */
  async open({ withCamera = true } = {}) {
    const errors = [];
    try {
      await orDefault(this.micId, (id) => this.setMic(id));
    } catch (err) {
      errors.push(describeMediaError(err, 'microphone'));
    }
    if (withCamera) {
      try {
        await orDefault(this.cameraId, (id) => this.startCamera(id));
      } catch (err) {
        errors.push(describeMediaError(err, 'camera'));
      }
    }
    return errors;
  }

  async setMic(deviceId) {
    const audio = { ...AUDIO_CONSTRAINTS };
    if (deviceId) audio.deviceId = { exact: deviceId };
    const stream = await navigator.mediaDevices.getUserMedia({ audio });
    const track = stream.getAudioTracks()[0];
    this._replace('audioTrack', track);
    this.micId = deviceId || '';
    return track;
  }

  async startCamera(deviceId = this.cameraId) {
    const video = { ...VIDEO_CONSTRAINTS };
    if (deviceId) video.deviceId = { exact: deviceId };
    const stream = await navigator.mediaDevices.getUserMedia({ video });
    const track = stream.getVideoTracks()[0];
    this._replace('videoTrack', track);
    this.cameraId = deviceId || '';
    return track;
  }

  /** Turn the camera off completely (its light goes out). */
  stopCamera() {
    this._replace('videoTrack', null);
  }

  _replace(slot, track) {
    const old = this[slot];
    this[slot] = track;
    if (old && old !== track) old.stop();
    if (track) {
      track.addEventListener('ended', () => {
        if (this[slot] === track) {
          this[slot] = null;
          this.onTracksChanged?.();
        }
      });
    }
    this.onTracksChanged?.();
  }

  /** {cameras, mics, speakers}: [{deviceId, label}] (labels appear once permission is granted). */
  async listDevices() {
    const result = { cameras: [], mics: [], speakers: [] };
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return result;
    const devices = await navigator.mediaDevices.enumerateDevices();
    let n = { videoinput: 0, audioinput: 0, audiooutput: 0 };
    for (const d of devices) {
      if (!(d.kind in n)) continue;
      n[d.kind]++;
      const fallback = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' }[d.kind];
      const item = { deviceId: d.deviceId, label: d.label || `${fallback} ${n[d.kind]}` };
      if (d.kind === 'videoinput') result.cameras.push(item);
      else if (d.kind === 'audioinput') result.mics.push(item);
      else result.speakers.push(item);
    }
    return result;
  }

  /** Current device ids actually in use (from track settings). */
  activeIds() {
    return {
      camera: this.videoTrack ? this.videoTrack.getSettings().deviceId || this.cameraId : this.cameraId,
      mic: this.audioTrack ? this.audioTrack.getSettings().deviceId || this.micId : this.micId,
    };
  }

  stop() {
    this._replace('audioTrack', null);
    this._replace('videoTrack', null);
  }
}

/** open(id), or open('') (the default device) if the device remembered is gone. */
async function orDefault(id, open) {
  try {
    return await open(id);
  } catch (err) {
    if (!id || !['NotFoundError', 'OverconstrainedError'].includes(err && err.name)) throw err;
    return open('');
  }
}

/** Ask the user for a screen, window or tab. Resolves to a video track. */
export async function captureScreen() {
  const stream = await navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: 15, max: 15 }, width: { max: 1280 }, height: { max: 720 } },
    audio: false,
  });
  const track = stream.getVideoTracks()[0];
  try { track.contentHint = 'detail'; } catch { /* optional */ }
  return track;
}
