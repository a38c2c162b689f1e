/**
 * `synthetic:<preset>` checkpoints: seeded random weights of a real Qwen shape, served as a
 * FileSource (config.json, generation_config.json, quantize_config.json, qwen.tiktoken and a
 * *virtual* model.safetensors) so they go through exactly the same reader as files on disk.
 *
 * The safetensors header is built in memory; tensor bytes are generated on demand, per 1 MiB block
 * of each tensor, from a PRNG seeded by (seed, tensor name, block index): any range of any tensor is
 * reproducible in isolation, and nothing is held in memory.
 *
 * Weight statistics (chosen so activations stay finite and O(1) through every layer; every linear
 * input is RMS-normalised, so a linear with weight rms 1/√fan_in keeps unit-rms outputs):
 * - wte: uniform, std 1. Norm weights: 1 ± uniform (std 0.1). c_attn bias: std 0.1.
 * - dense linears (bf16): uniform, std 1/√fan_in.
 * - lm_head: std 8/√hidden (logits std ≈ 8, so greedy choices are well separated, like the
 *   fixtures); rows ≥ 151851 (ids the tokenizer cannot decode) are scaled by 0.01 so they never win.
 * - GPTQ int4: uniform random nibbles q; qzeros all 0x77777777 (sym, zero 8 stored as 7); g_idx = k/128.
 *   scales = ±(1/√fan_in)/std(q−8) · U(0.75, 1.25) with a RANDOM SIGN per (group, column): q−8 has
 *   mean −0.5, so same-sign scales would add a systematic bias to every output; random signs cancel it.
 * 16-bit floats are produced from float values through a 65536-entry table per distribution (random
 * 16 bits pick a level), so no NaN/Inf bit pattern can appear and generation stays table-lookup fast.
 */
import { ArgumentError, CheckpointError } from '../errors.js';
import type { QwenConfig } from '../model/config.js';
import { floatToBf16Bits, floatToF16Bits } from './half.js';
import { qwenTensorLayout, type TensorSpec } from './layout.js';
import { DTYPE_BYTES } from './safetensors.js';
import type { DType, FileSource } from './source.js';

export const DEFAULT_MODEL = 'synthetic:tiny-int4';
export const SYNTHETIC_PREFIX = 'synthetic:';

interface Dims {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  vocab_size: number;
  seq_length: number;
}

/** Real Qwen (v1) shapes; tiny matches the int4 fixture (seq_length 32 exercises NTK and LogN). */
const SIZES: Record<string, Dims> = {
  tiny: { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 512, vocab_size: 151936, seq_length: 32 },
  // a shape in no fixture (head_dim 64, 3 layers, MLP width 768) so tests are not tuned to the fixtures
  small: { hidden_size: 256, num_hidden_layers: 3, num_attention_heads: 4, intermediate_size: 1536, vocab_size: 151936, seq_length: 48 },
  '1.8b': { hidden_size: 2048, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 11008, vocab_size: 151936, seq_length: 8192 },
  '7b': { hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, intermediate_size: 22016, vocab_size: 151936, seq_length: 8192 },
  '14b': { hidden_size: 5120, num_hidden_layers: 40, num_attention_heads: 40, intermediate_size: 27392, vocab_size: 152064, seq_length: 2048 },
};
const VARIANTS = ['int4', 'bf16'] as const;
type Variant = (typeof VARIANTS)[number];

/** Every accepted preset name (a bare size means -int4; an empty preset means tiny-int4). */
export const SYNTHETIC_PRESETS: readonly string[] = Object.keys(SIZES).flatMap((s) => VARIANTS.map((v) => `${s}-${v}`));

export interface SyntheticSpec {
  preset: string;
  size: string;
  variant: Variant;
}

export function isSyntheticLocation(location: string): boolean {
  return location.startsWith(SYNTHETIC_PREFIX);
}

/** 'synthetic:14b' → {preset '14b-int4', …}; unknown presets → ArgumentError listing the presets. */
export function parseSyntheticSpec(spec: string): SyntheticSpec {
  const name = (spec.startsWith(SYNTHETIC_PREFIX) ? spec.slice(SYNTHETIC_PREFIX.length) : spec).trim().toLowerCase();
  const full = name === '' ? 'tiny-int4' : SIZES[name] ? `${name}-int4` : name;
  const cut = full.lastIndexOf('-');
  const size = full.slice(0, cut);
  const variant = full.slice(cut + 1) as Variant;
  if (cut < 0 || !SIZES[size] || !VARIANTS.includes(variant)) {
    throw new ArgumentError(
      `unknown synthetic model ${JSON.stringify(spec)}: expected synthetic:<preset> with preset one of ${SYNTHETIC_PRESETS.join(', ')} ` +
        `(a bare size such as "14b" means -int4; "synthetic:" alone is ${DEFAULT_MODEL})`,
    );
  }
  return { preset: full, size, variant };
}

const GROUP_SIZE = 128;
const QUANTIZE_CONFIG = {
  bits: 4, group_size: GROUP_SIZE, damp_percent: 0.01, desc_act: false, static_groups: false, sym: true,
  true_sequential: true, model_name_or_path: null, model_file_base_name: 'model',
};

/** config.json of a preset (keys of the official Qwen configs). */
export function syntheticConfigJson(spec: SyntheticSpec): Record<string, unknown> {
  const d = SIZES[spec.size];
  const int4 = spec.variant === 'int4';
  return {
    architectures: ['QWenLMHeadModel'],
    auto_map: { AutoConfig: 'configuration_qwen.QWenConfig', AutoModelForCausalLM: 'modeling_qwen.QWenLMHeadModel' },
    attn_dropout_prob: 0.0, emb_dropout_prob: 0.0,
    bf16: !int4, fp16: int4, fp32: false,
    ...d,
    initializer_range: 0.02,
    kv_channels: d.hidden_size / d.num_attention_heads,
    layer_norm_epsilon: 1e-6,
    max_position_embeddings: 8192,
    model_type: 'qwen',
    no_bias: true,
    ...(int4 ? { quantization_config: { ...QUANTIZE_CONFIG, quant_method: 'gptq' } } : {}),
    rotary_emb_base: 10000, rotary_pct: 1.0,
    scale_attn_weights: true, softmax_in_fp32: false, tie_word_embeddings: false,
    tokenizer_class: 'QWenTokenizer', torch_dtype: int4 ? 'float16' : 'bfloat16',
    use_cache: true, use_cache_kernel: false, use_cache_quantization: false,
    use_dynamic_ntk: true, use_flash_attn: 'auto', use_logn_attn: true,
    'qwen-rt_synthetic': spec.preset,
  };
}

/** The official Qwen-Chat generation_config.json. */
export const OFFICIAL_GENERATION_CONFIG = {
  chat_format: 'chatml', do_sample: true, eos_token_id: 151643, max_new_tokens: 512, max_window_size: 6144,
  pad_token_id: 151643, repetition_penalty: 1.1, top_k: 0, top_p: 0.8,
};

/** Minimal QwenConfig of a preset for laying out tensors (the reader re-parses config.json). */
function layoutConfig(spec: SyntheticSpec): QwenConfig {
  const d = SIZES[spec.size];
  const h = d.hidden_size;
  return {
    hiddenSize: h, numLayers: d.num_hidden_layers, numHeads: d.num_attention_heads, headDim: h / d.num_attention_heads,
    intermediateSize: d.intermediate_size, mlpWidth: d.intermediate_size / 2, vocabSize: d.vocab_size, seqLength: d.seq_length,
    rotaryBase: 10000, rotaryPct: 1, layerNormEps: 1e-6, useDynamicNtk: true, useLognAttn: true,
    quantization: spec.variant === 'int4' ? { quantMethod: 'gptq', bits: 4, groupSize: GROUP_SIZE, descAct: false, sym: true } : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Deterministic generation

/** Bytes per generated block (tensor-relative, so block k of a tensor never depends on the range asked). */
export const SYNTHETIC_BLOCK = 1 << 20;
/** First lm_head row the tokenizer cannot decode (Qwen vocab 151851 + padding). */
const UNDECODABLE_ROW = 151851;

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A 16-bit float distribution: 65536 levels of center + halfWidth·(2u − 1), or ±magnitude·U(lo, hi). */
type Dist = { kind: 'uniform'; center: number; halfWidth: number } | { kind: 'signed'; magnitude: number; lo: number; hi: number };

const tableCache = new Map<string, Uint16Array>();
function table16(dtype: DType, dist: Dist): Uint16Array {
  const key = `${dtype}:${JSON.stringify(dist)}`;
  let t = tableCache.get(key);
  if (t) return t;
  const enc = dtype === 'BF16' ? floatToBf16Bits : floatToF16Bits;
  t = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) {
    let v: number;
    if (dist.kind === 'uniform') v = dist.center + dist.halfWidth * ((2 * (i + 0.5)) / 65536 - 1);
    else {
      const u = ((i & 0x7fff) + 0.5) / 32768; // low 15 bits: magnitude, top bit: sign
      v = (i & 0x8000 ? -1 : 1) * dist.magnitude * (dist.lo + (dist.hi - dist.lo) * u);
    }
    t[i] = enc(v);
  }
  tableCache.set(key, t);
  return t;
}

type Gen =
  | { kind: 'random32' }
  | { kind: 'const32'; value: number }
  | { kind: 'rowIndex32'; rowsPer: number } // int32 element k holds floor(k / rowsPer)
  | { kind: 'table16'; table: Uint16Array; rowWords?: number; fromRow?: number; tail?: Uint16Array };

interface VirtualTensor {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
  key: number;
  gen: Gen;
}

const SQRT3 = Math.sqrt(3);
const Q_STD = Math.sqrt((16 * 16 - 1) / 12); // std of a uniform nibble (q − 8)
const uniform = (std: number, center = 0): Dist => ({ kind: 'uniform', center, halfWidth: std * SQRT3 });

function generator(spec: TensorSpec, dtype: DType, hidden: number): Gen {
  const fanIn = spec.inFeatures ?? hidden;
  switch (spec.role) {
    case 'qweight': return { kind: 'random32' };
    case 'qzeros': return { kind: 'const32', value: 0x77777777 };
    case 'g_idx': return { kind: 'rowIndex32', rowsPer: GROUP_SIZE };
    case 'scales':
      return { kind: 'table16', table: table16(dtype, { kind: 'signed', magnitude: 1 / Math.sqrt(fanIn) / Q_STD, lo: 0.75, hi: 1.25 }) };
    case 'embedding': return { kind: 'table16', table: table16(dtype, uniform(1)) };
    case 'norm': return { kind: 'table16', table: table16(dtype, uniform(0.1, 1)) };
    case 'bias': return { kind: 'table16', table: table16(dtype, uniform(0.1)) };
    case 'weight': return { kind: 'table16', table: table16(dtype, uniform(1 / Math.sqrt(fanIn))) };
    case 'lm_head': {
      const std = 8 / Math.sqrt(hidden);
      return {
        kind: 'table16', table: table16(dtype, uniform(std)),
        rowWords: hidden / 2, fromRow: UNDECODABLE_ROW, tail: table16(dtype, uniform(std * 0.01)),
      };
    }
  }
}

/** Fills out[0 .. words) with words [w0, w0 + words) of the tensor's block `block` (w0 relative to the block). */
function fillBlock(t: VirtualTensor, seed: number, block: number, out: Uint32Array): void {
  const g = t.gen;
  const n = out.length;
  const firstWord = (block * SYNTHETIC_BLOCK) / 4;
  if (g.kind === 'const32') {
    out.fill(g.value);
    return;
  }
  if (g.kind === 'rowIndex32') {
    for (let i = 0; i < n; i++) out[i] = Math.floor((firstWord + i) / g.rowsPer);
    return;
  }
  // xorshift128, seeded per (seed, tensor, block) through a 32-bit finaliser.
  let x = mix32(seed ^ t.key) | 1;
  let y = mix32(x + Math.imul(block + 1, 0x9e3779b9)) | 0;
  let z = mix32(y ^ 0x632be5ab) | 0;
  let w = mix32(z + 0x85157af5) | 0;
  if (g.kind === 'random32') {
    for (let i = 0; i < n; i++) {
      const s = x ^ (x << 11);
      x = y; y = z; z = w;
      w = w ^ (w >>> 19) ^ s ^ (s >>> 8);
      out[i] = w;
    }
    return;
  }
  const tab = g.table;
  // Words before `split` use the main table, the rest the tail table (lm_head's undecodable rows).
  let split = n;
  if (g.tail && g.rowWords !== undefined && g.fromRow !== undefined) {
    split = Math.max(0, Math.min(n, g.fromRow * g.rowWords - firstWord));
  }
  for (let i = 0; i < split; i++) {
    const s = x ^ (x << 11);
    x = y; y = z; z = w;
    w = w ^ (w >>> 19) ^ s ^ (s >>> 8);
    out[i] = tab[w & 0xffff] | (tab[w >>> 16] << 16);
  }
  const tail = g.tail ?? tab;
  for (let i = split; i < n; i++) {
    const s = x ^ (x << 11);
    x = y; y = z; z = w;
    w = w ^ (w >>> 19) ^ s ^ (s >>> 8);
    out[i] = tail[w & 0xffff] | (tail[w >>> 16] << 16);
  }
}

export interface SyntheticOptions {
  /** PRNG seed (default 0x5157454e). The same seed gives byte-identical checkpoints. */
  seed?: number;
}

const WEIGHTS_FILE = 'model.safetensors';

/**
 * A FileSource serving a synthetic checkpoint. `vocabulary` supplies qwen.tiktoken's bytes (callers
 * pass platform.readAsset('qwen.tiktoken.gz') + gunzip); it is called once, when first needed.
 */
export function syntheticSource(spec: string, vocabulary: () => Promise<Uint8Array>, opts: SyntheticOptions = {}): FileSource {
  const parsed = parseSyntheticSpec(spec);
  const seed = (opts.seed ?? 0x5157454e) >>> 0;
  const location = `${SYNTHETIC_PREFIX}${parsed.preset}`;
  const config = layoutConfig(parsed);
  const int4 = parsed.variant === 'int4';
  const floatDtype: DType = int4 ? 'F16' : 'BF16';

  // Tensors ordered by element size (then layout order) so every span is aligned to its element size.
  const specs = qwenTensorLayout(config).map((s) => ({ s, dtype: s.dtypes.includes(floatDtype) ? floatDtype : s.dtypes[0] }));
  specs.sort((a, b) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype]);
  const tensors: VirtualTensor[] = [];
  let at = 0;
  for (const { s, dtype } of specs) {
    const bytes = s.shape.reduce((p, d) => p * d, 1) * DTYPE_BYTES[dtype];
    tensors.push({ name: s.name, dtype, shape: s.shape, begin: at, end: at + bytes, key: fnv1a(s.name), gen: generator(s, dtype, config.hiddenSize) });
    at += bytes;
  }
  const dataSize = at;

  const headerObj: Record<string, unknown> = { __metadata__: { format: 'pt', 'qwen-rt': `synthetic ${parsed.preset} seed ${seed}` } };
  for (const t of tensors) headerObj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
  let headerJson = JSON.stringify(headerObj);
  headerJson += ' '.repeat((8 - (headerJson.length % 8)) % 8); // pad so the data area is 8-aligned
  const header = new Uint8Array(8 + headerJson.length);
  new DataView(header.buffer).setUint32(0, headerJson.length, true);
  header.set(new TextEncoder().encode(headerJson), 8); // ASCII: tensor names are ASCII
  const dataOffset = header.length;

  const enc = new TextEncoder();
  const small = new Map<string, Uint8Array>([
    ['config.json', enc.encode(JSON.stringify(syntheticConfigJson(parsed), null, 2))],
    ['generation_config.json', enc.encode(JSON.stringify(OFFICIAL_GENERATION_CONFIG, null, 2))],
  ]);
  if (int4) small.set('quantize_config.json', enc.encode(JSON.stringify(QUANTIZE_CONFIG, null, 2)));

  let vocab: Promise<Uint8Array> | undefined;
  const vocabBytes = () => {
    vocab ??= vocabulary();
    vocab.catch(() => (vocab = undefined));
    return vocab;
  };

  const scratch = new Uint32Array(SYNTHETIC_BLOCK / 4);

  /** Copies tensor bytes [from, from + dst.length) of t into dst. */
  const readTensor = (t: VirtualTensor, from: number, dst: Uint8Array) => {
    const len = t.end - t.begin;
    let pos = 0;
    while (pos < dst.length) {
      const off = from + pos;
      const block = Math.floor(off / SYNTHETIC_BLOCK);
      const blockStart = block * SYNTHETIC_BLOCK;
      const blockBytes = Math.min(SYNTHETIC_BLOCK, len - blockStart);
      const words = Math.ceil(blockBytes / 4);
      const inBlock = off - blockStart;
      const n = Math.min(blockBytes - inBlock, dst.length - pos);
      const abs = dst.byteOffset + pos;
      if (inBlock === 0 && n === blockBytes && blockBytes % 4 === 0 && abs % 4 === 0) {
        fillBlock(t, seed, block, new Uint32Array(dst.buffer, abs, words)); // whole aligned block: no copy
      } else {
        const out = scratch.subarray(0, words);
        fillBlock(t, seed, block, out);
        dst.set(new Uint8Array(out.buffer, out.byteOffset + inBlock, n), pos);
      }
      pos += n;
    }
  };

  /** Index of the first tensor whose span ends after `off`. */
  const firstTensorAt = (off: number) => {
    let lo = 0;
    let hi = tensors.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tensors[mid].end <= off) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  const readWeights = (offset: number, dst: Uint8Array) => {
    let pos = 0;
    if (offset < dataOffset) {
      const n = Math.min(dataOffset - offset, dst.length);
      dst.set(header.subarray(offset, offset + n));
      pos = n;
    }
    for (let i = firstTensorAt(offset + pos - dataOffset); pos < dst.length; i++) {
      const t = tensors[i];
      const rel = offset + pos - dataOffset;
      if (t.end === t.begin) continue;
      const n = Math.min(t.end - rel, dst.length - pos);
      readTensor(t, rel - t.begin, dst.subarray(pos, pos + n));
      pos += n;
    }
  };

  const sizeOf = async (name: string): Promise<number | undefined> => {
    if (name === WEIGHTS_FILE) return dataOffset + dataSize;
    if (name === 'qwen.tiktoken') return (await vocabBytes()).length;
    return small.get(name)?.length;
  };

  return {
    location,
    size: sizeOf,
    async read(name, offset, dst) {
      const size = await sizeOf(name);
      if (size === undefined) throw new CheckpointError(`${location}: no file ${name}`, { file: name });
      if (!Number.isSafeInteger(offset) || offset < 0 || offset + dst.length > size) {
        throw new CheckpointError(`${location}/${name}: read of ${dst.length} bytes at ${offset} is past the end (${size} bytes)`, { file: name });
      }
      if (name === WEIGHTS_FILE) readWeights(offset, dst);
      else if (name === 'qwen.tiktoken') dst.set((await vocabBytes()).subarray(offset, offset + dst.length));
      else dst.set(small.get(name)!.subarray(offset, offset + dst.length));
    },
  };
}
