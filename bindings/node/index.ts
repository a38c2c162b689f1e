// Node entry point: the core with Node's platform (fs ranged reads, worker_threads, Dawn WebGPU).
import type { Platform } from '../../src/platform.js';
import { loadModelOn, type LoadOptions } from '../../src/load.js';
import type { QwenModel } from '../../src/model/model.js';
import { createNodeWorker } from './cpuWorkers.js';
import { nodeGpu } from './gpu.js';
import { nodePlatform as basePlatform } from './platform.js';
import { patientPolling } from './patientPolling.js';

export * from '../../src/index.js';
export { serve, type ServeOptions, type RunningServer } from './server.js';

// Dawn in Node polls pending maps with setImmediate: decode readbacks are paced and long waits
// polled patiently (see Platform)
export const nodePlatform: Platform = {
  ...basePlatform,
  createWorker: createNodeWorker,
  gpu: nodeGpu,
  gpuPollsEventLoop: true,
  gpuWaitHooks: () => patientPolling(),
};

/** Loads a checkpoint directory, URL or `synthetic:<preset>` (default: the built-in tiny model). */
export function loadModel(source?: string, options?: LoadOptions): Promise<QwenModel> {
  return loadModelOn(nodePlatform, source, options);
}
