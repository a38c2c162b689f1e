/**
 * Generation on an asynchronous backend (WebGPU on SwiftShader) enqueues step n + 1 before token
 * n is yielded. A caller that stops early leaves that extra step's K/V in the cache; the cache's
 * token list must say so, so that a continuation reusing the prefix gives the same tokens as one
 * uninterrupted generation.
 */
import '../setup/webgpu.js';
import { expect, it } from 'vitest';
import { loadFixtureModel } from '../support/goldenChecks.js';
import { testWebGpu } from '../setup/webgpu.js';

const greedy = { doSample: false, repetitionPenalty: 1, stopTokenIds: [] as number[] };

it('webgpu: a generation stopped early and continued with prefix reuse equals one uninterrupted run', async () => {
  const model = await loadFixtureModel('qwen-tiny-int4', await testWebGpu());
  expect(model.backend.asyncExecution).toBe(true);
  const prompt = [151644, 872, 198, 9707, 11, 1879, 0];
  const whole: number[] = [];
  for await (const id of model.generate(prompt, { ...greedy, maxNewTokens: 10 })) whole.push(id);
  expect(whole).toHaveLength(10);

  model.reset();
  const head: number[] = [];
  for await (const id of model.generate(prompt, { ...greedy, maxNewTokens: 10 })) {
    head.push(id);
    if (head.length === 4) break; // the fifth step is already enqueued
  }
  expect(head).toEqual(whole.slice(0, 4));
  const tail: number[] = [];
  for await (const id of model.generate([...prompt, ...head], { ...greedy, maxNewTokens: 6 })) tail.push(id);
  expect(model.lastStats?.reusedTokens).toBeGreaterThan(prompt.length);
  expect([...head, ...tail]).toEqual(whole);
  await model.dispose();
}, 300_000);
