/**
 * Corrupt or truncated checkpoints are refused before any tensor byte is used, and a model that
 * cannot fit is refused before the upload starts, with the numbers (memoryEstimate.ts).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodePlatform } from '../../bindings/node/index.js';
import { nodeFileSource } from '../../bindings/node/fileSource.js';
import { CheckpointError, InsufficientMemoryError } from '../../src/errors.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { openSource } from '../../src/io/open.js';
import { loadModelOn } from '../../src/load.js';
import { checkMemory, estimateMemory } from '../../src/model/memoryEstimate.js';
import type { KVCacheOptions } from '../../src/kv/cache.js';
import type { Platform } from '../../src/platform.js';
import { modelDir } from '../support/fixtures.js';

const INT4 = modelDir('qwen-tiny-int4');
const BF16 = modelDir('qwen-tiny-bf16');
const tmp = mkdtempSync(join(tmpdir(), 'qwen-rt-hardening-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of a fixture directory that the test may damage. */
function copyOf(dir: string, name: string): string {
  const out = join(tmp, name);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  for (const f of readdirSync(dir)) if (f !== 'golden') copyFileSync(join(dir, f), join(out, f));
  return out;
}

const withMemory = (bytes: number | undefined): Platform => ({ ...nodePlatform, availableMemory: () => bytes });

async function loadError(dir: string, platform: Platform = nodePlatform): Promise<{ error: unknown; progress: number }> {
  let progress = 0;
  try {
    const m = await loadModelOn(platform, dir, { backend: 'cpu', threads: 1, onProgress: () => progress++ });
    await m.dispose();
  } catch (error) {
    return { error, progress };
  }
  throw new Error('expected the load to fail');
}

function headerLength(file: string): number {
  return Number(readFileSync(file).subarray(0, 8).readBigUInt64LE(0));
}

describe('truncated and corrupt checkpoints', () => {
  it('a shard cut short by one byte is refused before any tensor is read, naming the last tensor', async () => {
    const dir = copyOf(INT4, 'cut1');
    const file = join(dir, 'model.safetensors');
    const header = JSON.parse(readFileSync(file).subarray(8, 8 + headerLength(file)).toString('utf8'));
    const last = Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .sort((a: any, b: any) => b[1].data_offsets[1] - a[1].data_offsets[1])[0][0];
    truncateSync(file, readFileSync(file).length - 1);
    const { error, progress } = await loadError(dir);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as CheckpointError).message).toContain(`"${last}"`);
    expect((error as CheckpointError).message).toMatch(/truncated/);
    expect(progress).toBe(0);
  });

  it('truncation anywhere (header, data, length prefix) is a CheckpointError before use', async () => {
    const dir = copyOf(INT4, 'cutN');
    const file = join(dir, 'model.safetensors');
    const whole = readFileSync(file);
    const n = headerLength(file);
    for (const size of [0, 3, 8, 9, 8 + Math.floor(n / 2), 8 + n, 8 + n + 1, whole.length - 4096, whole.length - 2]) {
      writeFileSync(file, whole.subarray(0, size));
      const { error, progress } = await loadError(dir);
      expect(error, `size ${size}`).toBeInstanceOf(CheckpointError);
      expect(progress, `size ${size}`).toBe(0);
    }
  });

  it('a sharded checkpoint with one truncated shard names the shard and the tensor', async () => {
    const dir = copyOf(BF16, 'shards');
    const file = join(dir, 'model.safetensors');
    const buf = readFileSync(file);
    const n = headerLength(file);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const halves = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)];
    const weightMap: Record<string, string> = {};
    halves.forEach((part, i) => {
      const shard = `model-0000${i + 1}-of-00002.safetensors`;
      const h: Record<string, unknown> = {};
      const datas: Buffer[] = [];
      let at = 0;
      for (const t of part) {
        const [b, e] = header[t].data_offsets;
        h[t] = { ...header[t], data_offsets: [at, at + (e - b)] };
        datas.push(buf.subarray(8 + n + b, 8 + n + e));
        at += e - b;
        weightMap[t] = shard;
      }
      const text = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(text.length));
      writeFileSync(join(dir, shard), Buffer.concat([len, text, ...datas]));
    });
    rmSync(file);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    // intact: loads
    const ok = await loadModelOn(nodePlatform, dir, { backend: 'cpu', threads: 1 });
    await ok.dispose();
    const second = join(dir, 'model-00002-of-00002.safetensors');
    truncateSync(second, readFileSync(second).length - 10);
    const { error, progress } = await loadError(dir);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toContain('model-00002-of-00002.safetensors');
    expect((error as CheckpointError).tensor).toBeDefined();
    expect(halves[1]).toContain((error as CheckpointError).tensor);
    expect(progress).toBe(0);
  });

  it('a file that shrinks after opening fails its read with a CheckpointError (not a short buffer)', async () => {
    const dir = copyOf(INT4, 'shrink');
    const ckpt = await openCheckpoint(nodeFileSource(dir));
    try {
      const name = ckpt.tensorNames().find((t) => t.endsWith('lm_head.weight'))!;
      const t = ckpt.tensor(name);
      truncateSync(join(dir, 'model.safetensors'), 8 + headerLength(join(dir, 'model.safetensors')));
      const err = await t.read(0, new Uint8Array(t.byteLength)).catch((e) => e);
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err.message).toMatch(/end of file/);
    } finally {
      await ckpt.close();
    }
  });
});

describe('memory estimate before loading', () => {
  const cases: Array<[string, string, number, KVCacheOptions]> = [
    ['int4, 300 tokens', INT4, 300, {}],
    ['bf16, 300 tokens', BF16, 300, {}],
    ['int4, 700 tokens, int8 KV', INT4, 700, { quant: 'int8' }],
    ['int4, window 128', INT4, 400, { window: 128, sink: 4 }],
  ];
  it.each(cases)('%s: the estimate is within 5%% of what the CPU backend then uses', async (_n, dir, tokens, kvCache) => {
    const m = await loadModelOn(nodePlatform, dir, { backend: 'cpu', threads: 1, kvCache });
    try {
      const ckpt = await openCheckpoint(await openSource(dir, nodePlatform));
      const est = estimateMemory(ckpt.config, ckpt.totalBytes, { contextTokens: tokens, kvCache });
      await ckpt.close();
      if (kvCache.window) {
        for (let i = 0; i < tokens; i += 100) await m.forward(Array.from({ length: Math.min(tokens, i + 100) }, (_, k) => 200 + k).slice(i > 0 ? -100 : 0));
      } else await m.forward(Array.from({ length: tokens }, (_, i) => 100 + ((i * 7919) % 150000)));
      const u = m.backend.memoryUsage();
      expect(est.weightBytes / u.weightBytes).toBeGreaterThan(0.95);
      expect(est.weightBytes / u.weightBytes).toBeLessThan(1.05);
      expect(est.kvBytes).toBe(u.kvBytes);
      expect(est.totalBytes / u.peakBytes).toBeGreaterThan(0.95);
      expect(est.totalBytes / u.peakBytes).toBeLessThan(1.05);
    } finally {
      await m.dispose();
    }
  });

  it('a load that cannot fit fails before the upload with the numbers', async () => {
    const ckpt = await openCheckpoint(await openSource(INT4, nodePlatform));
    const est = estimateMemory(ckpt.config, ckpt.totalBytes);
    await ckpt.close();
    const { error, progress } = await loadError(INT4, withMemory(est.totalBytes - 1));
    expect(error).toBeInstanceOf(InsufficientMemoryError);
    const e = error as InsufficientMemoryError;
    expect(e.code).toBe('E_MEMORY');
    expect(e.neededBytes).toBe(est.totalBytes);
    expect(e.availableBytes).toBe(est.totalBytes - 1);
    expect(e.message).toMatch(/weights 74 MiB.*KV cache for 256 tokens/);
    expect(progress).toBe(0);
    // exactly enough: loads
    const m = await loadModelOn(withMemory(est.totalBytes), INT4, { backend: 'cpu', threads: 1 });
    await m.dispose();
  });

  it('Qwen-14B-Int4 (synthetic) on 4 GiB is refused at once, before generating any weight', async () => {
    const t0 = performance.now();
    const { error, progress } = await loadError('synthetic:14b-int4', withMemory(4 * 2 ** 30));
    expect(error).toBeInstanceOf(InsufficientMemoryError);
    expect((error as InsufficientMemoryError).neededBytes).toBeGreaterThan(9e9);
    expect(progress).toBe(0);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it('unknown availability does not block; checkMemory alone', () => {
    const est = { weightBytes: 10, kvBytes: 5, activationBytes: 1, totalBytes: 16, contextTokens: 8 };
    expect(() => checkMemory(est, undefined, 'x')).not.toThrow();
    expect(() => checkMemory(est, 16, 'x')).not.toThrow();
    expect(() => checkMemory(est, 15, 'x')).toThrow(InsufficientMemoryError);
    expect(nodePlatform.availableMemory?.('cpu')).toBeGreaterThan(0);
    expect(nodePlatform.availableMemory?.('webgpu')).toBeUndefined();
  });
});
