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
