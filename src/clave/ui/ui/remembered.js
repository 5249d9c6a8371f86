// Choices kept for the next meeting by the engine (`remember`; the engine's hello
// brings them back as `remembered`). Every meeting's page has a new address, and this
// browser's localStorage belongs to one address, so on its own a page would forget
// the name typed, the devices, the pre-join switches, the language and the layout
// with each meeting. The engine keeps them in its configuration directory.
//
// Devices are kept by label: a device's id differs from one address to the next. A
// choice stored on this very address (localStorage) is the user's latest here and wins;
// a page with none takes the engine's.

import { SCHEMA, checkOutgoing } from '../protocol.js';

let kept = {};
let send = null;
let pending = {};

const FIELDS = Object.keys(SCHEMA.toEngine.remember.choices.fields);

/** Whether the engine takes `value` as `key` (the schema's own check): a device label
 * too long for it is not kept, rather than making every later message one it refuses. */
function acceptable(key, value) {
  return checkOutgoing({ type: 'remember', choices: { [key]: value } }) === null;
}

/** What the engine kept (hello.remembered), and how to tell it of new choices. */
export function connectRemembered(remembered, sender) {
  kept = { ...(remembered || {}) };
  send = sender;
  remember({});
}

/** The kept choices: {name, camera, mic, speaker (labels), mic_on, cam_on, lang, view}. */
export function remembered() {
  return kept;
}

/** Keep `changes` for next time (told to the engine once it said hello; what could not
 * be told yet goes with the next choice). */
export function remember(changes) {
  for (const key of FIELDS) {
    const value = changes[key];
    if (value === undefined || value === null || value === '' || !acceptable(key, value)) continue;
    if (kept[key] === value) delete pending[key];
    else pending[key] = value;
  }
  if (!Object.keys(pending).length || !send) return;
  const choices = pending;
  if (send({ type: 'remember', choices })) {
    Object.assign(kept, choices);
    pending = {};
  }
}
