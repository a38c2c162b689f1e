/**
 * Random aborts during prefill and decode on the tiny fixture model (CPU): every run ends in an
 * AbortError or completes, the engine stays usable, its next answer equals a fresh engine's, and
 * KV / activation memory return to their baseline. bench/soak.ts runs 1000 (`node dist/bench/soak.js aborts`).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel } from '../../bindings/node/index.js';
import { abortSoak } from '../../bench/soak.js';
import type { QwenModel } from '../../src/model/model.js';
import { modelDir } from '../support/fixtures.js';

const COUNT = Number(process.env.HARDENING_ABORTS ?? 60);
let model: QwenModel;
let fresh: QwenModel;

beforeAll(async () => {
  model = await loadModel(modelDir('qwen-tiny-int4'), { backend: 'cpu' });
  fresh = await loadModel(modelDir('qwen-tiny-int4'), { backend: 'cpu' });
});
afterAll(async () => {
  await model?.dispose();
  await fresh?.dispose();
});

it(`${COUNT} random aborts leave the engine usable, exact and at its memory baseline`, async () => {
  const r = await abortSoak(model, fresh, { count: COUNT, seed: 20261127, maxNewTokens: 8 });
  expect(r.failures).toEqual([]);
  expect(r.aborts).toBe(COUNT);
  expect(r.verified).toBe(COUNT);
  // the seed must exercise real aborts, not only runs that finished first
  expect(r.abortErrors).toBeGreaterThan(COUNT / 4);
  expect(r.kvAfter).toBe(r.kvBaseline);
  expect(r.kvBaseline).toBeGreaterThan(0);
  expect(r.activationAfter).toBe(r.activationBaseline);
});

it('an abort from another task lands between prefill chunks of a long prompt', async () => {
  const m = await loadModel(modelDir('qwen-tiny-int4'), { backend: 'cpu', prefillChunk: 16 });
  try {
    const ids = Array.from({ length: 320 }, (_, i) => 1000 + ((i * 7919) % 100000)); // 20 chunks
    const ac = new AbortController();
    const executor = m.executor;
    const prefill = executor.prefill.bind(executor);
    let chunks = 0;
    executor.prefill = (kv, chunkIds, promptLength) => {
      // a Ctrl-C / disconnect arrives as a separate task while the prefill runs
      if (chunks++ === 0) setImmediate(() => ac.abort());
      return prefill(kv, chunkIds, promptLength);
    };
    const err = await (async () => {
      for await (const _ of m.generate(ids, { maxNewTokens: 4, signal: ac.signal })) {
        /* drain */
      }
    })().catch((e) => e);
    expect(err?.name).toBe('AbortError');
    expect(chunks, 'prefill chunks run after the abort was requested').toBeLessThanOrEqual(3);
    // and the engine is intact afterwards
    executor.prefill = prefill;
    const again: number[] = [];
    for await (const id of m.generate(ids.slice(0, 40), { doSample: false, maxNewTokens: 3 })) again.push(id);
    fresh.reset();
    const want: number[] = [];
    for await (const id of fresh.generate(ids.slice(0, 40), { doSample: false, maxNewTokens: 3 })) want.push(id);
    expect(again).toEqual(want);
  } finally {
    await m.dispose();
  }
});
