// Pulls VideoFrames or AudioData from a MediaStreamTrackProcessor's readable
// stream, shared by the camera/screen and microphone senders.

/**
 * Read `readable` while `current()` holds, handing each item to `onItem`.
 * An item that arrives after `current()` turned false is closed, not handed
 * over. `hold(reader)` and `release(reader)` let the owner cancel the read
 * from elsewhere; errors are reported only while the read is still current.
 */
export async function pumpTrack(readable, { current, onItem, onError, hold, release }) {
  let reader;
  try {
    reader = readable.getReader();
  } catch (err) {
    onError(err);
    return;
  }
  hold(reader);
  try {
    while (current()) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!current()) {
        value.close();
        break;
      }
      onItem(value);
    }
  } catch (err) {
    if (current()) onError(err);
  } finally {
    release(reader);
  }
}
