/**
 * What the platform-neutral core needs from its host. bindings/node and bindings/browser each
 * provide one; nothing under src/ touches node:* or DOM globals directly except through this.
 */
import type { FileSource } from './io/source.js';

/** The subset of the Worker API the CPU thread pool uses (Node worker_threads or Web Workers). */
export interface WorkerLike {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Receives the worker's messages (message data, not an event). */
  onMessage(handler: (data: unknown) => void): void;
  onError(handler: (error: unknown) => void): void;
  terminate(): Promise<void> | void;
}

/** enter() when a GPU wait starts, leave() when it ends (waits may overlap). */
export interface GpuWaitHooks {
  enter(): void;
  leave(): void;
}

export interface Platform {
  readonly name: 'node' | 'browser';
  /** A checkpoint directory / URL prefix as a ranged byte source. */
  openSource(location: string): Promise<FileSource>;
  /** Logical cores available for CPU threads. */
  hardwareConcurrency(): number;
  /**
   * Starts a worker running `code` (a self-contained ES module source string), or returns
   * undefined when workers with shared memory are unavailable (then the CPU runs single-threaded).
   */
  createWorker?(code: string): WorkerLike | undefined;
  /** Bytes of a file shipped in the package's assets/ folder (e.g. "qwen.tiktoken.gz"). */
  readAsset(name: string): Promise<Uint8Array>;
  /** The WebGPU entry point (navigator.gpu or Dawn's), if any. */
  gpu?(): Promise<GPU | undefined>;
  /**
   * True where a pending WebGPU map is polled from the event loop (Dawn in Node polls with
   * setImmediate and allocates while it spins): the WebGPU backend then waits for a decode
   * token's readback only from shortly before it is due (WebGpuOptions.pacedReadback).
   */
  readonly gpuPollsEventLoop?: boolean;
  /**
   * Called around every WebGPU wait (readback maps, queue drains): Node uses it to slow Dawn's
   * event-loop polling once a wait has lasted a while (bindings/node/patientPolling.ts).
   */
  gpuWaitHooks?(): GpuWaitHooks;
  /**
   * Bytes a backend of this kind may still allocate, or undefined when unknown. loadModel checks
   * its memory estimate (weights + KV + activations) against it before uploading anything.
   */
  availableMemory?(backend: 'cpu' | 'webgpu'): number | undefined;
}
