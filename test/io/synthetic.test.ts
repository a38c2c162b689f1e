import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ArgumentError, CheckpointError } from '../../src/errors.js';
import { openCheckpoint, type Checkpoint } from '../../src/io/checkpoint.js';
import { bf16BitsToFloat, f16BitsToFloat } from '../../src/io/half.js';
import { openSource } from '../../src/io/open.js';
import type { FileSource, TensorSource } from '../../src/io/source.js';
import { DEFAULT_MODEL, SYNTHETIC_BLOCK, SYNTHETIC_PRESETS, parseSyntheticSpec, syntheticSource } from '../../src/io/synthetic.js';
import type { Platform } from '../../src/platform.js';
import { INT4_DIR, catchError } from './helpers.js';

const VOCAB = new Uint8Array(readFileSync(join(INT4_DIR, 'qwen.tiktoken')));
const vocab = async () => VOCAB;
const open = (spec: string, seed?: number) => openCheckpoint(syntheticSource(spec, vocab, { seed }));

const DIMS: Record<string, [number, number, number, number, number, number]> = {
  // hidden, layers, heads, intermediate, vocab, seq_length
  tiny: [128, 2, 4, 512, 151936, 32],
  small: [256, 3, 4, 1536, 151936, 48],
  '1.8b': [2048, 24, 16, 11008, 151936, 8192],
  '7b': [4096, 32, 32, 22016, 151936, 8192],
  '14b': [5120, 40, 40, 27392, 152064, 2048],
};

/** Tensor bytes of a Qwen checkpoint, computed here independently of the layout code. */
function expectedBytes(size: string, int4: boolean): number {
  const [h, layers, , inter, v] = DIMS[size];
  const m = inter / 2;
  const lins: [number, number][] = [[h, 3 * h], [h, h], [h, m], [h, m], [m, h]];
  let perLayer = 3 * h * 2 + 2 * h * 2; // c_attn bias + ln_1 + ln_2 (16-bit)
  for (const [i, o] of lins) perLayer += int4 ? (i * o) / 2 + (i / 128) * (o / 8) * 4 + (i / 128) * o * 2 + i * 4 : i * o * 2;
  return layers * perLayer + 2 * v * h * 2 + h * 2;
}

async function readAll(t: TensorSource): Promise<Uint8Array> {
  const out = new Uint8Array(t.byteLength);
  await t.read(0, out);
  return out;
}

const decoded = { F16: Float64Array.from({ length: 65536 }, (_, i) => f16BitsToFloat(i)), BF16: Float64Array.from({ length: 65536 }, (_, i) => bf16BitsToFloat(i)) };

function floats(t: TensorSource, bytes: Uint8Array): Float64Array {
  expect(t.dtype === 'F16' || t.dtype === 'BF16', t.name).toBe(true);
  const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  const table = decoded[t.dtype as 'F16' | 'BF16'];
  const out = new Float64Array(u16.length);
  for (let i = 0; i < u16.length; i++) out[i] = table[u16[i]];
  return out;
}

const stats = (x: ArrayLike<number>) => {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) { s += x[i]; s2 += x[i] * x[i]; }
  const mean = s / x.length;
  return { mean, std: Math.sqrt(s2 / x.length - mean * mean), rms: Math.sqrt(s2 / x.length) };
};

describe('synthetic specs', () => {
  it('parses presets, bare sizes and the default; rejects unknown ones listing the presets', () => {
    expect(SYNTHETIC_PRESETS).toEqual(['tiny-int4', 'tiny-bf16', 'small-int4', 'small-bf16', '1.8b-int4', '1.8b-bf16', '7b-int4', '7b-bf16', '14b-int4', '14b-bf16']);
    expect(DEFAULT_MODEL).toBe('synthetic:tiny-int4');
    expect(parseSyntheticSpec('synthetic:').preset).toBe('tiny-int4');
    expect(parseSyntheticSpec('synthetic:14b').preset).toBe('14b-int4');
    expect(parseSyntheticSpec('synthetic:7B-BF16')).toEqual({ preset: '7b-bf16', size: '7b', variant: 'bf16' });
    for (const bad of ['synthetic:72b', 'synthetic:tiny-int8', 'synthetic:-int4', 'synthetic:14b-']) {
      const e = (() => { try { parseSyntheticSpec(bad); } catch (err) { return err; } })() as ArgumentError;
      expect(e, bad).toBeInstanceOf(ArgumentError);
      expect(e.message).toContain(JSON.stringify(bad));
      expect(e.message).toContain('tiny-int4, tiny-bf16, small-int4, small-bf16, 1.8b-int4, 1.8b-bf16, 7b-int4, 7b-bf16, 14b-int4, 14b-bf16');
    }
  });

  it('openSource: synthetic locations use the bundled gzip vocabulary, others go to the platform', async () => {
    const calls: string[] = [];
    const platform: Platform = {
      name: 'node',
      openSource: async (loc) => { calls.push(loc); return { location: loc, size: async () => undefined, read: async () => {} }; },
      hardwareConcurrency: () => 1,
      readAsset: async (name) => { calls.push(`asset:${name}`); return new Uint8Array(gzipSync(VOCAB)); },
    };
    const src = await openSource('synthetic:1.8b', platform);
    expect(src.location).toBe('synthetic:1.8b-int4');
    const ck = await openCheckpoint(src);
    expect(calls).toEqual([]); // the vocabulary is only fetched when asked for
    expect(Buffer.compare(await ck.vocabulary(), VOCAB)).toBe(0);
    expect(calls).toEqual(['asset:qwen.tiktoken.gz']);
    const dir = await openSource('/some/dir', platform);
    expect(dir.location).toBe('/some/dir');
    expect(calls.at(-1)).toBe('/some/dir');
    await expect(openSource('synthetic:huge', platform)).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe('synthetic checkpoints through openCheckpoint', () => {
  for (const preset of SYNTHETIC_PRESETS) {
    it(`${preset}: header and configs validate`, async () => {
      const [size, variant] = preset.split('-');
      const ck = await open(`synthetic:${preset}`);
      const [h, layers, heads, inter, v, seq] = DIMS[size];
      expect(ck.config).toMatchObject({
        hiddenSize: h, numLayers: layers, numHeads: heads, headDim: h / heads, intermediateSize: inter, mlpWidth: inter / 2,
        vocabSize: v, seqLength: seq, rotaryBase: 10000, rotaryPct: 1, layerNormEps: 1e-6, useDynamicNtk: true, useLognAttn: true,
      });
      expect(ck.config.quantization).toEqual(variant === 'int4' ? { quantMethod: 'gptq', bits: 4, groupSize: 128, descAct: false, sym: true } : undefined);
      expect(ck.generationConfig).toMatchObject({ topP: 0.8, topK: 0, repetitionPenalty: 1.1, maxWindowSize: 6144, eosTokenId: 151643 });
      expect(ck.totalBytes).toBe(expectedBytes(size, variant === 'int4'));
      const lin = ck.linear('transformer.h.0.mlp.c_proj');
      expect([lin.kind, lin.inFeatures, lin.outFeatures]).toEqual([variant === 'int4' ? 'gptq' : 'dense', inter / 2, h]);
      const dtypes = new Set(ck.tensorNames().map((n) => ck.tensor(n).dtype));
      expect([...dtypes].sort()).toEqual(variant === 'int4' ? ['F16', 'I32'] : ['BF16']);
    });
  }
});

describe('synthetic weights', () => {
  for (const preset of ['tiny-int4', 'tiny-bf16']) {
    it(`${preset}: every tensor read in full is finite and has the documented statistics`, async () => {
      const ck = await open(`synthetic:${preset}`);
      const h = ck.config.hiddenSize;
      let seen = 0;
      for (const name of ck.tensorNames()) {
        const t = ck.tensor(name);
        const bytes = await readAll(t);
        seen += bytes.length;
        if (t.dtype === 'I32') {
          const w = new Uint32Array(bytes.buffer);
          if (name.endsWith('.qzeros')) expect(w.every((x) => x === 0x77777777), name).toBe(true);
          else if (name.endsWith('.g_idx')) expect([...w], name).toEqual(Array.from(w, (_, k) => Math.floor(k / 128)));
          else {
            const counts = new Array(16).fill(0);
            for (const x of w) for (let s = 0; s < 32; s += 4) counts[(x >>> s) & 15]++;
            const n = w.length * 8;
            for (const c of counts) expect(Math.abs(c / n - 1 / 16), name).toBeLessThan(0.01);
          }
          continue;
        }
        const x = floats(t, bytes);
        expect(x.every(Number.isFinite), `${name} finite`).toBe(true);
        const s = stats(x);
        const close = (v: number, want: number, tol: number) => expect(Math.abs(v - want), name).toBeLessThan(tol * Math.max(1, Math.abs(want)));
        if (name === 'transformer.wte.weight') { close(s.std, 1, 0.02); close(s.mean, 0, 0.01); }
        else if (name.includes('ln_')) { close(s.mean, 1, 0.03); expect(x.every((v) => v > 0.8 && v < 1.2), name).toBe(true); }
        else if (name.endsWith('.bias')) close(s.std, 0.1, 0.02);
        else if (name === 'lm_head.weight') {
          const row = 151851 * h;
          const head = stats(x.subarray(0, row));
          close(head.std * Math.sqrt(h), 8, 0.1);
          const tailMax = x.subarray(row).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          expect(tailMax, 'undecodable rows are damped').toBeLessThan((8 / Math.sqrt(h)) * Math.sqrt(3) * 0.0101);
        } else if (name.endsWith('.scales')) {
          const fanIn = ck.tensor(name.replace('.scales', '.g_idx')).shape[0];
          const unit = 1 / Math.sqrt(fanIn) / Math.sqrt(21.25);
          expect(x.every((v) => Math.abs(v) >= unit * 0.749 && Math.abs(v) <= unit * 1.251), name).toBe(true);
          const neg = x.filter((v) => v < 0).length / x.length;
          expect(neg > 0.35 && neg < 0.65, `${name} random signs`).toBe(true);
        } else if (name.endsWith('.weight')) {
          const fanIn = t.shape[1];
          close(s.std * Math.sqrt(fanIn), 1, 0.05);
        }
      }
      expect(seen).toBe(ck.totalBytes);
    });
  }
});

/** y = W x + b for a checkpoint linear (GPTQ dequantised on the fly per the fixtures' formula). */
async function linear(ck: Checkpoint, prefix: string, x: Float64Array): Promise<Float64Array> {
  const l = ck.linear(prefix);
  const inF = l.inFeatures;
  const outF = l.outFeatures;
  const y = l.bias ? floats(l.bias, await readAll(l.bias)) : new Float64Array(outF);
  if (l.kind === 'dense') {
    const w = floats(l.weight, await readAll(l.weight));
    for (let c = 0; c < outF; c++) {
      let s = 0;
      for (let k = 0, row = c * inF; k < inF; k++) s += w[row + k] * x[k];
      y[c] += s;
    }
    return y;
  }
  const q = new Uint32Array((await readAll(l.qweight)).buffer);
  const z = new Uint32Array((await readAll(l.qzeros)).buffer);
  const sc = floats(l.scales, await readAll(l.scales));
  const g = new Int32Array((await readAll(l.gIdx!)).buffer);
  const zero = new Float64Array(outF);
  for (let k = 0; k < inF; k++) {
    const gk = g[k];
    if (k === 0 || gk !== g[k - 1]) for (let c = 0; c < outF; c++) zero[c] = ((z[gk * (outF / 8) + (c >> 3)] >>> (4 * (c & 7))) & 15) + 1;
    const shift = 4 * (k & 7);
    const qrow = (k >> 3) * outF;
    const srow = gk * outF;
    const xk = x[k];
    for (let c = 0; c < outF; c++) y[c] += xk * sc[srow + c] * (((q[qrow + c] >>> shift) & 15) - zero[c]);
  }
  return y;
}

async function rmsNorm(ck: Checkpoint, name: string, x: Float64Array): Promise<Float64Array> {
  const w = floats(ck.tensor(name), await readAll(ck.tensor(name)));
  const r = 1 / Math.sqrt(stats(x).rms ** 2 + ck.config.layerNormEps);
  return x.map((v, i) => v * r * w[i]);
}

/**
 * A one-token forward (position 0: attention over a single key returns v, RoPE is the identity),
 * so activations can be followed through every layer of a synthetic model.
 */
async function oneTokenForward(ck: Checkpoint, token: number, vocabRows: number) {
  const h = ck.config.hiddenSize;
  const wte = ck.tensor('transformer.wte.weight');
  const row = new Uint8Array(h * 2);
  await wte.read(token * h * 2, row);
  let x = floats(wte, row);
  const rms: number[] = [];
  for (let i = 0; i < ck.config.numLayers; i++) {
    const p = `transformer.h.${i}.`;
    const qkv = await linear(ck, `${p}attn.c_attn`, await rmsNorm(ck, `${p}ln_1.weight`, x));
    const attn = await linear(ck, `${p}attn.c_proj`, qkv.slice(2 * h));
    x = x.map((v, j) => v + attn[j]);
    const n2 = await rmsNorm(ck, `${p}ln_2.weight`, x);
    const a = await linear(ck, `${p}mlp.w1`, n2);
    const b = await linear(ck, `${p}mlp.w2`, n2);
    const mlp = await linear(ck, `${p}mlp.c_proj`, a.map((v, j) => v * (b[j] / (1 + Math.exp(-b[j])))));
    rms.push(stats(attn).rms, stats(mlp).rms);
    x = x.map((v, j) => v + mlp[j]);
  }
  const f = await rmsNorm(ck, 'transformer.ln_f.weight', x);
  const lm = ck.tensor('lm_head.weight');
  const head = new Uint8Array(vocabRows * h * 2);
  await lm.read(0, head);
  const w = floats(lm, head);
  const logits = new Float64Array(vocabRows);
  for (let r = 0; r < vocabRows; r++) {
    let s = 0;
    for (let k = 0; k < h; k++) s += w[r * h + k] * f[k];
    logits[r] = s;
  }
  return { rms, hidden: stats(x).rms, logits: stats(logits) };
}

describe('synthetic activations stay finite and O(1) through every layer', () => {
  for (const [preset, rows, tokens] of [['tiny-int4', 151936, [0, 151644]], ['tiny-bf16', 151936, [0, 151644]], ['1.8b-int4', 8192, [9707]]] as const) {
    it(preset, async () => {
      const ck = await open(`synthetic:${preset}`);
      for (const token of tokens) {
        const r = await oneTokenForward(ck, token, rows);
        for (const v of r.rms) expect(v > 0.2 && v < 5, `${preset} block output rms ${v}`).toBe(true);
        expect(Number.isFinite(r.hidden) && r.hidden < 3 * Math.sqrt(2 * ck.config.numLayers + 1)).toBe(true);
        expect(r.logits.std > 5 && r.logits.std < 12, `logit std ${r.logits.std}`).toBe(true);
        expect(Math.abs(r.logits.mean) < 2, `logit mean ${r.logits.mean}`).toBe(true);
      }
    });
  }
});

describe('synthetic determinism and ranges', () => {
  const file = 'model.safetensors';
  const read = async (src: FileSource, offset: number, n: number, shift = 0) => {
    const buf = new Uint8Array(n + shift).subarray(shift); // shift > 0: a destination not 4-byte aligned
    await src.read(file, offset, buf);
    return buf;
  };

  it('the same range twice, from two sources, and overlapping ranges agree (14b-int4, spot reads)', async () => {
    const a = syntheticSource('synthetic:14b-int4', vocab);
    const b = syntheticSource('synthetic:14b-int4', vocab);
    const size = (await a.size(file))!;
    expect(size).toBeGreaterThan(9e9);
    let state = 12345;
    const rand = (n: number) => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n;
    const starts = [0, 3, SYNTHETIC_BLOCK - 5, size - 1000, ...Array.from({ length: 12 }, () => rand(size - 4 * SYNTHETIC_BLOCK))];
    for (const o of starts) {
      const n = Math.min(size - o, 1 + rand(3 * SYNTHETIC_BLOCK));
      const x = await read(a, o, n);
      expect(Buffer.compare(x, await read(a, o, n, 1)), `again @${o}`).toBe(0);
      expect(Buffer.compare(x, await read(b, o, n, 2)), `other source @${o}`).toBe(0);
      const k = rand(n);
      const y = await read(a, o + k, Math.min(size - o - k, 1 + rand(2 * SYNTHETIC_BLOCK)), 3);
      const overlap = Math.min(n - k, y.length);
      expect(Buffer.compare(x.subarray(k, k + overlap), y.subarray(0, overlap)), `overlap @${o}+${k}`).toBe(0);
    }
  });

  it('a range read equals the same bytes assembled from its tensors, and seeds change the weights', async () => {
    const ck = await open('synthetic:tiny-int4');
    const src = ck.source;
    const whole = await read(src, 0, (await src.size(file))!);
    const n = Number(new DataView(whole.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(whole.subarray(8, 8 + n)));
    for (const name of ck.tensorNames()) {
      const [b, e] = header[name].data_offsets;
      expect(Buffer.compare(await readAll(ck.tensor(name)), whole.subarray(8 + n + b, 8 + n + e)), name).toBe(0);
    }
    const other = await open('synthetic:tiny-int4', 7);
    const q = 'transformer.h.0.mlp.w1.qweight';
    expect(Buffer.compare(await readAll(ck.tensor(q)), await readAll(other.tensor(q)))).not.toBe(0);
  });

  it('14b: spot reads of 16-bit tensors are finite', async () => {
    const ck = await open('synthetic:14b-bf16');
    for (const name of ['transformer.wte.weight', 'lm_head.weight', 'transformer.h.39.mlp.c_proj.weight', 'transformer.h.17.attn.c_attn.bias']) {
      const t = ck.tensor(name);
      for (const frac of [0, 0.37, 0.999]) {
        const off = Math.floor((t.byteLength * frac) / 2) * 2;
        const buf = new Uint8Array(Math.min(65536, t.byteLength - off));
        await t.read(off, buf);
        expect(floats(t, buf).every(Number.isFinite), `${name}@${off}`).toBe(true);
      }
    }
    const int4 = await open('synthetic:14b-int4');
    const s = int4.tensor('transformer.h.20.mlp.c_proj.scales');
    expect(floats(s, await readAll(s)).every((v) => Number.isFinite(v) && v !== 0)).toBe(true);
  });

  it('reads past the end and unknown files are errors; sizes of absent files are undefined', async () => {
    const src = syntheticSource('synthetic:tiny-bf16', vocab);
    const size = (await src.size(file))!;
    const e = await catchError(src.read(file, size - 2, new Uint8Array(4)));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/past the end/);
    expect(await src.size('quantize_config.json')).toBeUndefined();
    expect(await src.size('model.safetensors.index.json')).toBeUndefined();
    await expect(src.read('nope.bin', 0, new Uint8Array(1))).rejects.toBeInstanceOf(CheckpointError);
    expect(await src.size('qwen.tiktoken')).toBe(VOCAB.length);
  });
});
