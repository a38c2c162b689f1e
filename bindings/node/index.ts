// Node entry point: the core with Node's platform (fs ranged reads, worker_threads, Dawn WebGPU).
export * from '../../src/index.js';
