/**
 * A Qwen (v1) checkpoint (directory or `synthetic:<preset>`) → GGUF for llama.cpp's "qwen"
 * architecture, with the same weights, so llama.cpp-based peers run identical models.
 *
 * Mapping (what llama.cpp's loader for LLM_ARCH_QWEN expects; ggml shapes are torch shapes reversed):
 *   transformer.wte → token_embd (F16)          transformer.ln_f → output_norm (F32)
 *   lm_head → output (F16)                      h.i.ln_1 / ln_2 → blk.i.attn_norm / ffn_norm (F32)
 *   h.i.attn.c_attn → blk.i.attn_qkv (+ bias, F32)   h.i.attn.c_proj → blk.i.attn_output
 *   h.i.mlp.w2 → blk.i.ffn_gate (SiLU side)     h.i.mlp.w1 → blk.i.ffn_up     h.i.mlp.c_proj → blk.i.ffn_down
 * `qwen.feed_forward_length` is config.intermediate_size (llama.cpp halves it, as Qwen does).
 *
 * Linears: GPTQ int4 → Q4_0. Q4_0 is blocks of 32 input rows with one f16 scale d and
 * w = d·(q − 8), q ∈ 0..15; GPTQ g128 sym is groups of 128 rows with an f16 scale per (group,
 * column) and w = s·(q − (z + 1)) with z + 1 = 8. A Q4_0 block (32 rows) lies inside one GPTQ group
 * (128 rows), so with d = s and the same nibbles it is the *same* weight, bit for bit: the
 * conversion is lossless for sym, non-desc_act checkpoints (all of Qwen's GPTQ releases and every
 * synthetic preset). The file is larger: Q4_0 spends 4.5 bits per weight (an f16 per 32) vs
 * ≈ 4.16 for GPTQ g128 (f16 scale + 4-bit zero per 128), so llama.cpp reads ≈ 8 % more bytes per
 * token for the linears. Blocks that mix groups (desc_act) or have another zero are requantised with
 * llama.cpp's Q4_0 rule (d = max/−8 of the block) and counted as lossy.
 * Dense (bf16) linears are written as F16.
 *
 * Tokenizer: "gpt2" BPE over the tiktoken ranks (tokens as GPT-2 byte-to-unicode strings, merges
 * recovered by running BPE on each token restricted to lower ranks), pre-tokenizer "qwen2";
 * <|endoftext|> is bos/eos/unk; the special tokens are CONTROL; ids the vocabulary lacks are
 * [PAD<id>] (UNUSED).
 *
 * Not representable in GGUF "qwen": dynamic NTK and LogN scaling (llama.cpp applies neither), so
 * outputs match only while the context stays within config.seq_length.
 */
import type { Checkpoint } from '../../src/io/checkpoint.js';
import { readWhole, type TensorSource } from '../../src/io/source.js';
import { bf16BitsToFloat, f16BitsToFloat, floatToF16Bits } from '../../src/io/half.js';
import { GGML_TYPE, ggmlRowBytes, writeGguf, type GgufTensor, type GgufValue } from './writer.js';

async function readAll(t: TensorSource): Promise<Uint8Array> {
  const out = new Uint8Array(t.byteLength);
  const step = 64 << 20;
  for (let o = 0; o < out.length; o += step) await t.read(o, out.subarray(o, Math.min(out.length, o + step)));
  return out;
}
const i32 = (b: Uint8Array) => new Int32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
const u16 = (b: Uint8Array) => new Uint16Array(b.buffer, b.byteOffset, b.byteLength >>> 1);

export interface Q4Stats { blocks: number; lossyBlocks: number }

/**
 * GPTQ int4 (qweight I32 [K/8, N], scales F16 [G, N], qzeros I32 [G, N/8], gIdx I32 [K] or
 * absent) → Q4_0 rows: N rows of K/32 blocks (f16 d, then 16 bytes: low nibbles rows 0..15 of the
 * block, high nibbles rows 16..31).
 */
export function gptqToQ4_0(K: number, N: number, qweight: Int32Array, scales: Uint16Array, qzeros: Int32Array, gIdx: Int32Array | undefined, groupSize: number, stats: Q4Stats): Uint8Array {
  const nb = K / 32;
  const out = new Uint8Array(N * nb * 18);
  const dv = new DataView(out.buffer);
  const group = (k: number) => (gIdx ? gIdx[k] : Math.floor(k / groupSize));
  const zero = (g: number, n: number) => ((qzeros[g * (N >> 3) + (n >> 3)] >>> (4 * (n & 7))) & 15) + 1;
  const q = new Uint8Array(32);
  const v = new Float32Array(32);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nb; b++) {
      const k0 = b * 32;
      const g0 = group(k0);
      let same = zero(g0, n) === 8;
      for (let j = 0; j < 32 && same; j++) same = group(k0 + j) === g0;
      for (let j = 0; j < 32; j++) {
        const k = k0 + j;
        q[j] = (qweight[(k >> 3) * N + n] >>> (4 * (k & 7))) & 15;
      }
      const at = (n * nb + b) * 18;
      stats.blocks++;
      if (same) {
        dv.setUint16(at, scales[g0 * N + n], true);
      } else {
        // llama.cpp's quantize_row_q4_0 rule on the dequantised values
        stats.lossyBlocks++;
        let amax = 0;
        let max = 0;
        for (let j = 0; j < 32; j++) {
          const g = group(k0 + j);
          v[j] = f16BitsToFloat(scales[g * N + n]) * (q[j] - zero(g, n));
          if (Math.abs(v[j]) > amax) { amax = Math.abs(v[j]); max = v[j]; }
        }
        const d = max / -8;
        const id = d ? 1 / d : 0;
        for (let j = 0; j < 32; j++) q[j] = Math.min(15, Math.trunc(v[j] * id + 8.5));
        dv.setUint16(at, floatToF16Bits(d), true);
      }
      for (let j = 0; j < 16; j++) out[at + 2 + j] = q[j] | (q[j + 16] << 4);
    }
  }
  return out;
}

/** Torch [rows, cols] F16/BF16/F32 → F16 bytes (same order). */
function toF16(src: Uint8Array, dtype: string): Uint8Array {
  if (dtype === 'F16') return src;
  const n = dtype === 'F32' ? src.length / 4 : src.length / 2;
  const out = new Uint16Array(n);
  if (dtype === 'BF16') { const s = u16(src); for (let i = 0; i < n; i++) out[i] = floatToF16Bits(bf16BitsToFloat(s[i])); }
  else if (dtype === 'F32') { const s = new Float32Array(src.buffer, src.byteOffset, n); for (let i = 0; i < n; i++) out[i] = floatToF16Bits(s[i]); }
  else throw new Error(`cannot convert ${dtype} to F16`);
  return new Uint8Array(out.buffer);
}

function toF32(src: Uint8Array, dtype: string): Uint8Array {
  if (dtype === 'F32') return src;
  const s = u16(src);
  const out = new Float32Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = dtype === 'BF16' ? bf16BitsToFloat(s[i]) : f16BitsToFloat(s[i]);
  return new Uint8Array(out.buffer);
}

// ---- tokenizer: tiktoken ranks → GPT-2 style BPE vocabulary with merges ----

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100… in order. */
function byteEncoder(): string[] {
  const enc: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    enc[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return enc;
}

/** BPE of `token` (latin1 string of bytes) using only merges of rank < maxRank. */
function bpe(ranks: Map<string, number>, token: string, maxRank: number): string[] {
  let parts = Array.from(token);
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(parts[i] + parts[i + 1]);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0 || bestRank >= maxRank) break;
    parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
  }
  return parts;
}

export interface GgufVocab { tokens: string[]; types: Int32Array; merges: string[]; eos: number }

export function qwenVocab(tiktoken: Uint8Array, vocabSize: number): GgufVocab {
  const ranks = new Map<string, number>();
  const byRank: string[] = [];
  for (const line of new TextDecoder().decode(tiktoken).split('\n')) {
    if (!line) continue;
    const [b64, r] = line.split(' ');
    const s = Buffer.from(b64, 'base64').toString('latin1');
    ranks.set(s, Number(r));
    byRank[Number(r)] = s;
  }
  const enc = byteEncoder();
  const show = (s: string) => Array.from(s, (c) => enc[c.charCodeAt(0)]).join('');
  const special = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', ...Array.from({ length: 205 }, (_, i) => `<|extra_${i}|>`)];
  const eos = byRank.length;
  const tokens: string[] = [];
  const types = new Int32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    if (id < byRank.length) { tokens.push(show(byRank[id])); types[id] = 1; } // NORMAL
    else if (id - byRank.length < special.length) { tokens.push(special[id - byRank.length]); types[id] = 3; } // CONTROL
    else { tokens.push(`[PAD${id}]`); types[id] = 5; } // UNUSED
  }
  const merges: string[] = [];
  for (let r = 0; r < byRank.length; r++) {
    const s = byRank[r];
    if (s.length < 2) continue;
    const p = bpe(ranks, s, r);
    if (p.length !== 2) throw new Error(`tiktoken rank ${r}: BPE gives ${p.length} parts, not 2`);
    merges.push(`${show(p[0])} ${show(p[1])}`);
  }
  return { tokens, types, merges, eos };
}

// ---- the whole checkpoint ----

export interface QwenGgufResult { bytes: number; q4: Q4Stats; tensors: number }

export async function writeQwenGguf(ck: Checkpoint, path: string, name: string, onProgress?: (msg: string) => void): Promise<QwenGgufResult> {
  const c = ck.config;
  const cfgJson = JSON.parse(new TextDecoder().decode(await readWhole(ck.source, 'config.json')));
  const vocab = qwenVocab(await ck.vocabulary(), c.vocabSize);
  const int4 = !!c.quantization;
  const kv: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'qwen' }],
    ['general.name', { type: 'string', value: name }],
    ['general.file_type', { type: 'u32', value: int4 ? 2 : 1 }], // MOSTLY_Q4_0 / MOSTLY_F16
    ['qwen.context_length', { type: 'u32', value: Number(cfgJson.max_position_embeddings ?? c.seqLength) }],
    ['qwen.block_count', { type: 'u32', value: c.numLayers }],
    ['qwen.embedding_length', { type: 'u32', value: c.hiddenSize }],
    ['qwen.feed_forward_length', { type: 'u32', value: c.intermediateSize }],
    ['qwen.rope.freq_base', { type: 'f32', value: c.rotaryBase }],
    ['qwen.rope.dimension_count', { type: 'u32', value: Math.round(c.headDim * c.rotaryPct) }],
    ['qwen.attention.head_count', { type: 'u32', value: c.numHeads }],
    ['qwen.attention.layer_norm_rms_epsilon', { type: 'f32', value: c.layerNormEps }],
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'qwen2' }],
    ['tokenizer.ggml.tokens', { type: 'string[]', value: vocab.tokens }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: vocab.types }],
    ['tokenizer.ggml.merges', { type: 'string[]', value: vocab.merges }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: vocab.eos }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: vocab.eos }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: vocab.eos }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
  ];
  const q4: Q4Stats = { blocks: 0, lossyBlocks: 0 };
  const tensors: GgufTensor[] = [];
  const vec = (gname: string, src: string) => {
    const t = ck.tensor(src);
    tensors.push({ name: gname, ne: [t.shape[0]], type: GGML_TYPE.F32, byteLength: t.shape[0] * 4, data: async () => toF32(await readAll(t), t.dtype) });
  };
  const mat16 = (gname: string, src: string) => {
    const t = ck.tensor(src);
    const [rows, cols] = t.shape;
    tensors.push({ name: gname, ne: [cols, rows], type: GGML_TYPE.F16, byteLength: rows * cols * 2, data: async () => toF16(await readAll(t), t.dtype) });
  };
  const linear = (gname: string, prefix: string) => {
    const l = ck.linear(prefix);
    const K = l.inFeatures;
    const N = l.outFeatures;
    if (l.kind === 'dense') {
      tensors.push({ name: `${gname}.weight`, ne: [K, N], type: GGML_TYPE.F16, byteLength: K * N * 2, data: async () => toF16(await readAll(l.weight), l.weight.dtype) });
    } else {
      tensors.push({
        name: `${gname}.weight`, ne: [K, N], type: GGML_TYPE.Q4_0, byteLength: ggmlRowBytes(GGML_TYPE.Q4_0, K) * N,
        data: async () => gptqToQ4_0(K, N, i32(await readAll(l.qweight)), u16(await readAll(l.scales)), i32(await readAll(l.qzeros)), l.gIdx ? i32(await readAll(l.gIdx)) : undefined, l.groupSize, q4),
      });
    }
    if (l.bias) { const b = l.bias; tensors.push({ name: `${gname}.bias`, ne: [N], type: GGML_TYPE.F32, byteLength: N * 4, data: async () => toF32(await readAll(b), b.dtype) }); }
  };
  mat16('token_embd.weight', 'transformer.wte.weight');
  for (let i = 0; i < c.numLayers; i++) {
    const h = `transformer.h.${i}`;
    vec(`blk.${i}.attn_norm.weight`, `${h}.ln_1.weight`);
    linear(`blk.${i}.attn_qkv`, `${h}.attn.c_attn`);
    linear(`blk.${i}.attn_output`, `${h}.attn.c_proj`);
    vec(`blk.${i}.ffn_norm.weight`, `${h}.ln_2.weight`);
    linear(`blk.${i}.ffn_gate`, `${h}.mlp.w2`);
    linear(`blk.${i}.ffn_up`, `${h}.mlp.w1`);
    linear(`blk.${i}.ffn_down`, `${h}.mlp.c_proj`);
  }
  vec('output_norm.weight', 'transformer.ln_f.weight');
  mat16('output.weight', 'lm_head.weight');
  const bytes = await writeGguf(path, kv, tensors, (t, i) => onProgress?.(`${i + 1}/${tensors.length} ${t.name}`));
  return { bytes, q4, tensors: tensors.length };
}
