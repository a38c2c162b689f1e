/**
 * Backend choice. 'auto' takes a real GPU adapter when one exists and the CPU otherwise; a
 * software adapter (SwiftShader, lavapipe) is used only when WebGPU is asked for by name.
 */
import { BackendError } from '../errors.js';
import type { Platform } from '../platform.js';
import type { Backend } from './backend.js';

/** A name, or a ready Backend instance (custom backends, tests). */
export type BackendChoice = 'auto' | 'cpu' | 'webgpu' | Backend;

export interface BackendOptions {
  threads?: number;
  /** see LoadOptions.gpuEmbeddingCopy (WebGpuOptions.embeddingMirror) */
  gpuEmbeddingCopy?: boolean;
}

export async function createBackend(platform: Platform, choice: BackendChoice, opts: BackendOptions = {}): Promise<Backend> {
  // Loaded on demand: a CPU-only run never evaluates GPU code, and bundles can split them.
  const cpu = async () => (await import('./cpu/index.js')).createCpuBackend({ threads: opts.threads, platform });
  const webgpu = async (gpu: GPU, allowSoftwareAdapter: boolean) =>
    (await import('./webgpu/index.js')).createWebGpuBackend(gpu, {
      allowSoftwareAdapter,
      pacedReadback: platform.gpuPollsEventLoop === true,
      waitHooks: platform.gpuWaitHooks?.(),
      embeddingMirror: opts.gpuEmbeddingCopy,
    });
  if (typeof choice === 'object' && choice !== null) return choice;
  switch (choice) {
    case 'cpu':
      return cpu();
    case 'webgpu': {
      const gpu = await platform.gpu?.();
      if (!gpu) throw new BackendError(`WebGPU is not available on ${platform.name} (no navigator.gpu / Dawn, or no Vulkan driver)`);
      return webgpu(gpu, true);
    }
    case 'auto': {
      const gpu = await platform.gpu?.().catch(() => undefined);
      if (gpu) {
        try {
          return await webgpu(gpu, false);
        } catch {
          // no real adapter: fall through to the CPU
        }
      }
      return cpu();
    }
    default:
      throw new BackendError(`unknown backend "${String(choice)}": expected auto, cpu or webgpu`);
  }
}
