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

let compiled: Promise<WebAssembly.Module> | undefined;

/** Compiles the kernel module once per process. */
export function kernelModule(): Promise<WebAssembly.Module> {
  compiled ??= WebAssembly.compile(decodeBase64(kernelsWasmBase64) as Uint8Array<ArrayBuffer>);
  return compiled;
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
