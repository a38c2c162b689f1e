/**
 * loadModel: source → checkpoint (validated) → tokenizer → backend → weights → QwenModel.
 * Platform-neutral; bindings/node and bindings/browser call it with their Platform.
 */
import type { Backend } from './backend/backend.js';
import { createBackend, type BackendChoice } from './backend/select.js';
import { ArgumentError } from './errors.js';
import { openCheckpoint, type Checkpoint } from './io/checkpoint.js';
import { openSource } from './io/open.js';
import { DEFAULT_MODEL } from './io/synthetic.js';
import type { KVCacheOptions } from './kv/cache.js';
import { checkMemory, estimateMemory } from './model/memoryEstimate.js';
import { QwenModel } from './model/model.js';
import { uploadWeights } from './model/weights.js';
import type { Platform } from './platform.js';
import { QwenTokenizer } from './tokenizer/index.js';

export interface LoadProgress {
  phase: 'weights';
  bytesDone: number;
  bytesTotal: number;
}

export interface LoadOptions {
  backend?: BackendChoice;
  /** CPU threads (default: available cores). */
  threads?: number;
  /**
   * WebGPU: whether large embedding tables (Qwen-7B/14B: 1.24 / 1.56 GB), which start in host
   * memory, are copied to the GPU during the first few hundred generated tokens (no host round
   * trip between greedy steps afterwards: 14B on the H200 ≈ 0.2 ms a token faster, +1.56 GB).
   * Default false: GPU memory stays at weights + cache.
   */
  gpuEmbeddingCopy?: boolean;
  onProgress?: (p: LoadProgress) => void;
  kvCache?: KVCacheOptions;
  /** Tokens per prefill chunk (default 256). */
  prefillChunk?: number;
  signal?: AbortSignal;
  /** Under backend 'auto': told when a lost GPU device moved the engine to the CPU. */
  onFailover?: (cause: Error) => void;
  /** Run every GPU kernel once before returning (QwenModel.warmUp; default true, no-op on the CPU). */
  warmUp?: boolean;
}

/** The built-in default model: seeded random weights of a real layout, no download needed. */
export { DEFAULT_MODEL };

export async function loadModelOn(platform: Platform, source: string = DEFAULT_MODEL, options: LoadOptions = {}): Promise<QwenModel> {
  if (typeof source !== 'string' || source.length === 0) throw new ArgumentError('model source must be a non-empty string');
  const src = await openSource(source, platform);
  let ckpt: Checkpoint;
  let tokenizer: QwenTokenizer;
  let backend: Backend;
  const choice = options.backend ?? 'auto';
  try {
    ckpt = await openCheckpoint(src, {
      onProgress: options.onProgress && ((p) => options.onProgress!({ phase: 'weights', ...p })),
    });
    tokenizer = QwenTokenizer.fromTiktoken(await ckpt.vocabulary());
    backend = await createBackend(platform, choice, { threads: options.threads, gpuEmbeddingCopy: options.gpuEmbeddingCopy });
  } catch (e) {
    await src.close?.(); // a bad checkpoint must not leak its open files
    throw e;
  }
  // Under 'auto' on a GPU, a lost device hands the conversation to the CPU: keep the checkpoint
  // open so the fallback can stream the weights again.
  const canFailOver = choice === 'auto' && backend.kind === 'webgpu';
  let keepOpen = false;
  try {
    // Fail before uploading anything when weights + KV for the context cannot fit (numbers in the error).
    const estimate = estimateMemory(ckpt.config, ckpt.totalBytes, { kvCache: options.kvCache, prefillChunk: options.prefillChunk });
    checkMemory(estimate, platform.availableMemory?.(backend.kind), `${source} on ${backend.kind}`);
    const weights = await uploadWeights(backend, ckpt, options.signal);
    const model = new QwenModel(backend, tokenizer, ckpt, weights, {
      prefillChunk: options.prefillChunk,
      kvCache: options.kvCache,
      fallback: canFailOver
        ? async () => {
            const cpu = await createBackend(platform, 'cpu', { threads: options.threads });
            return { backend: cpu, weights: await uploadWeights(cpu, ckpt) };
          }
        : undefined,
      onFailover: options.onFailover,
      onDispose: canFailOver ? () => ckpt.close() : undefined,
    });
    if (options.warmUp !== false) await model.warmUp();
    keepOpen = canFailOver;
    return model;
  } catch (e) {
    await backend.dispose();
    throw e;
  } finally {
    if (!keepOpen) await ckpt.close();
  }
}
