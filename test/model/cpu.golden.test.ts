/**
 * Acceptance of the wasm CPU backend against the official goldens (logits, decode, chat) with 1
 * and 2 threads, and bitwise equality of 1 vs 2 threads and of several memories vs one.
 */
import { describe, expect, it } from 'vitest';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { nodePlatform } from '../../bindings/node/index.js';
import { MODELS, golden } from '../support/fixtures.js';
import { checkChat, checkDecode, checkLogits, loadFixtureModel } from '../support/goldenChecks.js';

const cpu = (threads: number, extra: { maxMemoryBytes?: number } = {}) => createCpuBackend({ threads, platform: nodePlatform, ...extra });

describe.each(MODELS)('cpu backend on %s', (m) => {
  it('logits.json within 1e-4 relative (2 threads)', async () => {
    const model = await loadFixtureModel(m, await cpu(2));
    const err = await checkLogits(model, m, { rel: 1e-4 });
    console.log(`cpu ${m} logits: max relative error ${err.toExponential(2)}`);
    await model.dispose();
  });
  it('decode.json token-identical, top-5 within 1e-4 (1 thread)', async () => {
    const model = await loadFixtureModel(m, await cpu(1));
    const err = await checkDecode(model, m, { rel: 1e-4 });
    console.log(`cpu ${m} decode: max relative error ${err.toExponential(2)}`);
    await model.dispose();
  });
  it('chat.json output ids identical, responses clean (2 threads)', async () => {
    const model = await loadFixtureModel(m, await cpu(2));
    await checkChat(model, m);
    await model.dispose();
  });
  it('1 thread, 2 threads and several small memories give bitwise identical logits', async () => {
    const ids = golden(m, 'decode').scenarios[1].prompt_ids;
    const out: Float32Array[] = [];
    for (const b of [await cpu(1), await cpu(2), await cpu(2, { maxMemoryBytes: 48 << 20 })]) {
      const model = await loadFixtureModel(m, b);
      out.push(await model.forward(ids));
      await model.dispose();
    }
    expect(Buffer.from(out[1].buffer).equals(Buffer.from(out[0].buffer))).toBe(true);
    expect(Buffer.from(out[2].buffer).equals(Buffer.from(out[0].buffer))).toBe(true);
  });
});
