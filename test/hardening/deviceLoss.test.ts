/**
 * Device loss, simulated with device.destroy() on the WebGPU backend (SwiftShader in CI): the
 * request in flight fails with a DeviceLostError (no crash, no hang), or with a CPU fallback (what
 * backend 'auto' wires on a GPU) it continues on the CPU — exactly the CPU's continuation of the
 * tokens already produced — and the engine keeps answering like a fresh CPU engine.
 */
import '../setup/webgpu.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodePlatform } from '../../bindings/node/index.js';
import { nodeFileSource } from '../../bindings/node/fileSource.js';
import type { Backend } from '../../src/backend/backend.js';
import { createBackend } from '../../src/backend/select.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';
import { DeviceLostError, QwenRtError } from '../../src/errors.js';
import type { GenerationOptions } from '../../src/generate/options.js';
import { openCheckpoint, type Checkpoint } from '../../src/io/checkpoint.js';
import { QwenModel } from '../../src/model/model.js';
import { uploadWeights } from '../../src/model/weights.js';
import { QwenTokenizer } from '../../src/tokenizer/index.js';
import { modelDir } from '../support/fixtures.js';
import { testWebGpu } from '../setup/webgpu.js';

const TIMEOUT = 300_000;
const IDS = [9707, 11, 1879, 0, 220, 40, 1079];
const N = 6;
const greedy = (maxNewTokens: number): GenerationOptions => ({ doSample: false, repetitionPenalty: 1, stopTokenIds: [], maxNewTokens });

let ckpt: Checkpoint;
let tokenizer: QwenTokenizer;
let cpu: QwenModel;

async function engine(backend: Backend, opts: ConstructorParameters<typeof QwenModel>[4] = {}): Promise<QwenModel> {
  return new QwenModel(backend, tokenizer, ckpt, await uploadWeights(backend, ckpt), opts);
}
const cpuFallback = async () => {
  const backend = await createBackend(nodePlatform, 'cpu', { threads: 1 });
  return { backend, weights: await uploadWeights(backend, ckpt) };
};

async function collect(g: AsyncGenerator<number>, onToken?: (k: number) => void): Promise<{ ids: number[]; error?: unknown }> {
  const ids: number[] = [];
  try {
    for await (const id of g) {
      ids.push(id);
      onToken?.(ids.length);
    }
    return { ids };
  } catch (error) {
    return { ids, error };
  }
}

/** Resolves within `ms` or fails the test: a lost device must never hang a call. */
function within<T>(p: Promise<T>, ms = 60_000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`hang: no result after ${ms} ms`)), ms))]);
}

beforeAll(async () => {
  ckpt = await openCheckpoint(nodeFileSource(modelDir('qwen-tiny-int4')));
  tokenizer = QwenTokenizer.fromTiktoken(await ckpt.vocabulary());
  cpu = await engine(await createBackend(nodePlatform, 'cpu', { threads: 1 }));
}, TIMEOUT);
afterAll(async () => {
  await cpu?.dispose();
  await ckpt?.close();
});

/** The CPU engine's greedy continuation of `ids`, from an empty cache. */
async function cpuAnswer(ids: number[], n: number): Promise<number[]> {
  cpu.reset();
  return (await collect(cpu.generate(ids, greedy(n)))).ids;
}

describe('device loss', () => {
  it('without a fallback: the request in flight fails with DeviceLostError, later calls too, dispose works', async () => {
    const gpu = (await testWebGpu()) as WebGpuBackend;
    const model = await engine(gpu);
    const r = await within(collect(model.generate(IDS, greedy(N)), (k) => k === 2 && gpu.device.destroy()));
    expect(r.error, String(r.error)).toBeInstanceOf(DeviceLostError);
    expect((r.error as QwenRtError).code).toBe('E_DEVICE_LOST');
    expect(r.ids.length).toBe(2);
    // the engine refuses cleanly from now on (typed, no hang)
    const again = await within(model.forward(IDS).catch((e) => e));
    expect(again).toBeInstanceOf(DeviceLostError);
    const chat = await within(model.chat('hi', { maxNewTokens: 2 }).catch((e) => e));
    expect(chat).toBeInstanceOf(DeviceLostError);
    await within(model.dispose());
  }, TIMEOUT);

  it('with a CPU fallback: the request continues on the CPU, equal to the CPU continuation; the engine stays exact', async () => {
    const gpu = (await testWebGpu()) as WebGpuBackend;
    const failovers: unknown[] = [];
    const model = await engine(gpu, { fallback: cpuFallback, onFailover: (e) => failovers.push(e) });
    const K = 2;
    const r = await within(collect(model.generate(IDS, greedy(N)), (k) => k === K && gpu.device.destroy()));
    expect(r.error, String(r.error)).toBeUndefined();
    expect(failovers.length).toBe(1);
    expect(failovers[0]).toBeInstanceOf(DeviceLostError);
    expect(model.backend.kind).toBe('cpu');
    expect(r.ids.length).toBe(N);
    // the first K came from the GPU; the rest is the CPU's greedy continuation of prompt + those K
    expect(r.ids.slice(K)).toEqual(await cpuAnswer([...IDS, ...r.ids.slice(0, K)], N - K));
    // later calls: exactly a fresh CPU engine
    expect((await collect(model.generate(IDS, greedy(N)))).ids).toEqual(await cpuAnswer(IDS, N));
    const chat = await model.chat('Hello!', { doSample: false, maxNewTokens: 4 });
    cpu.reset();
    expect(chat).toEqual(await cpu.chat('Hello!', { doSample: false, maxNewTokens: 4 }));
    await model.dispose();
  }, TIMEOUT);

  it.each([
    ['setImmediate', 1],
    ['setTimeout', 3],
  ] as const)('with a CPU fallback: a device lost while a readback is pending (%s after token %i) fails over too', async (how, K) => {
    const gpu = (await testWebGpu()) as WebGpuBackend;
    const failovers: unknown[] = [];
    const model = await engine(gpu, { fallback: cpuFallback, onFailover: (e) => failovers.push(e) });
    const later = (f: () => void) => (how === 'setImmediate' ? setImmediate(f) : setTimeout(f, 0));
    const r = await within(collect(model.generate(IDS, greedy(N)), (k) => k === K && later(() => gpu.device.destroy())));
    expect(r.error, String(r.error)).toBeUndefined();
    expect(failovers.length).toBe(1);
    expect(r.ids.length).toBe(N);
    // wherever the loss landed, the tokens after the last GPU one are the CPU's continuation
    let ok = false;
    for (let j: number = K; j <= N && !ok; j++) {
      const tail = j === N ? [] : await cpuAnswer([...IDS, ...r.ids.slice(0, j)], N - j);
      ok = JSON.stringify(tail) === JSON.stringify(r.ids.slice(j));
    }
    expect(ok, `no split point makes ${r.ids} a GPU prefix + the CPU continuation`).toBe(true);
    await model.dispose();
  }, TIMEOUT);

  it('a device lost during the weight upload fails the load with DeviceLostError (no crash, no hang)', async () => {
    const gpu = (await testWebGpu()) as WebGpuBackend;
    const src = await openCheckpoint(nodeFileSource(modelDir('qwen-tiny-int4')), {
      onProgress: (p) => {
        if (p.bytesDone > p.bytesTotal / 3) gpu.device.destroy();
      },
    });
    try {
      const err = await within(uploadWeights(gpu, src).then(() => undefined, (e) => e));
      expect(err, String(err)).toBeInstanceOf(DeviceLostError);
      await within(gpu.dispose());
    } finally {
      await src.close();
    }
  }, TIMEOUT);

  it('with a CPU fallback: a device lost before the prefill moves that request to the CPU', async () => {
    const gpu = (await testWebGpu()) as WebGpuBackend;
    const failovers: unknown[] = [];
    const model = await engine(gpu, { fallback: cpuFallback, onFailover: (e) => failovers.push(e) });
    gpu.device.destroy();
    const r = await within(collect(model.generate(IDS, greedy(N))));
    expect(r.error, String(r.error)).toBeUndefined();
    expect(failovers.length).toBe(1);
    expect(r.ids).toEqual(await cpuAnswer(IDS, N));
    await model.dispose();
  }, TIMEOUT);
});
