import { tmpdir } from 'node:os';
// Dawn's WebGPU for Node (the optional `webgpu` package). The object create() returns must stay
// reachable for the GPU's whole life (Dawn crashes if it is collected), so it is kept here.
let dawnGpu: GPU | undefined;
let tried: Promise<GPU | undefined> | undefined;

export interface NodeGpuOptions {
  /** Dawn options, e.g. ['enable-dawn-features=allow_unsafe_apis'] (first call wins). */
  dawnOptions?: string[];
}

/**
 * The WebGPU entry point, or undefined when the `webgpu` package or a Vulkan driver is missing.
 * With no GPU, `VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json` (set before the first
 * call) gives SwiftShader.
 */
export function nodeGpu(opts: NodeGpuOptions = {}): Promise<GPU | undefined> {
  tried ??= (async () => {
    try {
      // Mesa's Vulkan loader complains on stderr without it (headless machines, CI)
      process.env.XDG_RUNTIME_DIR ??= tmpdir();
      const mod = (await import('webgpu')) as { create(options: string[]): GPU; globals: Record<string, unknown> };
      // the WebGPU constants (GPUBufferUsage, …) as globals, without clobbering a host's own
      for (const [k, v] of Object.entries(mod.globals)) {
        if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
      }
      const gpu = mod.create(opts.dawnOptions ?? []);
      const adapter = await gpu.requestAdapter();
      if (!adapter) return undefined;
      dawnGpu = gpu;
      return gpu;
    } catch {
      return undefined;
    }
  })();
  return tried;
}

/** The GPU object from nodeGpu(), if created (kept alive for the process). */
export function heldNodeGpu(): GPU | undefined {
  return dawnGpu;
}
