// Choices kept for the next meeting by the engine (`remember`; the engine's hello
// brings them back as `remembered`). Every meeting's page has a new address, and this
// browser's localStorage belongs to one address, so on its own a page would forget
// the name typed, the devices, the pre-join switches, the language and the layout
// with each meeting. The engine keeps them in its configuration directory.
//
// Devices are kept by label: a device's id differs from one address to the next. A
// choice stored on this very address (localStorage) is the user's latest here and wins;
// a page with none takes the engine's.

let kept = {};
let send = null;
let pending = {};

// Each field and its longest text (SCHEMA.toEngine.remember): a device label longer
// than that is not kept, rather than making the whole message one the engine refuses.
const FIELDS = { name: 64, camera: 200, mic: 200, speaker: 200, mic_on: 0, cam_on: 0, lang: 3, view: 7 };

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
  for (const [key, longest] of Object.entries(FIELDS)) {
    const value = changes[key];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value === 'string' && value.length > longest) continue;
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
