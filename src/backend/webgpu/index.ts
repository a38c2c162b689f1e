/**
 * WebGPU backend entry point. `createWebGpuBackend(gpu)` takes the platform's GPU object
 * (navigator.gpu, or Dawn's from bindings/node/gpu.ts) and returns a Backend.
 */
import type { Backend } from '../backend.js';
import { openDevice, describeAdapter, type AdapterChoice } from './device.js';
import { WebGpuBackend, type WebGpuOptions } from './backend.js';

export { isSoftwareAdapter, describeAdapter } from './device.js';
export type { AdapterChoice } from './device.js';
export { WebGpuBackend } from './backend.js';
export type { WebGpuOptions } from './backend.js';

export interface CreateWebGpuOptions extends AdapterChoice, WebGpuOptions {}

export async function createWebGpuBackend(gpu: GPU, opts: CreateWebGpuOptions = {}): Promise<Backend & WebGpuBackend> {
  const setup = await openDevice(gpu, opts);
  const f = setup.features;
  const feats = [f.subgroups && 'subgroups', f.timestamps && 'timestamp-query', f.f16 && 'shader-f16'].filter(Boolean).join(', ');
  const description = `webgpu: ${describeAdapter(setup.info)}${feats ? ` [${feats}]` : ''}`;
  return new WebGpuBackend(setup.device, description, f, opts);
}
