/**
 * A Qwen (v1) checkpoint: configs + validated weight headers + the vocabulary beside them.
 * openCheckpoint reads only small files and headers; tensor bytes are pulled later through the
 * TensorSources (a backend upload), which drive the progress callback.
 */
import type { LinearSource } from '../backend/backend.js';
import { CheckpointError, ConfigError } from '../errors.js';
import type { GenerationConfig, QwenConfig } from '../model/config.js';
import { parseGenerationConfig, parseJsonObject, parseQwenConfig } from './config.js';
import { qwenTensorLayout } from './layout.js';
import { tensorSource } from './safetensors.js';
import { readWhole, type FileSource, type TensorSource } from './source.js';
import { openWeightFiles } from './weights.js';

export const VOCABULARY_FILE = 'qwen.tiktoken';

export interface Checkpoint {
  readonly source: FileSource;
  readonly config: QwenConfig;
  readonly generationConfig: GenerationConfig;
  /** Sum of the bytes of every tensor in the weight files. */
  readonly totalBytes: number;
  tensorNames(): string[];
  has(name: string): boolean;
  /** CheckpointError if missing. */
  tensor(name: string): TensorSource;
  /** e.g. 'transformer.h.0.attn.c_attn' → dense {weight, bias?} or gptq {qweight, qzeros, scales, gIdx?, bias?}. */
  linear(prefix: string): LinearSource;
  /** Bytes of qwen.tiktoken beside the weights. */
  vocabulary(): Promise<Uint8Array>;
  /** Releases the source's open files (when it has any). */
  close(): Promise<void>;
}

export interface OpenCheckpointOptions {
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
}

/** Reads a small JSON file of the checkpoint, or undefined when absent. */
async function readJson(src: FileSource, file: string): Promise<Record<string, unknown> | undefined> {
  if ((await src.size(file)) === undefined) return undefined;
  return parseJsonObject(file, await readWhole(src, file));
}

/** The vocabulary file of a checkpoint (usable without opening the weights, e.g. for tokenize). */
export async function readVocabulary(src: FileSource): Promise<Uint8Array> {
  if ((await src.size(VOCABULARY_FILE)) === undefined) {
    throw new CheckpointError(`${src.location}: missing ${VOCABULARY_FILE} (the tokenizer vocabulary)`, { file: VOCABULARY_FILE });
  }
  return readWhole(src, VOCABULARY_FILE);
}

/** Parses config.json (+ quantize_config.json) and generation_config.json of a source. */
export async function readConfigs(src: FileSource): Promise<{ config: QwenConfig; generationConfig: GenerationConfig }> {
  const configJson = await readJson(src, 'config.json');
  if (!configJson) throw new CheckpointError(`${src.location}: missing config.json`, { file: 'config.json' });
  const config = parseQwenConfig(configJson, await readJson(src, 'quantize_config.json'));
  const generationConfig = parseGenerationConfig(await readJson(src, 'generation_config.json'));
  return { config, generationConfig };
}

export async function openCheckpoint(src: FileSource, opts: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  const { config, generationConfig } = await readConfigs(src);
  const weights = await openWeightFiles(src);

  const problems: string[] = [];
  let firstFile: string | undefined;
  let firstTensor: string | undefined;
  const q = config.quantization;
  if (q) {
    for (const [what, n] of [['hidden_size', config.hiddenSize], ['intermediate_size / 2', config.mlpWidth]] as const) {
      if (n % 8 !== 0) problems.push(`config.json: ${what} = ${n} must be a multiple of 8 for GPTQ int4 packing`);
    }
  }
  for (const spec of qwenTensorLayout(config)) {
    const got = weights.tensors.get(spec.name);
    const fail = (msg: string, file?: string) => {
      problems.push(msg);
      firstTensor ??= spec.name;
      firstFile ??= file;
    };
    if (!got) {
      if (spec.optional) continue;
      const hint = q && weights.tensors.has(spec.name.replace(/\.(qweight|qzeros|scales|g_idx)$/, '.weight'))
        ? ' (weights are not GPTQ-packed although config.json has quantization_config)'
        : !q && weights.tensors.has(spec.name.replace(/\.weight$/, '.qweight'))
          ? ' (weights are GPTQ-packed but config.json has no quantization_config)'
          : '';
      fail(`missing tensor "${spec.name}" [${spec.shape.join(', ')}] ${spec.dtypes.join('|')}${hint}`);
      continue;
    }
    const { entry, file } = got;
    const where = `${src.location}/${file.file}: tensor "${spec.name}"`;
    if (entry.shape.length !== spec.shape.length || entry.shape.some((d, i) => d !== spec.shape[i])) {
      fail(`${where} has shape [${entry.shape.join(', ')}], expected [${spec.shape.join(', ')}]`, file.file);
    }
    if (!spec.dtypes.includes(entry.dtype)) {
      fail(`${where} has dtype ${entry.dtype}, expected ${spec.dtypes.join(' or ')}`, file.file);
    }
  }
  if (problems.length) {
    const msg = problems.length === 1
      ? `${src.location}: ${problems[0]}`
      : `${src.location}: checkpoint does not match config.json (${problems.length} problems):\n  ${problems.join('\n  ')}`;
    throw new CheckpointError(msg, { file: firstFile, tensor: firstTensor, problems });
  }

  let totalBytes = 0;
  for (const { entry } of weights.tensors.values()) totalBytes += entry.end - entry.begin;
  let bytesDone = 0;
  const onRead = opts.onProgress
    ? (n: number) => {
        bytesDone = Math.min(totalBytes, bytesDone + n);
        opts.onProgress!({ bytesDone, bytesTotal: totalBytes });
      }
    : undefined;

  const sources = new Map<string, TensorSource>();
  const tensor = (name: string): TensorSource => {
    let s = sources.get(name);
    if (!s) {
      const got = weights.tensors.get(name);
      if (!got) throw new CheckpointError(`${src.location}: no tensor "${name}" in the checkpoint`, { tensor: name });
      s = tensorSource(src, got.file, got.entry, onRead);
      sources.set(name, s);
    }
    return s;
  };
  const optionalTensor = (name: string) => (weights.tensors.has(name) ? tensor(name) : undefined);

  const linear = (prefix: string): LinearSource => {
    const bias = optionalTensor(`${prefix}.bias`);
    if (weights.tensors.has(`${prefix}.qweight`)) {
      if (!q) throw new ConfigError('config.json', 'quantization_config', `present for the GPTQ tensor ${prefix}.qweight`, undefined);
      const qweight = tensor(`${prefix}.qweight`);
      const gIdx = optionalTensor(`${prefix}.g_idx`);
      const lin: LinearSource = {
        kind: 'gptq',
        inFeatures: qweight.shape[0] * 8,
        outFeatures: qweight.shape[1],
        bits: 4,
        groupSize: q.groupSize,
        qweight,
        qzeros: tensor(`${prefix}.qzeros`),
        scales: tensor(`${prefix}.scales`),
      };
      if (gIdx) lin.gIdx = gIdx;
      if (bias) lin.bias = bias;
      return lin;
    }
    const weight = tensor(`${prefix}.weight`);
    if (weight.shape.length !== 2) {
      throw new CheckpointError(`${src.location}: tensor "${weight.name}" must be 2-D for a linear, has shape [${weight.shape.join(', ')}]`, { tensor: weight.name });
    }
    const lin: LinearSource = { kind: 'dense', inFeatures: weight.shape[1], outFeatures: weight.shape[0], weight };
    if (bias) lin.bias = bias;
    return lin;
  };

  return {
    source: src,
    config,
    generationConfig,
    totalBytes,
    tensorNames: () => [...weights.tensors.keys()],
    has: (name) => weights.tensors.has(name),
    tensor,
    linear,
    vocabulary: () => readVocabulary(src),
    close: async () => {
      await src.close?.();
    },
  };
}
