import { MAP_READ } from './consts.js';

/**
 * Maps `bytes` of a readback buffer for reading, on platforms where Dawn is polled from the event
 * loop (Node): there, while a map is pending, every event-loop turn polls the device and leaves an
 * N-API function with a weak finalizer behind, old-generation garbage that only a Mark-Compact
 * frees. The first token's wait through a 2048-token 14B prefill (≈ 3.7 s) was ≈ 700 k such
 * turns, and the incremental marking that followed paused decode for 15–28 ms a few tokens later
 * (H200, bench/NOTES.md, session 6). So a map still pending after `patienceMs` is cancelled
 * (unmap) and asked again after a timer sleep that grows to 8 ms, each time for one short window.
 * The cost: a long wait ends up to ≈ 9 ms late.
 */
export async function mapForRead(buf: GPUBuffer, bytes: number, patienceMs: number): Promise<void> {
  let window = patienceMs;
  let sleep = 1;
  for (;;) {
    let mapped = false;
    const map = buf.mapAsync(MAP_READ, 0, bytes).then(() => {
      mapped = true;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, window)));
    // (a failed map rejects here: lost device, destroyed buffer)
    await Promise.race([map, expired]);
    clearTimeout(timer);
    if (mapped) return;
    // cancels the pending map (its promise rejects; had it just resolved, this unmaps it and the
    // next round maps again)
    buf.unmap();
    await map.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, sleep));
    sleep = Math.min(8, 2 * sleep);
    window = 1;
  }
}
