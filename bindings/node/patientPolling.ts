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

/**
 * The hooks, with their two settings (changeable between waits, e.g. by benchmarks). `throttleMs`
 * (> 0): before the patience runs out, Dawn's ticks are also spaced at least this far apart; the
 * turns in between are the host's own (an Immediate each, which dies young), so a short wait makes
 * ≈ throttle / 5 µs times fewer of Dawn's functions, for data seen up to `throttleMs` later.
 */
export interface PatientPolling extends GpuWaitHooks {
  patienceMs: number;
  throttleMs: number;
  /** Dawn ticks seen so far (each one a new native function from Dawn): benchmarks, tests */
  ticks: number;
}

export function patientPolling(patienceMs = 3, throttleMs = 0): PatientPolling {
  const g = globalThis as unknown as { setImmediate: SetImmediate };
  let active = 0;
  let since = 0;
  let lastTick = 0;
  let outer: SetImmediate | undefined;
  const patient: SetImmediate = (fn, ...args) => {
    if (!isDawnTick(fn)) return outer!(fn, ...args);
    hooks.ticks++;
    const now = performance.now();
    if (now - since > hooks.patienceMs) return setTimeout(fn, 1, ...args);
    if (hooks.throttleMs <= 0 || now - lastTick >= hooks.throttleMs) {
      lastTick = now;
      return outer!(fn, ...args);
    }
    const due = lastTick + hooks.throttleMs;
    const spin = () => {
      const t = performance.now();
      if (t < due) return void outer!(spin);
      lastTick = t;
      fn(...args);
    };
    return outer!(spin);
  };
  const hooks: PatientPolling = {
    patienceMs,
    throttleMs,
    ticks: 0,
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
  return hooks;
}
