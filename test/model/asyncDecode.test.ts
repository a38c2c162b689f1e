/**
 * Generation on an asynchronous backend (WebGPU on SwiftShader) enqueues step n + 1 before token
 * n is yielded — for greedy decoding even before token n reaches the host (a device token fed to
 * embedToken; with the embedding table in host memory the step's queue work waits for the row).
 * A caller that stops early, or a stop token, leaves that extra step's K/V in the cache; the
 * cache's token list must say so, so that a continuation reusing the prefix gives the same tokens
 * as one uninterrupted generation.
 */
import '../setup/webgpu.js';
import { describe, expect, it } from 'vitest';
import { loadFixtureModel } from '../support/goldenChecks.js';
import { testWebGpu } from '../setup/webgpu.js';

const greedy = { doSample: false, repetitionPenalty: 1, stopTokenIds: [] as number[] };

describe.each([
  ['on the GPU', {}],
  ['in host memory', { hostEmbeddingBytes: 0, embeddingMirror: false }],
  ['in host memory, token readbacks paced to shortly before the estimate', { hostEmbeddingBytes: 0, embeddingMirror: false, pacedReadback: true, paceMode: 'early' as const }],
  ['in host memory, token readbacks paced to near the estimate', { hostEmbeddingBytes: 0, embeddingMirror: false, pacedReadback: true, paceMode: 'near' as const }],
  // (the tiny table is 38.9 MB: whole after ≈ 10 steps, so the switch falls inside the first answers)
  ['in host memory, copied to the GPU during decode', { hostEmbeddingBytes: 0, embeddingMirror: true, embeddingMirrorSlice: 4 * 1024 * 1024, pacedReadback: true }],
])('webgpu, embedding table %s', (_, options) => {
  it('a generation stopped early and continued with prefix reuse equals one uninterrupted run', async () => {
    const model = await loadFixtureModel('qwen-tiny-int4', await testWebGpu(options));
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

    // a stop token: its step was chained before the id was known; the cache says what it holds
    model.reset();
    const stopped: number[] = [];
    for await (const id of model.generate(prompt, { ...greedy, maxNewTokens: 10, stopTokenIds: [whole[5]] })) stopped.push(id);
    expect(stopped).toEqual(whole.slice(0, whole.indexOf(whole[5]) + 1));
    const rest: number[] = [];
    for await (const id of model.generate([...prompt, ...stopped], { ...greedy, maxNewTokens: 10 - stopped.length })) rest.push(id);
    expect(model.lastStats?.reusedTokens).toBe(prompt.length + stopped.length - 1);
    expect([...stopped, ...rest]).toEqual(whole);
    // the copying case did switch to the GPU copy along the way (a copy left unfinished would
    // only have tested the host path again)
    const wte = (model as unknown as { engine: { weights: { wte: { mirror?: { rows: number }; rows: number } } } }).engine.weights.wte;
    if ('embeddingMirrorSlice' in options) expect(wte.mirror?.rows).toBe(wte.rows);
    await model.dispose();
  }, 300_000);
});
