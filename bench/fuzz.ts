/**
 * Fuzzing of every parser that takes outside input: safetensors headers, the sharded index,
 * config.json, qwen.tiktoken, the tokenizer round trip, ChatML building (makeContext) and the
 * server's request bodies. Each target is a fast-check property that accepts only
 *   - success that satisfies the parser's invariants, or
 *   - the typed error the parser documents (a QwenRtError subclass; a 4xx for the server),
 * and fails on any other throw or on one input taking over 1 s.
 *
 * test/hardening/fuzz.test.ts runs the same targets with a fixed seed and a few hundred inputs;
 * this script runs ≥ 100k per target:
 *   node dist/bench/fuzz.js [--runs N] [--seed S] [--only name,name]
 * and prints one JSON line per target plus a table (exit code 1 when any target failed).
 */
import fc from 'fast-check';
import { makeContext } from '../src/chat/makeContext.js';
import { CheckpointError, ConfigError, QwenRtError, TokenizerError, ArgumentError } from '../src/errors.js';
import { parseGenerationConfig, parseJsonObject, parseQwenConfig } from '../src/io/config.js';
import { DTYPE_BYTES, parseSafetensorsHeader, readSafetensorsHeader } from '../src/io/safetensors.js';
import type { FileSource } from '../src/io/source.js';
import { INDEX_FILE, openWeightFiles } from '../src/io/weights.js';
import { DEFAULT_GENERATION_CONFIG } from '../src/io/config.js';
import type { GenerationOptions } from '../src/generate/options.js';
import { createHandler } from '../src/server/handler.js';
import type { Engine } from '../src/server/engine.js';
import { QwenTokenizer } from '../src/tokenizer/index.js';

/** No single input may take longer than this (a "hang"). */
export const HANG_MS = 1000;

export interface FuzzTarget {
  readonly name: string;
  readonly property: fc.IRawProperty<any, boolean>;
}

export interface FuzzResult {
  target: string;
  runs: number;
  seed: number;
  failed: boolean;
  ms: number;
  /** Slowest single input in ms. */
  slowestMs: number;
  /** Inputs that ended in the documented typed error (the rest parsed). */
  rejected: number;
  counterexample?: string;
  error?: string;
}

const enc = new TextEncoder();
/** String.prototype.toWellFormed (Node 20; not in the ES2023 lib types): lone surrogates → U+FFFD. */
const wellFormed = (s: string): string => (s as unknown as { toWellFormed(): string }).toWellFormed();

// ---------------------------------------------------------------- helpers

/** Bookkeeping shared by a target's runs: slowest input, how many were rejected. */
class Meter {
  slowest = 0;
  rejected = 0;
  /** Runs `fn`; a throw that `allowed` accepts counts as rejected, anything else propagates. */
  sync(fn: () => void, allowed: (e: unknown) => boolean): void {
    const t0 = performance.now();
    try {
      fn();
    } catch (e) {
      if (!allowed(e)) throw e;
      this.rejected++;
    } finally {
      this.time(t0);
    }
  }
  async async(fn: () => Promise<void>, allowed: (e: unknown) => boolean): Promise<void> {
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`hang: no result after ${HANG_MS} ms`)), HANG_MS);
        }),
      ]);
    } catch (e) {
      if (!allowed(e)) throw e;
      this.rejected++;
    } finally {
      clearTimeout(timer);
      this.time(t0);
    }
  }
  private time(t0: number): void {
    const ms = performance.now() - t0;
    this.slowest = Math.max(this.slowest, ms);
    if (ms > HANG_MS) throw new Error(`hang: one input took ${ms.toFixed(0)} ms (limit ${HANG_MS})`);
  }
}

const isA = (...classes: Array<new (...a: any[]) => QwenRtError>) => (e: unknown) => classes.some((c) => e instanceof c);

function check(cond: boolean, msg: string): void {
  if (!cond) throw new Error(`invariant broken: ${msg}`);
}

/** In-memory FileSource that records every name asked for (path traversal checks). */
export function memorySource(files: Map<string, Uint8Array>, asked: string[] = []): FileSource {
  return {
    location: 'mem:',
    async size(name) {
      asked.push(name);
      return files.get(name)?.length;
    },
    async read(name, offset, dst) {
      asked.push(name);
      const b = files.get(name);
      if (!b || offset < 0 || offset + dst.length > b.length) {
        throw new CheckpointError(`mem:/${name}: read of ${dst.length} bytes at ${offset} past the end`, { file: name });
      }
      dst.set(b.subarray(offset, offset + dst.length));
    },
  };
}

/** u64 LE length + header JSON + data. */
export function safetensorsFile(headerText: string, dataBytes: number, lengthOverride?: number): Uint8Array {
  const h = enc.encode(headerText);
  const out = new Uint8Array(8 + h.length + dataBytes);
  const dv = new DataView(out.buffer);
  const len = lengthOverride ?? h.length;
  dv.setUint32(0, len % 2 ** 32, true);
  dv.setUint32(4, Math.floor(len / 2 ** 32) % 2 ** 32, true);
  out.set(h, 8);
  return out;
}

/** A valid header for tensors of the given (dtype, shape)s laid out back to back; returns [json, dataBytes]. */
function validHeader(specs: Array<[string, string, number[]]>): [Record<string, unknown>, number] {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, dtype, shape] of specs) {
    const n = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype as keyof typeof DTYPE_BYTES];
    header[name] = { dtype, shape, data_offsets: [at, at + n] };
    at += n;
  }
  return [header, at];
}

// ---------------------------------------------------------------- arbitraries

const DTYPES = Object.keys(DTYPE_BYTES);
const weird = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(-1, 0.5, 2 ** 53, 2 ** 64, -0, 1e308, Number.MAX_SAFE_INTEGER, '1', '', [], {}, null, true),
).map((v) => structuredClone(v)); // constants are shared objects: a mutation must not alias them
const tensorName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('a', 'b', 'c', 'transformer.wte.weight', '') }, { weight: 1, arbitrary: fc.constantFrom('__metadata__') }, { weight: 2, arbitrary: fc.string({ maxLength: 12 }) });
const smallShape = fc.array(fc.nat({ max: 6 }), { maxLength: 3 });

/** Header objects: mostly well-formed entries, some fields replaced by junk. */
const headerObject = fc
  .tuple(
    fc.array(fc.tuple(tensorName, fc.constantFrom(...DTYPES), smallShape), { maxLength: 5 }),
    fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat({ max: 4 }), fc.constantFrom('dtype', 'shape', 'data_offsets', 'entry'), weird), { maxLength: 3 }) }),
    fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat({ max: 4 }), fc.integer({ min: -64, max: 64 }), fc.boolean()), { maxLength: 2 }) }),
    fc.option(fc.oneof({ weight: 4, arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }) }, { weight: 1, arbitrary: weird })),
  )
  .map(([specs, junk, shifts, meta]) => {
    const [header, dataBytes] = validHeader(specs);
    const names = Object.keys(header);
    for (const [i, field, value] of junk) {
      const name = names[i % Math.max(1, names.length)];
      if (name === undefined) continue;
      const entry = header[name];
      if (field === 'entry' || entry === null || typeof entry !== 'object') header[name] = value;
      else (entry as Record<string, unknown>)[field] = value;
    }
    // overlapping / shifted spans
    for (const [i, delta, which] of shifts) {
      const e = header[names[i % Math.max(1, names.length)]] as { data_offsets?: unknown } | undefined;
      if (e && Array.isArray(e.data_offsets)) {
        const o = e.data_offsets as number[];
        e.data_offsets = which ? [o[0] + delta, o[1] + delta] : [o[0], o[1] + delta];
      }
    }
    if (meta !== null) header.__metadata__ = meta;
    return { header, dataBytes };
  });

/** Header bytes: JSON of a header object (possibly cut or with flipped bytes), or raw junk. */
const headerBytes = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(headerObject, fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }), fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 3 }) }), fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 16 }) }, { weight: 1, arbitrary: fc.integer({ min: -16, max: 16 }) })).map(([h, cut, flips, slack]) => {
    let bytes = enc.encode(JSON.stringify(h.header));
    if (cut !== null) bytes = bytes.subarray(0, cut % (bytes.length + 1));
    else bytes = bytes.slice();
    for (const [at, v] of flips) if (bytes.length) bytes[at % bytes.length] = v;
    return { bytes, dataBytes: Math.max(0, h.dataBytes + slack) };
  }) },
  { weight: 1, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 64 }), fc.nat({ max: 256 })).map(([bytes, dataBytes]) => ({ bytes, dataBytes })) },
  { weight: 1, arbitrary: fc.tuple(fc.string({ unit: 'binary', maxLength: 40 }), fc.nat({ max: 256 })).map(([s, dataBytes]) => ({ bytes: enc.encode(s), dataBytes })) },
);

/** Strings that stress the tokenizer: any code points, specials, combining marks, '<|' fragments. */
export const textArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 40 }),
  fc
    .array(
      fc.constantFrom(
        '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|extra_0|>', '<|extra_204|>', '<|', '|>', '<|im_end', ' ', '  ', '\n', '\r\n', '\t',
        'e\u0301', '\u0301', 'n\u0303', '\u1100\u1161', 'Å', 'A\u030a', '\ud83d\ude00', '\ud800', '\udfff', '中文', 'ﬁ', '123456', "'s", "'LL",
        'Hello', ' world', '\u0000', '\uffff', '\u200d', '👩‍👩‍👧', '\u0338', '<\u0338',
      ),
      { maxLength: 12 },
    )
    .map((a) => a.join('')),
);

// ---------------------------------------------------------------- targets

/** safetensors: header bytes → SafetensorsFile (all invariants) or CheckpointError. */
function safetensorsTarget(): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  const parsed = fc.property(headerBytes, ({ bytes, dataBytes }) => {
    meter.sync(() => {
      const fileSize = 8 + bytes.length + dataBytes;
      const st = parseSafetensorsHeader('mem:/x', 'x', fileSize, bytes);
      const dataSize = fileSize - st.dataOffset;
      const spans: Array<[number, number]> = [];
      for (const [name, e] of st.tensors) {
        check(name !== '__metadata__', '__metadata__ is not a tensor');
        check(e.begin >= 0 && e.begin <= e.end && e.end <= dataSize, `${name} inside the data area`);
        const elems = e.shape.reduce((a, b) => a * b, 1);
        check(elems * DTYPE_BYTES[e.dtype] === e.end - e.begin, `${name} size matches its shape`);
        if (e.end > e.begin) spans.push([e.begin, e.end]);
      }
      spans.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) check(spans[i][0] >= spans[i - 1][1], 'no overlapping tensors');
      for (const v of Object.values(st.metadata)) check(typeof v === 'string', 'metadata values are strings');
    }, isA(CheckpointError));
    return true;
  });
  return { name: 'safetensors-header', property: parsed, meter };
}

/** safetensors files: random length prefixes and truncation through readSafetensorsHeader. */
function safetensorsFileTarget(): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  const prop = fc.asyncProperty(
    headerObject,
    fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, fc.nat(), fc.constantFrom(2 ** 32, 2 ** 53, 2 ** 64 - 1, 100 * 1024 * 1024 + 1)),
    fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
    async (h, lengthOverride, cut) => {
      let file = safetensorsFile(JSON.stringify(h.header), h.dataBytes, lengthOverride);
      if (cut !== null) file = file.subarray(0, cut % (file.length + 1));
      await meter.async(async () => {
        const st = await readSafetensorsHeader(memorySource(new Map([['x', file]])), 'x');
        for (const e of st.tensors.values()) check(st.dataOffset + e.end <= file.length, 'tensor inside the file');
      }, isA(CheckpointError));
      return true;
    },
  );
  return { name: 'safetensors-file', property: prop, meter };
}

const UNSAFE = fc.constantFrom('../x.safetensors', '/etc/passwd', 'a/../../b', 'a\\b', 'http://evil/x', './a', 'a//b', '', '..', 'C:/x');

/** Sharded index: weight_map → shard files; never asks the source for a name outside the checkpoint. */
function indexTarget(): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  const shardName = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('s1.safetensors', 's2.safetensors', 'sub/s3.safetensors', 'missing.safetensors') }, UNSAFE, weird);
  const prop = fc.asyncProperty(
    fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'x'), shardName, { maxKeys: 5 }),
    fc.oneof({ weight: 6, arbitrary: fc.constant('ok') }, fc.constant('raw'), fc.constant('no-map')),
    fc.string({ maxLength: 20 }),
    fc.array(fc.tuple(fc.constantFrom('s1.safetensors', 's2.safetensors', 'sub/s3.safetensors'), fc.subarray(['a', 'b', 'c', 'd']), fc.boolean()), { maxLength: 3 }),
    async (map, shape, raw, shards) => {
      const files = new Map<string, Uint8Array>();
      files.set(INDEX_FILE, enc.encode(shape === 'ok' ? JSON.stringify({ metadata: {}, weight_map: map }) : shape === 'raw' ? raw : JSON.stringify({ map })));
      for (const [file, names, corrupt] of shards) {
        const [header, bytes] = validHeader(names.map((n) => [n, 'F16', [2]]));
        const f = safetensorsFile(JSON.stringify(header), bytes);
        files.set(file, corrupt ? f.subarray(0, Math.max(0, f.length - 3)) : f);
      }
      const asked: string[] = [];
      await meter.async(async () => {
        const w = await openWeightFiles(memorySource(files, asked));
        for (const [name, shard] of Object.entries(map)) check(w.tensors.get(name)?.file.file === shard, `tensor ${name} comes from ${String(shard)}`);
      }, isA(CheckpointError));
      for (const name of asked) {
        check(!name.startsWith('/') && !name.includes('\\') && !name.includes('://') && name.split('/').every((p) => p !== '..' && p !== '.' && p !== ''), `asked the source for ${JSON.stringify(name)}`);
      }
      return true;
    },
  );
  return { name: 'safetensors-index', property: prop, meter };
}

const CONFIG_FIELDS: Record<string, fc.Arbitrary<unknown>> = {
  hidden_size: fc.constantFrom(8, 16, 128, 5120),
  num_hidden_layers: fc.constantFrom(1, 2, 40),
  num_attention_heads: fc.constantFrom(1, 2, 4, 3, 40),
  kv_channels: fc.constantFrom(undefined, undefined, undefined, 2, 4, 8, 32, 128),
  intermediate_size: fc.constantFrom(16, 32, 512, 27392, 7),
  vocab_size: fc.constantFrom(256, 151936, 152064),
  seq_length: fc.constantFrom(32, 2048, 8192),
  rotary_emb_base: fc.constantFrom(10000, 1, 0.5),
  rotary_pct: fc.constantFrom(1, 0.5, 0.25, 0.3),
  layer_norm_epsilon: fc.constantFrom(1e-6, 1e-5),
  use_dynamic_ntk: fc.boolean(),
  use_logn_attn: fc.boolean(),
  no_bias: fc.constant(true),
  tie_word_embeddings: fc.constant(false),
  model_type: fc.constantFrom('qwen', undefined),
  quantization_config: fc.oneof(
    fc.constant(undefined),
    fc.record({ bits: fc.constantFrom(4, 8), group_size: fc.constantFrom(128, 64, 12, -1), desc_act: fc.boolean(), sym: fc.boolean(), quant_method: fc.constantFrom('gptq', 'awq') }, { requiredKeys: [] }),
  ),
};
const GEN_FIELDS: Record<string, fc.Arbitrary<unknown>> = {
  eos_token_id: fc.constantFrom(151643, [151643, 151645], []),
  pad_token_id: fc.constantFrom(151643, -1),
  max_window_size: fc.constantFrom(6144, 0),
  max_new_tokens: fc.constantFrom(512, 1),
  do_sample: fc.boolean(),
  top_k: fc.constantFrom(0, 5),
  top_p: fc.constantFrom(0.8, 1, 0),
  temperature: fc.constantFrom(1, 0, 0.7),
  repetition_penalty: fc.constantFrom(1.1, 1),
  chat_format: fc.constantFrom('chatml', 'raw'),
};

/** Each field: a plausible value, junk, or absent. */
function fieldsArb(fields: Record<string, fc.Arbitrary<unknown>>) {
  const rec: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, v] of Object.entries(fields)) rec[k] = fc.oneof({ weight: 40, arbitrary: v }, { weight: 1, arbitrary: weird });
  return fc.record(rec, { requiredKeys: [] });
}

/** config.json / generation_config.json → typed configs or ConfigError. */
function configTarget(): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  const prop = fc.property(
    fc.oneof(
      { weight: 8, arbitrary: fieldsArb(CONFIG_FIELDS).map((o) => JSON.stringify(o)) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
      { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    ),
    fc.option(fieldsArb({ bits: fc.constantFrom(4, 8), group_size: fc.constantFrom(128, 64), desc_act: fc.boolean(), sym: fc.boolean() })),
    fc.oneof(fieldsArb(GEN_FIELDS).map((o) => JSON.stringify(o)), fc.string({ maxLength: 20 })),
    (configText, quantize, genText) => {
      meter.sync(() => {
        const c = parseQwenConfig(parseJsonObject('config.json', enc.encode(configText)), (quantize ?? undefined) as Record<string, unknown> | undefined);
        check(c.headDim * c.numHeads === c.hiddenSize, 'heads × head dim = hidden size');
        check(c.mlpWidth * 2 === c.intermediateSize, 'mlp width is half the intermediate size');
        check(Number.isInteger(c.headDim * c.rotaryPct) && (c.headDim * c.rotaryPct) % 2 === 0, 'even rotary dim');
        for (const v of [c.hiddenSize, c.numLayers, c.numHeads, c.vocabSize, c.seqLength]) check(Number.isSafeInteger(v) && v > 0, 'positive integers');
        if (c.quantization) check(c.quantization.bits === 4 && c.quantization.groupSize % 8 === 0 && c.quantization.groupSize > 0, 'gptq 4-bit');
      }, isA(ConfigError));
      meter.sync(() => {
        const g = parseGenerationConfig(parseJsonObject('generation_config.json', genText));
        check(g.maxNewTokens >= 1 && g.maxWindowSize >= 1 && g.topP > 0 && g.topP <= 1 && g.temperature >= 0, 'generation ranges');
        check(Number.isSafeInteger(g.eosTokenId) && g.eosTokenId >= 0, 'eos id');
      }, isA(ConfigError));
      return true;
    },
  );
  return { name: 'config-json', property: prop, meter };
}

/** A small valid .tiktoken: the 256 bytes (shuffled ranks) + some merges. */
function tiktokenLines(order: number[], merges: string[]): string[] {
  const lines: string[] = [];
  const toB64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
  const seen = new Set<string>();
  const tokens: Uint8Array[] = order.map((b) => Uint8Array.of(b));
  for (const m of merges) {
    const b = enc.encode(m);
    const k = toB64(b);
    if (b.length > 1 && !seen.has(k)) {
      seen.add(k);
      tokens.push(b);
    }
  }
  tokens.forEach((t, rank) => lines.push(`${toB64(t)} ${rank}`));
  return lines;
}

/** qwen.tiktoken bytes → tokenizer (that round-trips text) or TokenizerError. */
function tiktokenTarget(): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  const order = fc.oneof({ weight: 4, arbitrary: fc.shuffledSubarray([...Array(256).keys()], { minLength: 256 }) }, { weight: 1, arbitrary: fc.shuffledSubarray([...Array(256).keys()], { minLength: 250 }) });
  const mutation = fc.tuple(
    fc.constantFrom('none', 'delete', 'dup', 'rank', 'junk', 'crlf', 'tabs', 'swap', 'bigrank', 'pad', 'b64'),
    fc.nat(),
    fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('999999999', '1000000000', '-1', '1e3', '0x10', '')),
  );
  const prop = fc.property(
    fc.oneof(
      { weight: 8, arbitrary: fc.tuple(order, fc.array(fc.string({ minLength: 2, maxLength: 4 }), { maxLength: 20 }), fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(mutation, { maxLength: 3 }) }), fc.string({ maxLength: 20 })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => [null, null, null, b] as const) },
    ),
    ([ord, merges, mutations, probe]) => {
      let bytes: Uint8Array;
      if (ord === null) bytes = probe as unknown as Uint8Array;
      else {
        const lines = tiktokenLines(ord, merges!);
        let text: string | undefined;
        for (const [kind, at, s] of mutations!) {
          const i = at % lines.length;
          if (kind === 'delete') lines.splice(i, 1);
          else if (kind === 'dup') lines.splice(i, 0, lines[(at >> 3) % lines.length]);
          else if (kind === 'rank') lines[i] = `${lines[i].split(' ')[0]} ${s}`;
          else if (kind === 'bigrank') lines[i] = `${lines[i].split(' ')[0]} ${lines.length + (at % 5)}`;
          else if (kind === 'junk') lines[i] = s;
          else if (kind === 'swap') lines[i] = lines[i].split(' ').reverse().join(' ');
          else if (kind === 'pad') lines[i] = lines[i].replace(/=/g, '') + '=';
          else if (kind === 'b64') lines[i] = `${btoa(s)} ${i}`;
          else if (kind === 'tabs') lines[i] = lines[i].replace(' ', '\t \t');
          else if (kind === 'crlf') text = lines.join('\r\n') + '\r\n\n';
        }
        bytes = enc.encode(text ?? lines.join('\n'));
      }
      meter.sync(() => {
        const tok = QwenTokenizer.fromTiktoken(bytes);
        // every byte has a rank, so any text must survive encode → decode
        const s = typeof probe === 'string' ? probe.normalize('NFC') : 'hello';
        const ids = tok.encode(s, { allowedSpecial: [] });
        check(ids.every((id) => id >= 0 && id < tok.vocabSize), 'ids in range');
        check(tok.decode(ids) === wellFormed(s), `round trip of ${JSON.stringify(s)}`);
      }, isA(TokenizerError));
      return true;
    },
  );
  return { name: 'qwen-tiktoken', property: prop, meter };
}

/** decode(encode(s)) === NFC(s) (lone surrogates become U+FFFD, as in UTF-8). */
function roundTripTarget(tok: QwenTokenizer): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  // long texts too: pieces that straddle the BPE cache limit, long runs of one class
  const text = fc.oneof({ weight: 9, arbitrary: textArb }, { weight: 1, arbitrary: fc.array(textArb, { maxLength: 60 }).map((a) => a.join('')) });
  const prop = fc.property(text, fc.boolean(), (s, plain) => {
    meter.sync(() => {
      const ids = tok.encode(s, plain ? { allowedSpecial: [] } : {});
      check(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize), 'ids in range');
      const want = wellFormed(s.normalize('NFC'));
      const got = tok.decode(ids);
      check(got === want, `decode(encode(${JSON.stringify(s)})) = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      // streaming decode gives the same text
      const d = tok.createStreamDecoder();
      let streamed = '';
      for (const id of ids) streamed += d.push(id);
      streamed += d.flush();
      check(streamed === want, 'stream decoder agrees');
    }, () => false);
    return true;
  });
  return { name: 'tokenizer-roundtrip', property: prop, meter };
}

/** makeContext: ChatML tokens decode to rawText; the history budget holds; bad args → ArgumentError. */
function makeContextTarget(tok: QwenTokenizer): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  const turn = fc.oneof({ weight: 9, arbitrary: fc.tuple(textArb, textArb) }, { weight: 1, arbitrary: weird });
  const prop = fc.property(
    textArb,
    fc.oneof({ weight: 5, arbitrary: fc.option(textArb) }, { weight: 1, arbitrary: weird }),
    fc.oneof({ weight: 9, arbitrary: fc.array(turn, { maxLength: 4 }) }, { weight: 1, arbitrary: weird }),
    fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 300 }) }, { weight: 1, arbitrary: weird }),
    fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: weird }),
    (query, system, history, maxWindowSize, badQuery) => {
      meter.sync(() => {
        const opts = { system: (system ?? undefined) as string | undefined, history: history as Array<[string, string]>, maxWindowSize: maxWindowSize as number };
        const c = makeContext(tok, (badQuery ?? query) as string, opts);
        check(c.rawText.length > 0 && c.contextTokens.length > 0, 'non-empty');
        check(c.contextTokens.every((id) => id >= 0 && id < tok.vocabSize), 'ids in range');
        check(tok.decode(c.contextTokens) === wellFormed(c.rawText.normalize('NFC')), 'tokens decode to rawText');
        check(c.contextTokens[0] === tok.imStart, 'starts with <|im_start|>');
        check(c.historyTurnsKept <= ((history as unknown[] | null) ?? []).length, 'kept ≤ history');
        // only plain text between the structural tokens: specials typed by users are not ids
        const structural = c.contextTokens.filter((id) => id >= tok.endOfText).length;
        check(structural === 5 + 4 * c.historyTurnsKept, `structural tokens: ${structural}`);
      }, isA(ArgumentError));
      return true;
    },
  );
  return { name: 'make-context', property: prop, meter };
}

/** An engine that answers every request with the same text: the server's parsing is what is fuzzed. */
export class EchoEngine implements Engine {
  readonly generationConfig = { ...DEFAULT_GENERATION_CONFIG };
  private readonly answer: number[];
  constructor(readonly tokenizer: QwenTokenizer, answer = 'Hi there!') {
    this.answer = [...tokenizer.encode(answer), tokenizer.imEnd];
  }
  async *generate(inputIds: ArrayLike<number>, options: GenerationOptions = {}): AsyncGenerator<number> {
    for (let i = 0; i < inputIds.length; i++) {
      if (!Number.isInteger(inputIds[i]) || inputIds[i] < 0 || inputIds[i] >= this.tokenizer.vocabSize) throw new ArgumentError(`bad id ${inputIds[i]}`);
    }
    const n = Math.min(options.maxNewTokens ?? this.answer.length, this.answer.length);
    for (let i = 0; i < n; i++) {
      if (options.signal?.aborted) throw new QwenRtError('E_ABORTED', 'aborted');
      yield this.answer[i];
    }
  }
}

/** Server request bodies, headers, paths and methods → never a 500, every 4xx explains itself. */
function serverTarget(tok: QwenTokenizer): FuzzTarget & { meter: Meter } {
  const meter = new Meter();
  const handler = createHandler(new EchoEngine(tok), { maxTokens: 16, maxBodyBytes: 4096, maxQueue: 4, apiKey: undefined });
  const field = fc.oneof(weird, fc.constant(undefined));
  const content = fc.oneof(textArb, fc.array(fc.record({ type: fc.constantFrom('text', 'image_url', 'x'), text: fc.oneof(textArb, field) }, { requiredKeys: [] }), { maxLength: 2 }), field);
  const message = fc.record(
    {
      role: fc.constantFrom('user', 'assistant', 'system', 'tool', 'function', 'x', 5),
      content,
      name: field,
      tool_calls: fc.oneof(field, fc.array(fc.record({ id: field, type: fc.constantFrom('function', 'x'), function: fc.record({ name: fc.oneof(textArb, field), arguments: fc.oneof(textArb, field) }, { requiredKeys: [] }) }, { requiredKeys: [] }), { maxLength: 2 })),
      tool_call_id: field,
      function_call: field,
    },
    { requiredKeys: [] },
  );
  const tool = fc.record({ type: fc.constantFrom('function', 'x'), function: fc.record({ name: fc.oneof(fc.constantFrom('get', 'search'), textArb, field), description: fc.oneof(textArb, field), parameters: field }, { requiredKeys: [] }) }, { requiredKeys: [] });
  const number = fc.oneof(fc.double(), fc.integer({ min: -5, max: 40 }), field);
  const body = fc.record(
    {
      model: fc.oneof(fc.constant('qwen'), field),
      messages: fc.oneof({ weight: 5, arbitrary: fc.array(message, { minLength: 1, maxLength: 4 }) }, { weight: 1, arbitrary: field }),
      prompt: fc.oneof(textArb, fc.array(fc.oneof(fc.integer({ min: -5, max: 200000 }), textArb), { maxLength: 3 }), field),
      temperature: number, top_p: number, top_k: number, min_p: number, repetition_penalty: number,
      presence_penalty: number, frequency_penalty: number, max_window_size: number, seed: number,
      max_tokens: number, max_completion_tokens: number, n: number,
      stop: fc.oneof(textArb, fc.array(textArb, { maxLength: 3 }), field),
      logit_bias: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom('0', '151643', '-1', '1e3', '999999'), fc.string({ maxLength: 4 })), number, { maxKeys: 3 }), field),
      tools: fc.oneof(fc.array(tool, { maxLength: 2 }), field),
      functions: fc.oneof(fc.array(tool.map((t) => t.function), { maxLength: 2 }), field),
      tool_choice: fc.oneof(fc.constantFrom('auto', 'none', 'required'), fc.record({ type: fc.constant('function'), function: fc.record({ name: fc.constantFrom('get', 'nope') }) }), field),
      stream: fc.oneof(fc.boolean(), field),
      stream_options: fc.oneof(fc.record({ include_usage: fc.oneof(fc.boolean(), field) }), field),
      echo: field, suffix: field, logprobs: field, user: field,
    },
    { requiredKeys: [] },
  );
  // mostly-valid requests, so the generation paths (streaming, stop strings, tools) run too
  const goodBody = fc.record(
    {
      messages: fc.array(fc.tuple(textArb, textArb), { minLength: 0, maxLength: 2 }).chain((turns) =>
        fc.tuple(fc.option(textArb), textArb).map(([system, q]) => [
          ...(system === null ? [] : [{ role: 'system', content: system }]),
          ...turns.flatMap(([u, a]) => [{ role: 'user', content: u }, { role: 'assistant', content: a }]),
          { role: 'user', content: q },
        ]),
      ),
      prompt: textArb,
      temperature: fc.constantFrom(0, 0.7, 1),
      max_tokens: fc.integer({ min: 1, max: 16 }),
      stop: fc.oneof(textArb, fc.array(textArb, { maxLength: 3 })),
      stream: fc.boolean(),
      stream_options: fc.record({ include_usage: fc.boolean() }),
      tools: fc.array(fc.record({ type: fc.constant('function'), function: fc.record({ name: fc.constantFrom('get_weather', 'search'), description: textArb, parameters: fc.constant({ type: 'object', properties: { q: { type: 'string' } } }) }) }), { maxLength: 2 }),
      seed: fc.integer(),
      logit_bias: fc.dictionary(fc.constantFrom('0', '151643', '100'), fc.integer({ min: -100, max: 100 }), { maxKeys: 2 }),
    },
    { requiredKeys: ['messages', 'prompt'] },
  );
  const rawBody = fc.oneof(
    { weight: 8, arbitrary: body.map((b) => enc.encode(JSON.stringify(b))) },
    { weight: 8, arbitrary: goodBody.map((b) => enc.encode(JSON.stringify(b))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 64 }).map((s) => enc.encode(s)) },
    { weight: 1, arbitrary: fc.nat({ max: 6000 }).map((n) => enc.encode(JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(n) }] }))) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => enc.encode(JSON.stringify(v))) },
  );
  const path = fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom('/v1/chat/completions', '/v1/completions') },
    { weight: 1, arbitrary: fc.constantFrom('/v1/models', '/v1/models/qwen', '/v1/models/..%2f..%2fetc%2fpasswd', '/v1/models/%ff', '/health', '/v1/../../etc/passwd', '/v1/chat/completions/', '//v1//chat', '/', '/v1/models/%2e%2e') },
    { weight: 1, arbitrary: fc.webPath() },
  );
  const method = fc.oneof({ weight: 10, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH') });
  const headers = fc.oneof({ weight: 6, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.record({ 'content-type': fc.constantFrom('application/json', 'text/plain', 'x'), 'content-length': fc.constantFrom('0', '5', '99999999', 'abc', '-1'), authorization: fc.constantFrom('Bearer x', '', 'Basic zz') }, { requiredKeys: [] }) });

  const prop = fc.asyncProperty(rawBody, path, method, headers, async (bytes, p, m, h) => {
    await meter.async(async () => {
      let req: Request;
      try {
        req = new Request(`http://localhost${p}`, { method: m, headers: h, body: m === 'GET' || m === 'HEAD' ? undefined : bytes });
      } catch {
        return; // fetch itself refuses this request: nothing reaches the handler
      }
      const res = await handler(req);
      const text = await res.text();
      check(res.status < 500, `status ${res.status} for ${m} ${p} ${new TextDecoder().decode(bytes).slice(0, 300)}: ${text.slice(0, 300)}`);
      if (res.status >= 400) meter.rejected++;
      if (res.status >= 400 && m !== 'HEAD') {
        const e = JSON.parse(text).error;
        check(typeof e?.message === 'string' && e.message.length > 0, `a ${res.status} explains itself`);
      }
      // an error after a stream started is an SSE event: it must not be a server error either
      check(!text.includes('"type":"server_error"'), `server_error inside a ${res.status} body: ${text.slice(0, 300)}`);
    }, () => false);
    return true;
  });
  return { name: 'server-requests', property: prop, meter };
}

/** Every target; `vocabulary` is the bytes of a real qwen.tiktoken. */
export function fuzzTargets(vocabulary: Uint8Array): Array<FuzzTarget & { meter: Meter }> {
  const tok = QwenTokenizer.fromTiktoken(vocabulary);
  return [
    safetensorsTarget(),
    safetensorsFileTarget(),
    indexTarget(),
    configTarget(),
    tiktokenTarget(),
    roundTripTarget(tok),
    makeContextTarget(tok),
    serverTarget(tok),
  ];
}

export async function runTarget(t: FuzzTarget & { meter: Meter }, numRuns: number, seed: number): Promise<FuzzResult> {
  const t0 = performance.now();
  const details = await fc.check(t.property as fc.IAsyncProperty<unknown>, { numRuns, seed, endOnFailure: false, verbose: false });
  const ms = performance.now() - t0;
  const r: FuzzResult = { target: t.name, runs: details.numRuns, seed, failed: details.failed, ms: Math.round(ms), slowestMs: Math.round(t.meter.slowest * 10) / 10, rejected: t.meter.rejected };
  if (details.failed) {
    r.counterexample = JSON.stringify(details.counterexample, (_k, v) => (v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('base64')}` : v))?.slice(0, 2000);
    r.error = String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance).slice(0, 2000);
  }
  return r;
}

async function main(): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '100000' }, seed: { type: 'string', default: '20261127' }, only: { type: 'string' }, vocab: { type: 'string' } },
  });
  const vocabPath = values.vocab ?? new URL('../../../shared/fixtures/models/qwen-tiny-int4/qwen.tiktoken', import.meta.url);
  const targets = fuzzTargets(new Uint8Array(readFileSync(vocabPath)));
  const only = values.only?.split(',');
  const results: FuzzResult[] = [];
  for (const t of targets) {
    if (only && !only.includes(t.name)) continue;
    const r = await runTarget(t, Number(values.runs), Number(values.seed));
    results.push(r);
    process.stdout.write(JSON.stringify({ bench: 'fuzz', ...r }) + '\n');
  }
  process.stdout.write('\ntarget               runs      rejected  slowest ms  total s  result\n');
  for (const r of results) {
    process.stdout.write(
      `${r.target.padEnd(20)} ${String(r.runs).padStart(7)}  ${String(r.rejected).padStart(9)}  ${r.slowestMs.toFixed(1).padStart(10)}  ${(r.ms / 1000).toFixed(1).padStart(7)}  ${r.failed ? 'FAILED' : 'ok'}\n`,
    );
    if (r.failed) process.stdout.write(`  counterexample: ${r.counterexample}\n  error: ${r.error}\n`);
  }
  if (results.some((r) => r.failed)) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
