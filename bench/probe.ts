/**
 * The roofline of each backend, measured in the same run as the model rows: a wasm SIMD read loop
 * on the CPU (same worker pool), a WGSL read kernel on the GPU (same device as the backend).
 */
import { cpuReadProbe } from './cpuProbe.js';
import { nodeGpu } from '../bindings/node/gpu.js';
import { shaders } from '../src/backend/webgpu/shaders.generated.js';
import { describeAdapter } from '../src/backend/webgpu/index.js';

export interface ProbeResult {
  threads: number;
  gbPerSecond: number;
  device: string;
}

export async function readProbe(backend: 'cpu' | 'webgpu', threads?: number): Promise<ProbeResult> {
  // 1 GiB: larger than any cache, like the weights a decode step streams
  if (backend === 'cpu') return cpuReadProbe(threads, 1 << 30, 2);
  return gpuReadProbe();
}

/** Streams a 1 GiB buffer `reps` times in one submission; GB/s from the wall clock of the batch. */
export async function gpuReadProbe(bytes = 1 << 30, reps = 20): Promise<ProbeResult> {
  const gpu = await nodeGpu();
  if (!gpu) throw new Error('no WebGPU (webgpu package / Vulkan driver missing)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter');
  const device = await adapter.requestDevice({
    requiredLimits: { maxBufferSize: Math.min(bytes, adapter.limits.maxBufferSize), maxStorageBufferBindingSize: Math.min(bytes, adapter.limits.maxStorageBufferBindingSize) },
  });
  const size = Math.min(bytes, device.limits.maxStorageBufferBindingSize) & ~15;
  const STORAGE = 0x80, UNIFORM = 0x40, COPY_DST = 0x08;
  const src = device.createBuffer({ size, usage: STORAGE });
  const out = device.createBuffer({ size: 16, usage: STORAGE });
  const uni = device.createBuffer({ size: 16, usage: UNIFORM | COPY_DST });
  device.queue.writeBuffer(uni, 0, new Uint32Array([size / 16, 0xdeadbeef, 0, 0]));
  const module = device.createShaderModule({ code: shaders.probe });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [0, 1, 2].map((binding) => ({ binding, resource: { buffer: [uni, out, src][binding] } })),
  });
  const groups = Math.min(65535, Math.ceil(size / 16 / 256 / 8));
  const run = async (n: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < n; i++) {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(groups);
      pass.end();
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run(2);
  const ms = await run(reps);
  const info = adapter.info ?? (await (adapter as unknown as { requestAdapterInfo(): Promise<GPUAdapterInfo> }).requestAdapterInfo());
  device.destroy();
  return { threads: 0, gbPerSecond: (reps * size) / (ms / 1000) / 1e9, device: describeAdapter(info) };
}
