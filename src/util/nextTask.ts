/**
 * Resolves on a later turn of the event loop (not a microtask). A backend that computes on the
 * calling thread settles its promises at once, so without this a whole generation would run in
 * one task: no bytes reach the client, no disconnect is seen, no other request is queued or
 * refused until it ends.
 */
export function nextTask(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') return new Promise((r) => g.setImmediate!(r));
  if (typeof MessageChannel === 'function') {
    return new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        r();
      };
      ch.port2.postMessage(null);
    });
  }
  return new Promise((r) => setTimeout(r, 0));
}
