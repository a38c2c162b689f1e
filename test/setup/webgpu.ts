/**
 * WebGPU for tests: Dawn (npm `webgpu`) on SwiftShader when no GPU driver is configured.
 * VK_ICD_FILENAMES must be set before Dawn loads, so import this before anything that loads it.
 */
import { existsSync } from 'node:fs';
import { nodeGpu } from '../../bindings/node/gpu.js';
import { createWebGpuBackend, type CreateWebGpuOptions } from '../../src/backend/webgpu/index.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}
process.env.XDG_RUNTIME_DIR ??= '/tmp';

/** A WebGPU backend on this machine's adapter; throws (never skips) when none exists. */
export async function testWebGpu(opts: CreateWebGpuOptions = {}): Promise<WebGpuBackend> {
  const gpu = await nodeGpu();
  if (!gpu) {
    throw new Error(
      `no WebGPU adapter: install the webgpu package, chromium-common and libvulkan1 (SwiftShader at ${SWIFTSHADER_ICD})`,
    );
  }
  return createWebGpuBackend(gpu, opts);
}
