// Browser entry point: the core with the browser platform (fetch ranges, Web Workers, navigator.gpu).
export * from '../../src/index.js';
