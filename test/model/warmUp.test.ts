/**
 * QwenModel.warmUp (run by loadModel) runs every generation-path kernel once on a scratch cache.
 * It must leave nothing behind: the same tokens as a model that was not warmed up, the scratch
 * cache's memory returned, and on the CPU (synchronous) nothing at all.
 */
import '../setup/webgpu.js';
import { describe, expect, it } from 'vitest';
import { loadFixtureModel } from '../support/goldenChecks.js';
import { testWebGpu } from '../setup/webgpu.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import type { QwenModel } from '../../src/model/model.js';

const greedy = { doSample: false, repetitionPenalty: 1, stopTokenIds: [] as number[] };
const prompt = [151644, 872, 198, 9707, 11, 1879, 0];

async function tokens(model: QwenModel, n: number): Promise<number[]> {
  const out: number[] = [];
  for await (const id of model.generate(prompt, { ...greedy, maxNewTokens: n })) out.push(id);
  return out;
}

describe('QwenModel.warmUp', () => {
  it('on WebGPU: the same tokens as without it, and the scratch cache released', async () => {
    const cold = await loadFixtureModel('qwen-tiny-int4', await testWebGpu(), { kvCache: { quant: 'int8' } });
    const want = await tokens(cold, 80); // past 64 slots: both decode paths
    await cold.dispose();

    const warm = await loadFixtureModel('qwen-tiny-int4', await testWebGpu(), { kvCache: { quant: 'int8' } });
    const kv0 = warm.backend.memoryUsage().kvBytes;
    await warm.warmUp();
    expect(warm.backend.memoryUsage().kvBytes).toBe(kv0);
    expect(await tokens(warm, 80)).toEqual(want);
    await warm.dispose();
  }, 300_000);

  it('on the CPU: nothing runs', async () => {
    const model = await loadFixtureModel('qwen-tiny-int4', await createCpuBackend({ threads: 1 }));
    const peak = model.backend.memoryUsage().peakBytes;
    await model.warmUp();
    expect(model.backend.memoryUsage().peakBytes).toBe(peak);
    await model.dispose();
  });
});
