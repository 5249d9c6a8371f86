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

const FIELDS = ['name', 'camera', 'mic', 'speaker', 'mic_on', 'cam_on', 'lang', 'view'];

/** What the engine kept (hello.remembered), and how to tell it of new choices. */
export function connectRemembered(remembered, sender) {
  kept = { ...(remembered || {}) };
  send = sender;
  const changes = pending;
  pending = {};
  remember(changes);
}

/** The kept choices: {name, camera, mic, speaker (labels), mic_on, cam_on, lang, view}. */
export function remembered() {
  return kept;
}

/** Keep `changes` for next time (told to the engine once it said hello). */
export function remember(changes) {
  const choices = {};
  for (const key of FIELDS) {
    const value = changes[key];
    if (value === undefined || value === null || value === '' || kept[key] === value) continue;
    choices[key] = value;
  }
  if (!Object.keys(choices).length) return;
  if (!send || !send({ type: 'remember', choices })) {
    Object.assign(pending, choices);
    return;
  }
  Object.assign(kept, choices);
}
