/**
 * Browser implementation of Platform.createWorker: a Web Worker from a Blob URL, only where shared
 * memory works (crossOriginIsolated); otherwise undefined and the CPU backend runs single-threaded.
 */
import type { WorkerLike } from '../../src/platform.js';

export function createBrowserWorker(code: string): WorkerLike | undefined {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: typeof Worker };
  if (!g.crossOriginIsolated || typeof g.Worker !== 'function' || typeof SharedArrayBuffer === 'undefined') return undefined;
  const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
  let w: Worker;
  try {
    w = new g.Worker(url);
  } finally {
    // the worker has fetched its script once constructed
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  return {
    postMessage: (message, transfer) => w.postMessage(message, transfer ?? []),
    onMessage: (handler) => w.addEventListener('message', (e) => handler(e.data)),
    onError: (handler) => w.addEventListener('error', (e) => handler(e)),
    terminate: () => w.terminate(),
  };
}
