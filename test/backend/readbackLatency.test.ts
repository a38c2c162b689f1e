// The estimate behind paced token readbacks (src/backend/webgpu/readbackLatency.ts), driven with
// synthetic timings: a wait still pending when asked measures the latency, one ready at once only
// bounds it from above.
import { describe, expect, it } from 'vitest';
import { ReadbackLatency } from '../../src/backend/webgpu/readbackLatency.js';

/** One paced wait of a step whose data is ready `latency` ms after its submit at t. */
function wait(e: ReadbackLatency, t: number, latency: number): void {
  const asked = t + Math.max(0, e.ms - 0.15); // a 'near' wait asks 0.15 ms before the estimate
  const done = Math.max(asked + 0.01, t + latency);
  e.learn(t, asked, done);
}

describe('readback latency estimate', () => {
  it('starts from two samples in a row that agree, not from a lone first one', () => {
    const e = new ReadbackLatency(() => 'near');
    e.learn(0, 0, 90); // the warm-up's step on cold kernels
    expect(e.ms).toBe(0);
    e.learn(0, 0, 35); // the first token after a prefill
    expect(e.ms).toBe(0);
    e.learn(0, 0, 6.2);
    expect(e.ms).toBe(0);
    e.learn(0, 0, 6.4);
    expect(e.ms).toBeCloseTo(6.4);
    e.learn(0, 0, 40); // a prefill's first token: more than 4× the estimate
    expect(e.ms).toBeCloseTo(6.4);
    e.learn(0, 0, 6.5);
    expect(e.ms).toBeCloseTo(6.5);
  });

  it("a 'near' estimate learnt from a cold 90 ms step comes down within a few tokens", () => {
    const e = new ReadbackLatency(() => 'near');
    e.learn(0, 0, 88);
    e.learn(0, 0, 90); // (e.g. a step that really was slow twice)
    let t = 0;
    let slept = 0;
    for (let i = 0; i < 10; i++) {
      slept += Math.max(0, e.ms - 0.15 - 2); // the time asleep past a 2 ms step
      wait(e, t, 2);
      t += 100;
    }
    expect(e.ms).toBeLessThan(2.5);
    // (shrinking by 3 % a step it would still be above 60 ms here, after ≈ 775 ms asleep)
    expect(slept).toBeLessThan(300);
  });

  it("one early-ready 'near' wait is a small step down; a pending one sets the estimate again", () => {
    const e = new ReadbackLatency(() => 'near');
    e.learn(0, 0, 6);
    e.learn(0, 0, 6);
    e.learn(0, 5.85, 5.9);
    expect(e.ms).toBeCloseTo(6 * 0.97);
    e.learn(0, 5.67, 6.1);
    expect(e.ms).toBeCloseTo(6.1);
    // the streak starts again after a pending wait
    e.learn(0, 5.95, 6.0);
    expect(e.ms).toBeCloseTo(6.1 * 0.97);
  });

  it("'early' waits shrink by a fifth when ready at once", () => {
    const e = new ReadbackLatency(() => 'early');
    e.learn(0, 0, 10);
    e.learn(0, 0, 10);
    e.learn(0, 9, 9.1);
    expect(e.ms).toBeCloseTo(8);
  });

  it('an estimate that shrank while the GPU ran dry takes real samples again after two that agree', () => {
    const e = new ReadbackLatency(() => 'near');
    e.learn(0, 0, 6);
    e.learn(0, 0, 6);
    // a GC pause: the GPU finished everything, the next waits are all ready at once
    for (let i = 0; i < 4; i++) e.learn(0, e.ms, e.ms + 0.01);
    expect(e.ms).toBeLessThan(1);
    e.learn(0, 0.5, 6.1); // far above: alone it could be a prefill's token
    expect(e.ms).toBeLessThan(1);
    e.learn(0, 0.5, 6.0);
    expect(e.ms).toBeCloseTo(6.0);
  });
});
