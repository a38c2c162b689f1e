/**
 * Node's Platform: checkpoint directories through fs ranged reads, the package's assets/ folder.
 * createWorker / gpu are added by the CPU and WebGPU bindings in their own files.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, freemem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { QwenRtError } from '../../src/errors.js';
import type { Platform } from '../../src/platform.js';
import { nodeFileSource } from './fileSource.js';

/**
 * assets/ sits at the package root: two levels above bindings/node (TS sources under vitest) and
 * three above dist/bindings/node (compiled). Pick the first candidate that exists.
 */
function assetsDir(): string {
  const candidates = ['../../assets/', '../../../assets/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((d) => existsSync(d)) ?? candidates[0];
}

export const nodePlatform: Platform = {
  name: 'node',
  async openSource(location: string) {
    return nodeFileSource(location);
  },
  hardwareConcurrency() {
    return availableParallelism();
  },
  // CPU weights live in wasm memories in this process: what the OS can still give (libuv reads
  // MemAvailable) within a cgroup limit. GPU memory is not observable from here: unknown.
  availableMemory(backend) {
    if (backend !== 'cpu') return undefined;
    const limit = process.constrainedMemory?.() ?? 0;
    const free = freemem();
    return limit > 0 ? Math.min(free, Math.max(0, limit - process.memoryUsage.rss())) : free;
  },
  async readAsset(name: string) {
    if (name.includes('/') || name.includes('\\') || name.startsWith('.')) {
      throw new QwenRtError('E_ASSET', `asset name must be a plain file name, got ${JSON.stringify(name)}`);
    }
    const path = assetsDir() + name;
    try {
      return new Uint8Array(await readFile(path));
    } catch (cause) {
      throw new QwenRtError('E_ASSET', `cannot read asset ${name} at ${path}: ${(cause as Error).message}`, { cause });
    }
  },
};
