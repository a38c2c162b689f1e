/**
 * The CPU backend in headless Chromium: Web Workers from Blob URLs over shared wasm memories
 * (crossOriginIsolated through COOP/COEP), on the page's main thread (no Atomics.wait there: the
 * pool spins) and inside a module Worker (the normal browser setup), and on a page without
 * isolation (no SharedArrayBuffer: plain memories, one thread). Every run must give the same bits
 * as the same computation in Node.
 *
 * The page loads the TypeScript sources transpiled on request (no bundler needed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { chromium, type BrowserContext } from 'playwright-core';
import { createCpuBackend } from '../../src/backend/cpu/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Page/worker program: builds the same small int4 + f16 workload and returns its outputs. */
const PROGRAM = `
import { createCpuBackend } from '/src/backend/cpu/index.js';
import { createBrowserWorker } from '/bindings/browser/cpuWorkers.js';
${workload.toString()}
export async function run(threads) {
  const platform = { name: 'browser', hardwareConcurrency: () => 2, createWorker: createBrowserWorker };
  const b = await createCpuBackend({ threads, platform });
  try {
    return { description: b.description, out: Array.from(await workload(b)) };
  } finally {
    await b.dispose();
  }
}
`;

/** Runs where it is stringified too: no imports, no closures. */
async function workload(b: import('../../src/backend/backend.js').Backend): Promise<Float32Array> {
  const rnd = (n: number, seed: number) => {
    let s = seed >>> 0;
    return Float32Array.from({ length: n }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 31 - 1;
    });
  };
  const tensor = (name: string, dtype: 'I32' | 'F16' | 'F32', shape: number[], bytes: Uint8Array) => ({
    name, dtype, shape, byteLength: bytes.byteLength,
    async read(offset: number, dst: Uint8Array) { dst.set(bytes.subarray(offset, offset + dst.length)); },
  });
  const inF = 256, outF = 96, rows = 3;
  const words = new Int32Array((inF / 8) * outF).map((_, i) => Math.imul(i + 1, 2654435761));
  const zeros = new Int32Array((inF / 128) * (outF / 8)).map((_, i) => Math.imul(i + 7, 40503));
  const scales = new Uint16Array((inF / 128) * outF).map((_, i) => 0x2000 + ((i * 37) & 0x3ff));
  const dense = new Uint16Array(outF * inF).map((_, i) => 0x2400 | ((Math.imul(i, 2654435761) >>> 20) & 0x83ff));
  const at = { layer: 0 };
  const q = await b.uploadLinear({
    kind: 'gptq', inFeatures: inF, outFeatures: outF, bits: 4, groupSize: 128,
    qweight: tensor('qweight', 'I32', [inF / 8, outF], new Uint8Array(words.buffer)),
    qzeros: tensor('qzeros', 'I32', [inF / 128, outF / 8], new Uint8Array(zeros.buffer)),
    scales: tensor('scales', 'F16', [inF / 128, outF], new Uint8Array(scales.buffer)),
  }, at);
  const d = await b.uploadLinear({ kind: 'dense', inFeatures: inF, outFeatures: outF, weight: tensor('w', 'F16', [outF, inF], new Uint8Array(dense.buffer)) }, at);
  const x = b.alloc(rows * inF, at);
  b.write(x, rnd(rows * inF, 3));
  const y1 = b.alloc(rows * outF, at);
  const y2 = b.alloc(rows * outF, at);
  b.matmul(y1, x, q, rows);
  b.matmul(y2, x, d, rows);
  b.add(y1, y2, rows * outF);
  return b.read(y1, 0, rows * outF);
}

let server: Server;
let context: BrowserContext;
let origin: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    if (url.pathname === '/' || url.pathname === '/plain.html') {
      // /plain.html: no COOP/COEP, so no crossOriginIsolated and no SharedArrayBuffer
      res.writeHead(200, url.pathname === '/' ? { ...headers, 'Content-Type': 'text/html' } : { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>cpu</title>');
      return;
    }
    if (url.pathname === '/program.js') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' });
      res.end(ts.transpileModule(PROGRAM, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText);
      return;
    }
    if (url.pathname === '/worker.js') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' });
      res.end(`import { run } from '/program.js'; self.onmessage = async (e) => { try { self.postMessage(await run(e.data)); } catch (err) { self.postMessage({ error: String(err && err.stack || err) }); } };`);
      return;
    }
    // /src/…/x.js → transpiled /src/…/x.ts
    const file = join(ROOT, url.pathname.replace(/\.js$/, '.ts'));
    if (!file.startsWith(ROOT) || !existsSync(file)) {
      res.writeHead(404, headers);
      res.end();
      return;
    }
    const js = ts.transpileModule(readFileSync(file, 'utf8'), { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
    res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' });
    res.end(js);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  context = await chromium.launchPersistentContext('', {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}, 60000);

afterAll(async () => {
  await context?.close();
  await new Promise((r) => server?.close(r));
});

describe('cpu backend in Chromium', () => {
  it('page main thread and module worker: 1 and 2 threads bitwise equal, and equal to Node', async () => {
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error', e));
    await page.goto(`${origin}/`);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    type Out = { description: string; out: number[]; error?: string };
    // a string: the test transform would rewrite an import() inside a function
    const onPage = (threads: number) => page.evaluate(`import('/program.js').then((m) => m.run(${threads}))`) as Promise<Out>;
    const inWorker = (threads: number) =>
      page.evaluate(
        (t) =>
          new Promise<Out>((resolve) => {
            const w = new Worker('/worker.js', { type: 'module' });
            w.onmessage = (e) => {
              resolve(e.data);
              w.terminate();
            };
            w.postMessage(t);
          }),
        threads,
      );
    const results = [await onPage(1), await onPage(2), await inWorker(1), await inWorker(2)];
    for (const r of results) expect(r.error).toBeUndefined();
    expect(results[1].description).toMatch(/2 threads/);
    expect(results[3].description).toMatch(/2 threads/);
    const node = await createCpuBackend({ threads: 1 });
    const want = Array.from(await workload(node));
    await node.dispose();
    expect(want.some((v) => v !== 0)).toBe(true);
    for (const r of results) expect(r.out).toEqual(want);
    await page.close();

    // a page that is not cross-origin isolated: plain memories, one thread, same bits
    const plain = await context.newPage();
    await plain.goto(`${origin}/plain.html`);
    expect(await plain.evaluate('typeof SharedArrayBuffer')).toBe('undefined');
    const r = (await plain.evaluate(`import('/program.js').then((m) => m.run(2))`)) as Out;
    expect(r.description).toMatch(/1 thread, 1 unshared memory/);
    expect(r.out).toEqual(want);
    await plain.close();
  }, 120000);
});
