/**
 * Compiled kernels, created on first use and cached by (file, entry, defines, values). A shader
 * may pull shared code from another wgsl file with a `//#include name` line.
 * Every kernel binds its parameters at binding 0 (a 256-byte slot of the uniform ring, dynamic
 * offset); other bindings are storage buffers: 'r' read-only, 'w' read-write, 'rd' read-only
 * with a dynamic offset into the ring (inline data such as token ids).
 */
import { STAGE_COMPUTE } from './consts.js';
import { BackendError } from '../../errors.js';
import { preprocess } from './preprocess.js';
import { SLOT, DYN_WINDOW, type BindKind, type Kernel } from './recorder.js';
import { shaders } from './shaders.generated.js';

export interface KernelSpec {
  file: string;
  entry: string;
  defines?: readonly string[];
  values?: Record<string, string | number>;
  bindings: Record<number, BindKind>;
}

/** wgsl/<file>.wgsl with each `//#include name` line replaced by wgsl/<name>.wgsl (one level). */
function withIncludes(file: string): string {
  const src = shaders[file];
  if (src === undefined) throw new BackendError(`webgpu: shader ${file}.wgsl is missing from the bundle (run npm run build:gen)`);
  return src.replace(/^[ \t]*\/\/#include (\w+)[ \t]*$/gm, (_, name: string) => {
    const inc = shaders[name];
    if (inc === undefined) throw new BackendError(`webgpu: ${file}.wgsl includes ${name}.wgsl, which is missing from the bundle`);
    return inc;
  });
}

export class KernelCache {
  private readonly cache = new Map<string, Kernel>();
  private nextId = 1;
  constructor(private readonly device: GPUDevice) {}

  get(spec: KernelSpec): Kernel {
    // the bindings belong to the key: one shader may be bound two ways (e.g. embed's ids from
    // the params ring or from a buffer)
    const key = `${spec.file}:${spec.entry}:${(spec.defines ?? []).join(',')}:${JSON.stringify(spec.values ?? {})}:${JSON.stringify(spec.bindings)}`;
    let k = this.cache.get(key);
    if (k) return k;
    const code = preprocess(withIncludes(spec.file), spec.defines, spec.values);
    const label = `${spec.file}.${spec.entry}${spec.defines?.length ? `[${spec.defines.join(',')}]` : ''}`;
    const module = this.device.createShaderModule({ code, label });
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: STAGE_COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: SLOT } },
    ];
    const bindings = new Map<number, BindKind>();
    for (const [b, kind] of Object.entries(spec.bindings).sort((x, y) => Number(x[0]) - Number(y[0]))) {
      const binding = Number(b);
      bindings.set(binding, kind);
      entries.push({
        binding,
        visibility: STAGE_COMPUTE,
        buffer:
          kind === 'w'
            ? { type: 'storage' }
            : kind === 'rd'
              ? { type: 'read-only-storage', hasDynamicOffset: true, minBindingSize: DYN_WINDOW }
              : { type: 'read-only-storage' },
      });
    }
    const layout = this.device.createBindGroupLayout({ entries, label });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout], label }),
      compute: { module, entryPoint: spec.entry },
      label,
    });
    k = { id: this.nextId++, label, pipeline, layout, bindings, slots: [...bindings.keys()], kinds: [...bindings.values()] };
    this.cache.set(key, k);
    return k;
  }
}
