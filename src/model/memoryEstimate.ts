/**
 * How much memory a model needs before any weight is uploaded: weights (as the checkpoint stores
 * them — backends keep that encoding), the KV cache for the requested context, and the activation
 * buffers of one prefill chunk. loadModel compares it with what the platform says is available and
 * fails early with the numbers, instead of dying halfway through a multi-GB upload.
 */
import { InsufficientMemoryError } from '../errors.js';
import type { KVCacheOptions } from '../kv/cache.js';
import type { QwenConfig } from './config.js';

export interface MemoryEstimate {
  weightBytes: number;
  kvBytes: number;
  activationBytes: number;
  totalBytes: number;
  /** Tokens of context the KV figure is for. */
  contextTokens: number;
}

export interface MemoryEstimateOptions {
  /**
   * Context to budget the KV cache for. Default: what was asked for with kvCache.window or
   * kvCache.maxSlots, else one cache chunk (256 slots) — the cache grows on demand, and budgeting
   * seq_length up front (3.4 GB of f32 KV for Qwen-14B) would refuse loads that run fine.
   */
  contextTokens?: number;
  kvCache?: KVCacheOptions;
  /** Rows per prefill chunk (default 256, as the executor). */
  prefillChunk?: number;
}

const MiB = 1024 * 1024;
const align64 = (n: number) => Math.ceil(n / 64) * 64;

/** `weightBytes`: the checkpoint's tensor bytes (Checkpoint.totalBytes). */
export function estimateMemory(config: QwenConfig, weightBytes: number, opts: MemoryEstimateOptions = {}): MemoryEstimate {
  const { hiddenSize: H, mlpWidth: I, vocabSize: V, numLayers: L, numHeads: heads } = config;
  const kv = opts.kvCache ?? {};
  const chunk = kv.chunk ?? 256;
  const wanted = opts.contextTokens ?? kv.window ?? kv.maxSlots ?? chunk;
  // the cache grows in whole chunks (capped by window / maxSlots), as KVCache.reserve does
  let slots = Math.ceil(wanted / chunk) * chunk;
  if (kv.window !== undefined) slots = Math.min(slots, kv.window);
  if (kv.maxSlots !== undefined) slots = Math.min(slots, kv.maxSlots);
  const perLayer = kv.quant === 'int8' ? 2 * align64(slots * H) + 2 * slots * heads * 8 : 2 * align64(slots * H * 4);
  const kvBytes = L * perLayer;
  // executor state for one chunk (x, xb, qkv, att, out, h1, h2) + last + logits + attention scores
  const rows = Math.min(opts.prefillChunk ?? 256, Math.max(1, wanted));
  const activationBytes = 4 * (rows * (7 * H + 2 * I) + H + V + rows * slots);
  return { weightBytes, kvBytes, activationBytes, totalBytes: weightBytes + kvBytes + activationBytes, contextTokens: wanted };
}

const mib = (n: number) => `${(n / MiB).toFixed(n < 10 * MiB ? 2 : 0)} MiB`;

/**
 * Throws InsufficientMemoryError when `estimate` exceeds `availableBytes` (undefined: unknown, no
 * check). `where` names the model and backend in the message.
 */
export function checkMemory(estimate: MemoryEstimate, availableBytes: number | undefined, where: string): void {
  if (availableBytes === undefined || !Number.isFinite(availableBytes) || estimate.totalBytes <= availableBytes) return;
  throw new InsufficientMemoryError(
    `${where}: needs about ${mib(estimate.totalBytes)} (weights ${mib(estimate.weightBytes)} + KV cache for ${estimate.contextTokens} tokens ` +
      `${mib(estimate.kvBytes)} + activations ${mib(estimate.activationBytes)}) but only ${mib(availableBytes)} is available` +
      ' (use a smaller or quantized model, a shorter context: kvCache.maxSlots / kvCache.window, or kvCache.quant "int8")',
    estimate.totalBytes,
    availableBytes,
  );
}
