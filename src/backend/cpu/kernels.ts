/**
 * The wasm kernel module: its exports as the host calls them, and compilation from the embedded
 * base64 (kernels.generated.ts) so src/ needs no file access.
 */
import { kernelsWasmBase64 } from './kernels.generated.js';

/** Every parallel kernel is fn(lo, hi, tid, ...args); pointers are byte offsets (u32). */
export type KernelFn = (...args: number[]) => number;

export const KERNEL_NAMES = [
  'denseF32',
  'denseF16',
  'denseBF16',
  'denseF16x',
  'absMax',
  'scaleInto',
  'gptqRetile',
  'gptqPrepI16',
  'gptqPrepF32',
  'gptqPrepS16',
  'gptqMatmulS16',
  'gptqMatmulS16M',
  'gptqMatmulI16',
  'gptqMatmulF32',
  'rmsNorm',
  'rope',
  'swiglu',
  'addInPlace',
  'embedF32',
  'embedF16',
  'embedBF16',
  'halfToF32',
  'kvQuant',
  'attention',
  'readProbe',
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

export interface KernelExports extends Record<KernelName, KernelFn> {
  kernelsVersion(): number;
  heapBase(): number;
}

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const compiled = new Map<boolean, Promise<WebAssembly.Module>>();

/**
 * The kernel module, compiled once per process. With `shared` false the memory import is patched
 * to a plain (unshared) memory — for pages without crossOriginIsolated, where SharedArrayBuffer
 * and shared memories do not exist; the kernels use no atomics, so nothing else changes.
 */
export function kernelModule(shared = true): Promise<WebAssembly.Module> {
  let m = compiled.get(shared);
  if (!m) {
    const bytes = decodeBase64(kernelsWasmBase64);
    if (!shared) unshareMemoryImport(bytes);
    m = WebAssembly.compile(bytes);
    compiled.set(shared, m);
  }
  return m;
}

/** Rewrites the limits flags of the `env.memory` import from shared+max (3) to max (1). */
function unshareMemoryImport(bytes: Uint8Array): void {
  const sig = [3, 0x65, 0x6e, 0x76, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2]; // "env" "memory" kind=memory
  for (let i = 8; i + sig.length < bytes.length; i++) {
    if (sig.every((b, j) => bytes[i + j] === b)) {
      const at = i + sig.length;
      if (bytes[at] !== 3) break;
      bytes[at] = 1;
      return;
    }
  }
  throw new Error('kernel module: env.memory import (shared, with maximum) not found');
}

export function kernelImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
    env: {
      memory,
      abort: () => {
        throw new Error('wasm kernel abort');
      },
    },
  };
}

export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const inst = new WebAssembly.Instance(module, kernelImports(memory));
  return inst.exports as unknown as KernelExports;
}
