// Keyboard shortcuts in the meeting (the table in app.js, listed by the ? key);
// Escape closes the invitation popover or the side panel. Never while typing.

/**
 * dialogOpen(): a modal dialog handles its own keys; onEscape(); inMeeting(): the
 * shortcuts apply; actions: {key: () => void}.
 */
export function bindKeys({ dialogOpen, onEscape, inMeeting, actions }) {
  document.addEventListener('keydown', (ev) => {
    if (dialogOpen()) return;
    if (ev.key === 'Escape') {
      onEscape();
      return;
    }
    if (!inMeeting() || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    if (target && target.closest('input, textarea, select, [contenteditable]')) return;
    const action = actions[ev.key.toLowerCase()];
    if (!action) return;
    action();
    ev.preventDefault();
  });
}
