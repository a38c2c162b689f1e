import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeFileSource } from '../../bindings/node/fileSource.js';
import { CheckpointError } from '../../src/errors.js';
import { openCheckpoint, type Checkpoint } from '../../src/io/checkpoint.js';
import type { FileSource, TensorSource } from '../../src/io/source.js';
import { BF16_DIR, INT4_DIR, catchError, manifest, memorySource, safetensorsBytes, splitSafetensors } from './helpers.js';

// every directory source is closed at the end, also when opening it failed (as load() does)
const sources: FileSource[] = [];
const tmpDirs: string[] = [];
afterAll(async () => {
  await Promise.all(sources.map((s) => s.close?.()));
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function tracked<S extends FileSource>(src: S): S {
  sources.push(src);
  return src;
}

async function openDir(dir: string, opts?: Parameters<typeof openCheckpoint>[1]): Promise<Checkpoint> {
  return openCheckpoint(tracked(nodeFileSource(dir)), opts);
}

/** Reads a whole tensor in uneven pieces (exercises offsets and piece boundaries). */
async function readAll(t: TensorSource, piece = 1_000_003): Promise<Uint8Array> {
  const out = new Uint8Array(t.byteLength);
  for (let o = 0; o < out.length; o += piece) await t.read(o, out.subarray(o, Math.min(out.length, o + piece)));
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('fixture checkpoints', () => {
  for (const [dir, name] of [[BF16_DIR, 'qwen-tiny-bf16'], [INT4_DIR, 'qwen-tiny-int4']] as const) {
    it(`${name}: opens, validates, and every tensor's bytes match the manifest sha256 and a direct read`, async () => {
      const ck = await openDir(dir);
      const file = new Uint8Array(readFileSync(join(dir, 'model.safetensors')));
      const { header, data } = splitSafetensors(file);
      const expected = manifest().models[name].tensor_sha256;
      expect(ck.tensorNames().sort()).toEqual(Object.keys(expected).sort());
      let total = 0;
      for (const n of ck.tensorNames()) {
        const t = ck.tensor(n);
        const [b, e] = header[n].data_offsets;
        expect(t.dtype).toBe(header[n].dtype);
        expect(t.shape).toEqual(header[n].shape);
        const bytes = await readAll(t);
        expect(sha(bytes), n).toBe(expected[n]);
        expect(Buffer.compare(bytes, data.subarray(b, e)), n).toBe(0);
        total += e - b;
      }
      expect(ck.totalBytes).toBe(total);
      expect(ck.has('lm_head.weight')).toBe(true);
      expect(ck.has('nope')).toBe(false);
      expect(() => ck.tensor('nope')).toThrow(CheckpointError);
      expect(Buffer.compare(await ck.vocabulary(), readFileSync(join(dir, 'qwen.tiktoken')))).toBe(0);
      expect(ck.generationConfig).toEqual({
        eosTokenId: 151643, padTokenId: 151643, maxWindowSize: 6144, maxNewTokens: 512, doSample: true,
        topK: 0, topP: 0.8, temperature: 1.0, repetitionPenalty: 1.1, chatFormat: 'chatml',
      });
    });
  }

  it('qwen-tiny-bf16: config and dense linears', async () => {
    const ck = await openDir(BF16_DIR);
    expect(ck.config).toEqual({
      hiddenSize: 64, numLayers: 2, numHeads: 4, headDim: 16, intermediateSize: 256, mlpWidth: 128, vocabSize: 151936,
      seqLength: 32, rotaryBase: 10000, rotaryPct: 1, layerNormEps: 1e-6, useDynamicNtk: true, useLognAttn: true,
    });
    const l = ck.linear('transformer.h.1.attn.c_attn');
    expect(l.kind).toBe('dense');
    if (l.kind !== 'dense') return;
    expect([l.inFeatures, l.outFeatures]).toEqual([64, 192]);
    expect(l.weight.name).toBe('transformer.h.1.attn.c_attn.weight');
    expect(l.bias?.name).toBe('transformer.h.1.attn.c_attn.bias');
    const w2 = ck.linear('transformer.h.0.mlp.c_proj');
    expect([w2.inFeatures, w2.outFeatures, w2.bias]).toEqual([128, 64, undefined]);
    expect(() => ck.linear('transformer.h.9.mlp.w1')).toThrow(/transformer\.h\.9\.mlp\.w1\.weight/);
  });

  it('qwen-tiny-int4: quantization config and GPTQ linears', async () => {
    const ck = await openDir(INT4_DIR);
    expect(ck.config.quantization).toEqual({ quantMethod: 'gptq', bits: 4, groupSize: 128, descAct: false, sym: true });
    expect(ck.config.mlpWidth).toBe(256);
    const l = ck.linear('transformer.h.0.mlp.c_proj');
    expect(l.kind).toBe('gptq');
    if (l.kind !== 'gptq') return;
    expect([l.inFeatures, l.outFeatures, l.bits, l.groupSize]).toEqual([256, 128, 4, 128]);
    expect([l.qweight.shape, l.qzeros.shape, l.scales.shape, l.gIdx?.shape]).toEqual([[32, 128], [2, 16], [2, 128], [256]]);
    expect(l.bias).toBeUndefined();
    const c = ck.linear('transformer.h.1.attn.c_attn');
    expect([c.inFeatures, c.outFeatures, c.bias?.dtype]).toEqual([128, 384, 'F16']);
    // Format facts the backends rely on: qzeros words are 0x77777777, g_idx = k / 128.
    if (c.kind !== 'gptq') return;
    const z = new Uint32Array((await readAll(c.qzeros)).buffer);
    expect([...z].every((w) => w === 0x77777777)).toBe(true);
    const g = new Int32Array((await readAll(l.gIdx!)).buffer);
    expect([...g]).toEqual(Array.from({ length: 256 }, (_, k) => Math.floor(k / 128)));
  });

  it('progress counts tensor bytes read through the sources up to totalBytes', async () => {
    const seen: number[] = [];
    const ck = await openDir(INT4_DIR, { onProgress: (p) => { seen.push(p.bytesDone); expect(p.bytesTotal).toBe(ck.totalBytes); } });
    expect(seen).toEqual([]); // opening reads headers only
    for (const n of ck.tensorNames()) await readAll(ck.tensor(n), 4_000_000);
    expect(seen.at(-1)).toBe(ck.totalBytes);
    expect(seen.every((v, i) => i === 0 || v > seen[i - 1])).toBe(true);
    expect(seen.length).toBeGreaterThan(ck.tensorNames().length); // lm_head/wte came in several pieces
  });
});

/** Writes the int4 fixture as two shards + index into a temp dir; `edit` may change the pieces. */
function writeSharded(edit?: (parts: { shards: Record<string, Record<string, any>>; map: Record<string, string> }) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'qwen-rt-shards-'));
  tmpDirs.push(dir);
  for (const f of ['config.json', 'generation_config.json', 'quantize_config.json', 'qwen.tiktoken']) copyFileSync(join(INT4_DIR, f), join(dir, f));
  const { header, data } = splitSafetensors(new Uint8Array(readFileSync(join(INT4_DIR, 'model.safetensors'))));
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const half = Math.ceil(names.length / 2);
  const shardNames = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const parts = { shards: {} as Record<string, Record<string, any>>, map: {} as Record<string, string> };
  names.forEach((n, i) => {
    const s = shardNames[i < half ? 0 : 1];
    (parts.shards[s] ??= {})[n] = header[n];
    parts.map[n] = s;
  });
  edit?.(parts);
  for (const [s, entries] of Object.entries(parts.shards)) {
    // Re-pack the shard's tensors contiguously (new offsets), copying their bytes.
    const chunks: Uint8Array[] = [];
    const h: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let at = 0;
    for (const [n, e] of Object.entries(entries)) {
      const bytes = data.subarray(e.data_offsets[0], e.data_offsets[1]);
      h[n] = { dtype: e.dtype, shape: e.shape, data_offsets: [at, at + bytes.length] };
      chunks.push(bytes);
      at += bytes.length;
    }
    const body = new Uint8Array(at);
    let o = 0;
    for (const c of chunks) { body.set(c, o); o += c.length; }
    writeFileSync(join(dir, s), safetensorsBytes(h, body));
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: parts.map }));
  return dir;
}

describe('sharded checkpoints', () => {
  it('opens a 2-shard copy of the int4 fixture and reads identical bytes', async () => {
    const dir = writeSharded();
    const sharded = await openDir(dir);
    const single = await openDir(INT4_DIR);
    expect(sharded.tensorNames().sort()).toEqual(single.tensorNames().sort());
    expect(sharded.totalBytes).toBe(single.totalBytes);
    expect(sharded.config).toEqual(single.config);
    for (const n of single.tensorNames()) {
      const a = await readAll(sharded.tensor(n));
      const b = await readAll(single.tensor(n));
      expect(Buffer.compare(a, b), n).toBe(0);
    }
  });

  it('missing shard → CheckpointError naming the shard', async () => {
    const dir = writeSharded();
    unlinkSync(join(dir, 'model-00002-of-00002.safetensors'));
    const e = await catchError(openDir(dir));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/model-00002-of-00002\.safetensors: shard listed in model\.safetensors\.index\.json is missing/);
  });

  it('tensor in the map but not in its shard, a tensor in two shards, a wrong mapping: all reported', async () => {
    const dir = writeSharded(({ shards, map }) => {
      map['transformer.h.7.mlp.w1.qweight'] = 'model-00001-of-00002.safetensors';
      const [s1, s2] = Object.keys(shards);
      const dup = Object.keys(shards[s1])[0];
      shards[s2][dup] = shards[s1][dup];
      const moved = Object.keys(shards[s1])[1];
      map[moved] = s2;
    });
    const e = await catchError(openDir(dir));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.problems).toHaveLength(3);
    expect(e.message).toMatch(/tensor "transformer\.h\.7\.mlp\.w1\.qweight" listed in model\.safetensors\.index\.json is not in the shard/);
    expect(e.message).toMatch(/is stored in two shards: model-00001-of-00002\.safetensors and model-00002-of-00002\.safetensors/);
    expect(e.message).toMatch(/maps it to model-00002-of-00002\.safetensors but it is stored in model-00001-of-00002\.safetensors/);
  });

  it('rejects shard names escaping the checkpoint and a missing weight_map', async () => {
    const dir = writeSharded(({ map }) => { map['lm_head.weight'] = '../model.safetensors'; });
    const e = await catchError(openDir(dir));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/weight_map\["lm_head\.weight"\] must be a shard file name inside the checkpoint/);
    const src = tracked(memorySource({ 'model.safetensors.index.json': '{"metadata":{}}' }, nodeFileSource(INT4_DIR)));
    await expect(openCheckpoint(src)).rejects.toThrow(/"weight_map" must be an object/);
  });
});

/** The bf16 fixture with a rewritten header (same data area). */
function editedBf16(edit: (h: Record<string, any>) => void): FileSource {
  const { header, data } = splitSafetensors(new Uint8Array(readFileSync(join(BF16_DIR, 'model.safetensors'))));
  edit(header);
  return tracked(memorySource({ 'model.safetensors': safetensorsBytes(header, data) }, nodeFileSource(BF16_DIR), 'edited-bf16'));
}

describe('checkpoint validation against config.json', () => {
  it('reports every missing tensor, wrong shape and wrong dtype at once', async () => {
    const src = editedBf16((h) => {
      delete h['transformer.h.1.mlp.w2.weight'];
      delete h['lm_head.weight'];
      h['transformer.h.0.ln_1.weight'].shape = [8, 8];
      h['transformer.h.0.attn.c_proj.weight'].shape = [32, 128];
      h['transformer.h.1.ln_2.weight'].dtype = 'I16';
    });
    const e = await catchError(openCheckpoint(src));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.problems).toHaveLength(5);
    expect(e.message).toMatch(/5 problems/);
    expect(e.message).toMatch(/missing tensor "transformer\.h\.1\.mlp\.w2\.weight" \[128, 64\]/);
    expect(e.message).toMatch(/missing tensor "lm_head\.weight" \[151936, 64\]/);
    expect(e.message).toMatch(/model\.safetensors: tensor "transformer\.h\.0\.ln_1\.weight" has shape \[8, 8\], expected \[64\]/);
    expect(e.message).toMatch(/tensor "transformer\.h\.0\.attn\.c_proj\.weight" has shape \[32, 128\], expected \[64, 64\]/);
    expect(e.message).toMatch(/tensor "transformer\.h\.1\.ln_2\.weight" has dtype I16, expected F32 or F16 or BF16/);
    expect(e.tensor).toBeDefined();
  });

  it('explains a quantization mismatch between config and weights', async () => {
    const src = tracked(memorySource({ 'config.json': readFileSync(join(BF16_DIR, 'config.json')), 'quantize_config.json': readFileSync(join(INT4_DIR, 'quantize_config.json')) }, nodeFileSource(BF16_DIR)));
    const e = await catchError(openCheckpoint(src));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/missing tensor "transformer\.h\.0\.attn\.c_attn\.qweight".*not GPTQ-packed/);
  });

  it('missing config.json, missing weights', async () => {
    const noConfig = memorySource({}, { location: 'x', size: async (n) => (n === 'config.json' ? undefined : 1), read: async () => {} });
    await expect(openCheckpoint(noConfig)).rejects.toThrow(/missing config\.json/);
    const noWeights = memorySource({ 'config.json': readFileSync(join(BF16_DIR, 'config.json')) });
    const e = await catchError(openCheckpoint(noWeights));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/no model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('header problems surface as CheckpointError naming the file and tensor', async () => {
    const src = editedBf16((h) => { h['transformer.wte.weight'].data_offsets[1] += 2; });
    const e = await catchError(openCheckpoint(src));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.file).toBe('model.safetensors');
    expect(e.tensor).toBe('transformer.wte.weight');
  });
});
