/**
 * Node implementation of Platform.createWorker for the CPU backend's thread pool: a
 * worker_threads Worker evaluating the platform-neutral worker source behind a tiny shim that
 * gives it the `{ post, listen }` host the source expects (Web Workers have `self` instead).
 */
import { Worker } from 'node:worker_threads';
import type { WorkerLike } from '../../src/platform.js';

const SHIM = `const { parentPort } = require('node:worker_threads');
globalThis.__qwenWorkerHost = { post: (m) => parentPort.postMessage(m), listen: (f) => parentPort.on('message', f) };
`;

export function createNodeWorker(code: string): WorkerLike {
  const w = new Worker(SHIM + code, { eval: true });
  // idle pool workers must not keep the process alive
  w.unref();
  return {
    postMessage: (message, transfer) => w.postMessage(message, transfer as never),
    onMessage: (handler) => void w.on('message', handler),
    onError: (handler) => void w.on('error', handler),
    terminate: async () => {
      await w.terminate();
    },
  };
}
