// Platform-neutral public surface. bindings/node and bindings/browser re-export this with their
// Platform wired in (loadModel and the CLI live there).
export * from './errors.js';
export type { Backend } from './backend/backend.js';
export type { Platform } from './platform.js';
export type { QwenConfig, GenerationConfig } from './model/config.js';
