/**
 * Patient polling of Dawn's pending GPU waits in Node.
 *
 * Dawn's Node binding drives a pending mapAsync / onSubmittedWorkDone by calling the global
 * setImmediate with a new native function on every event-loop turn (≈ 190 turns a ms). Each turn's
 * function outlives the young generation (it carries a weak finalizer), so a long wait fills the
 * old one: the 3.7 s wait for a 2048-token 14B prefill is ≈ 700 k turns, and the Mark-Compact
 * that collects them lands a few tokens into decode as a 20 ms pause and a 60–80 ms stall.
 *
 * While the backend waits (enter … leave) and the wait has lasted longer than `patienceMs`, Dawn's
 * turns go through a 1 ms timer instead: such a wait ends at most ≈ 1 ms later, with a
 * ≈ 200th of the garbage. Short waits (a paced decode readback: well under a ms) are untouched.
 * Only native functions without a name (Dawn's tick callbacks) are delayed; everything else the
 * host schedules meanwhile runs as asked.
 */
import type { GpuWaitHooks } from '../../src/platform.js';

type SetImmediate = (fn: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

/** Dawn's polling callbacks: native functions without a name. */
export const isDawnTick = (fn: unknown): boolean =>
  typeof fn === 'function' && fn.name === '' && Function.prototype.toString.call(fn).endsWith('{ [native code] }');

export function patientPolling(patienceMs = 3): GpuWaitHooks {
  const g = globalThis as unknown as { setImmediate: SetImmediate };
  let active = 0;
  let since = 0;
  let outer: SetImmediate | undefined;
  const patient: SetImmediate = (fn, ...args) => {
    if (performance.now() - since > patienceMs && isDawnTick(fn)) return setTimeout(fn, 1, ...args);
    return outer!(fn, ...args);
  };
  return {
    enter() {
      if (active++ > 0) return;
      since = performance.now();
      outer = g.setImmediate;
      g.setImmediate = patient;
    },
    leave() {
      if (active === 0 || --active > 0) return;
      // restore only our own wrapper (a host that replaced it meanwhile keeps its own)
      if (g.setImmediate === patient) g.setImmediate = outer!;
      outer = undefined;
    },
  };
}
