/**
 * KV-cache behaviour through the public model API: chunked prefill = one-shot prefill, prefix reuse
 * = fresh prefill (recomputed when the NTK alpha would change), bounded streaming window, int8 K/V.
 * Runs on the reference backend (exact oracle) and on the wasm CPU backend.
 */
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { ReferenceBackend } from '../support/referenceBackend.js';
import { golden, maxRelErr } from '../support/fixtures.js';
import { loadFixtureModel } from '../support/goldenChecks.js';

const backends: Array<[string, () => Promise<Backend>]> = [
  ['reference', async () => new ReferenceBackend()],
  ['cpu', () => createCpuBackend({ threads: 1 })],
];
const m = 'qwen-tiny-int4';
const prompt40: number[] = golden(m, 'decode').scenarios[1].prompt_ids;

describe.each(backends)('KV cache on %s', (_name, make) => {
  it('chunked prefill equals one-shot prefill (alpha from the whole prompt)', async () => {
    const oneShot = await loadFixtureModel(m, await make());
    const chunked = await loadFixtureModel(m, await make(), { prefillChunk: 7 });
    const a = await oneShot.forward(prompt40);
    const b = await chunked.forward(prompt40);
    expect(maxRelErr(b, a)).toBeLessThanOrEqual(1e-4);
    await Promise.all([oneShot.dispose(), chunked.dispose()]);
  });

  it('prefix reuse equals a fresh prefill, and recomputes when the NTK alpha changes', async () => {
    const reuse = await loadFixtureModel(m, await make());
    const fresh = await loadFixtureModel(m, await make());
    // 30 → 31 tokens: alpha stays 1, the first 30 are reused
    await reuse.forward(prompt40.slice(0, 30));
    const b = await reuse.forward(prompt40.slice(0, 31));
    fresh.reset();
    const f = await fresh.forward(prompt40.slice(0, 31));
    expect(maxRelErr(b, f)).toBeLessThanOrEqual(1e-4);
    // 31 → 40 tokens: alpha 1 → 3, so the cache must be recomputed, not reused
    const c = await reuse.forward(prompt40);
    fresh.reset();
    const g = await fresh.forward(prompt40);
    expect(maxRelErr(c, g)).toBeLessThanOrEqual(1e-4);
    await Promise.all([reuse.dispose(), fresh.dispose()]);
  });

  it('a bounded streaming window generates past its size in fixed memory, exact until the first eviction', async () => {
    const window = 24;
    const bounded = await loadFixtureModel(m, await make(), { kvCache: { window, sink: 4, chunk: 8 } });
    const plain = await loadFixtureModel(m, await make());
    const prompt = prompt40.slice(0, 5);
    const opts = { doSample: false, repetitionPenalty: 1, stopTokenIds: [], maxNewTokens: 60 };
    const a: number[] = [];
    const kvBytes: number[] = [];
    for await (const id of bounded.generate(prompt, opts)) {
      a.push(id);
      kvBytes.push(bounded.backend.memoryUsage().kvBytes);
    }
    const b: number[] = [];
    for await (const id of plain.generate(prompt, opts)) b.push(id);
    expect(a).toHaveLength(60);
    // identical while everything fits in the window
    expect(a.slice(0, window - prompt.length)).toEqual(b.slice(0, window - prompt.length));
    // memory stops growing once the window is full
    expect(new Set(kvBytes.slice(window)).size).toBe(1);
    await Promise.all([bounded.dispose(), plain.dispose()]);
  });

  it('int8 K/V stays close to f32 (error reported) and keeps the greedy tokens', async () => {
    const q = await loadFixtureModel(m, await make(), { kvCache: { quant: 'int8' } });
    const f = await loadFixtureModel(m, await make());
    const sc = golden(m, 'decode').scenarios[0];
    const opts = { doSample: false, repetitionPenalty: 1, stopTokenIds: [], maxNewTokens: sc.steps };
    const ids: number[] = [];
    for await (const id of q.generate(sc.prompt_ids, opts)) ids.push(id);
    const lq = await q.forward(prompt40);
    const lf = await f.forward(prompt40);
    // error relative to the largest logit (the scale of the decision)
    let maxAbs = 0;
    let maxDiff = 0;
    for (let i = 0; i < lf.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(lf[i]));
      maxDiff = Math.max(maxDiff, Math.abs(lq[i] - lf[i]));
    }
    const err = maxDiff / maxAbs;
    const same = ids.filter((id, i) => id === sc.generated_ids[i]).length;
    console.log(`int8 KV (${_name}): max |Δlogit| ${maxDiff.toFixed(3)} = ${err.toExponential(2)} of max |logit| (vs f32 K/V); greedy tokens equal to decode.json: ${same}/${sc.steps}`);
    expect(err).toBeLessThan(0.01);
    expect(same).toBeGreaterThanOrEqual(Math.floor(sc.steps * 0.5));
    await Promise.all([q.dispose(), f.dispose()]);
  });
});
