// Browser entry point: the core with the browser platform (fetch ranges, Web Workers, navigator.gpu).
import type { Platform } from '../../src/platform.js';
import { loadModelOn, type LoadOptions } from '../../src/load.js';
import type { QwenModel } from '../../src/model/model.js';
import { createBrowserWorker } from './cpuWorkers.js';
import { browserGpu } from './gpu.js';
import { browserPlatform as basePlatform } from './platform.js';

export * from '../../src/index.js';
export { createBrowserPlatform } from './platform.js';
export { QwenWorkerClient, ChatStream, type ClientOptions, type ClientChatOptions } from './client.js';
export type { LoadedInfo, ChatDone, ProgressEvent as LoadProgressEvent, HelloEvent, BackendName } from './protocol.js';
export { cachedFetchSource, clearModelCache, QuotaError, type CachedFetchSource, type CachedFetchSourceOptions, type DownloadProgress } from './cachedFetchSource.js';

export const browserPlatform: Platform = { ...basePlatform, createWorker: createBrowserWorker, gpu: browserGpu };

/** Loads a checkpoint from a URL prefix (HF layout) or `synthetic:<preset>`. */
export function loadModel(source?: string, options?: LoadOptions): Promise<QwenModel> {
  return loadModelOn(browserPlatform, source, options);
}
