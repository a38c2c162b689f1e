/**
 * Adapter and device selection for the WebGPU backend: which adapter counts as real hardware,
 * which optional features we use, and the limits we ask for (always explicitly, up to the adapter's).
 */
import { BackendError } from '../../errors.js';

export interface AdapterChoice {
  /** Return false to skip an adapter (e.g. only real GPUs for backend 'auto'). */
  adapterFilter?: (info: GPUAdapterInfo, adapter: GPUAdapter) => boolean;
  powerPreference?: GPUPowerPreference;
  /** false: refuse software adapters (SwiftShader, lavapipe…) — what backend 'auto' wants. Default true. */
  allowSoftwareAdapter?: boolean;
}

/** SwiftShader, llvmpipe/lavapipe, WARP and other CPU implementations. */
export function isSoftwareAdapter(info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }, adapter?: GPUAdapter): boolean {
  const fallback = info.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter;
  if (fallback) return true;
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  return /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp|\bcpu\b/.test(text);
}

/** A one-line description of an adapter ("NVIDIA H100 80GB HBM3 (nvidia, hopper)"). */
export function describeAdapter(info: GPUAdapterInfo): string {
  const name = info.description || info.device || info.vendor || 'unknown GPU';
  const extra = [info.vendor, info.architecture].filter(Boolean).join(', ');
  return extra ? `${name} (${extra})` : name;
}

export interface DeviceSetup {
  adapter: GPUAdapter;
  device: GPUDevice;
  info: GPUAdapterInfo;
  features: { subgroups: boolean; timestamps: boolean; f16: boolean };
}

const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxDynamicStorageBuffersPerPipelineLayout',
  'maxDynamicUniformBuffersPerPipelineLayout',
  'maxUniformBufferBindingSize',
] as const;

export async function openDevice(gpu: GPU, choice: AdapterChoice = {}): Promise<DeviceSetup> {
  const adapter = await gpu.requestAdapter(choice.powerPreference ? { powerPreference: choice.powerPreference } : undefined);
  if (!adapter) throw new BackendError('webgpu: no GPU adapter available');
  const info = adapter.info;
  if (choice.allowSoftwareAdapter === false && isSoftwareAdapter(info, adapter)) {
    throw new BackendError(`webgpu: adapter ${describeAdapter(info)} is a software implementation (allowSoftwareAdapter is false)`);
  }
  if (choice.adapterFilter && !choice.adapterFilter(info, adapter)) {
    throw new BackendError(`webgpu: adapter ${describeAdapter(info)} rejected by the adapter filter`);
  }
  const want = (f: string) => adapter.features.has(f);
  const features = { subgroups: want('subgroups'), timestamps: want('timestamp-query'), f16: want('shader-f16') };
  const requiredFeatures: GPUFeatureName[] = [];
  if (features.subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  if (features.timestamps) requiredFeatures.push('timestamp-query');
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'qwen-rt' });
  } catch (e) {
    throw new BackendError(`webgpu: requestDevice failed on ${describeAdapter(info)}: ${(e as Error).message}`, { cause: e });
  }
  return { adapter, device, info, features };
}
