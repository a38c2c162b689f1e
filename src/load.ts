/**
 * loadModel: source → checkpoint (validated) → tokenizer → backend → weights → QwenModel.
 * Platform-neutral; bindings/node and bindings/browser call it with their Platform.
 */
import type { Backend } from './backend/backend.js';
import { createBackend, type BackendChoice } from './backend/select.js';
import { ArgumentError } from './errors.js';
import { openCheckpoint } from './io/checkpoint.js';
import { openSource } from './io/open.js';
import { DEFAULT_MODEL } from './io/synthetic.js';
import type { KVCacheOptions } from './kv/cache.js';
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
  onProgress?: (p: LoadProgress) => void;
  kvCache?: KVCacheOptions;
  /** Tokens per prefill chunk (default 256). */
  prefillChunk?: number;
  signal?: AbortSignal;
}

/** The built-in default model: seeded random weights of a real layout, no download needed. */
export { DEFAULT_MODEL };

export async function loadModelOn(platform: Platform, source: string = DEFAULT_MODEL, options: LoadOptions = {}): Promise<QwenModel> {
  if (typeof source !== 'string' || source.length === 0) throw new ArgumentError('model source must be a non-empty string');
  const src = await openSource(source, platform);
  const ckpt = await openCheckpoint(src, {
    onProgress: options.onProgress && ((p) => options.onProgress!({ phase: 'weights', ...p })),
  });
  const tokenizer = QwenTokenizer.fromTiktoken(await ckpt.vocabulary());
  const backend: Backend = await createBackend(platform, options.backend ?? 'auto', { threads: options.threads });
  try {
    const weights = await uploadWeights(backend, ckpt, options.signal);
    return new QwenModel(backend, tokenizer, ckpt, weights, { prefillChunk: options.prefillChunk, kvCache: options.kvCache });
  } catch (e) {
    await backend.dispose();
    throw e;
  } finally {
    await ckpt.close();
  }
}
