// Platform-neutral public surface. bindings/node and bindings/browser re-export this with their
// Platform wired in (loadModel lives there).
export * from './errors.js';
export type { Backend } from './backend/backend.js';
export type { BackendChoice } from './backend/select.js';
export type { Platform } from './platform.js';
export type { QwenConfig, GenerationConfig } from './model/config.js';
export { QwenModel, type ChatOptions, type ChatResult, type History, type GenerationStats } from './model/model.js';
export type { GenerationOptions } from './generate/options.js';
export type { KVCacheOptions } from './kv/cache.js';
export { DEFAULT_MODEL, loadModelOn, type LoadOptions, type LoadProgress } from './load.js';
export { QwenTokenizer } from './tokenizer/index.js';
export { makeContext, DEFAULT_SYSTEM } from './chat/makeContext.js';
export * from './server/index.js';
