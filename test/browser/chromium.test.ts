/**
 * End to end in headless Chromium: the bundle (dist/browser) served with COOP/COEP by demo/serve.mjs,
 * the engine in a module Worker, the fixture checkpoint qwen-tiny-int4 loaded from its URL through
 * the Cache API source. Greedy chat.json on WebGPU (SwiftShader) and on the wasm CPU backend must
 * give the golden token ids; a reload must not download again; an interrupted download resumes
 * without fetching stored chunks twice; a manifest's sha256 is enforced; abort stops an answer;
 * the demo page works and is screenshotted (test/browser/artifacts/demo.png, git-ignored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { QwenTokenizer } from '../../src/tokenizer/index.js';
import { golden, modelDir } from '../support/fixtures.js';
import { buildBundle, launch, ROOT, startServer, type Browser, type LogEntry, type TestServer } from './harness.js';

const MODEL = 'qwen-tiny-int4' as const;
const MODEL_URL = `/fixtures/models/${MODEL}/`;
const WEIGHTS = 'model.safetensors';
const WEIGHTS_SIZE = statSync(join(modelDir(MODEL), WEIGHTS)).size;
const CHUNK = 4 << 20; // 19 chunks of the 78 MB weights: enough to interrupt and resume
const ARTIFACTS = join(ROOT, 'test/browser/artifacts');
/** Time limit of the WebGPU (SwiftShader) tests: CPU-bound, and `npm test` runs 2 files at once. */
const SLOW_MS = 300_000;
const chat = golden(MODEL, 'chat');
const tok = QwenTokenizer.fromTiktoken(readFileSync(join(modelDir(MODEL), 'qwen.tiktoken')));

interface ChatCase {
  name: string;
  system: string;
  history: Array<[string, string]>;
  query: string;
  generation: { repetition_penalty: number; max_new_tokens: number; max_window_size: number };
  output_ids: number[];
  response: string;
}
const cases = chat.cases as ChatCase[];

/** The clean response: decode up to the first <|im_end|>/<|im_start|>, EOS dropped, strip(). */
function cleanResponse(ids: number[]): string {
  const end = ids.findIndex((id) => id === tok.imEnd || id === tok.imStart);
  const kept = end >= 0 ? ids.slice(0, end) : ids.filter((id) => id !== tok.endOfText);
  return tok.decode(kept).trim();
}

let server: TestServer;
let browser: Browser;
/** Extra responses tests install (fault injection). */
let fault: ((entry: LogEntry, req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => boolean) | undefined;

const requestsTo = (path: string, since: number) => server.log.slice(since).filter((e) => e.path === path);

/** Runs fn(qwenModule, arg) in the page (a string, so vitest's transform does not touch its import()). */
async function inPage<T>(fn: string, arg?: unknown, page = browser.page): Promise<T> {
  const expr = `(async () => { const qwen = await import('/dist/browser/index.js'); return (${fn})(qwen, ${JSON.stringify(arg ?? null)}); })()`;
  return page.evaluate(expr) as Promise<T>;
}

beforeAll(async () => {
  buildBundle();
  const fixtureDir = modelDir(MODEL);
  const weights = readFileSync(join(fixtureDir, WEIGHTS));
  const sha = createHash('sha256').update(weights).digest('hex');
  const manifest = (hash: string) => JSON.stringify({ files: { [WEIGHTS]: { size: weights.length, sha256: hash } } });
  server = await startServer({
    // the same checkpoint under more URLs: separate cache entries per test
    mounts: { '/resume/': fixtureDir, '/signed/': fixtureDir, '/badsig/': fixtureDir, '/ui/': fixtureDir, '/abortload/': fixtureDir },
    files: {
      '/signed/qwen-rt.manifest.json': manifest(sha),
      '/badsig/qwen-rt.manifest.json': manifest(sha.replace(/^./, (c) => (c === '0' ? '1' : '0'))),
    },
    onRequest: (req, res, entry) => fault?.(entry, req, res) ?? false,
  });
  browser = await launch();
  await browser.page.goto(`${server.url}/demo/`);
  await browser.page.waitForSelector('body[data-ready]', { timeout: 60_000 });
}, 120_000);

afterAll(async () => {
  if (browser && process.env.QWEN_BROWSER_LOG) console.log(browser.messages.join('\n'));
  await browser?.close();
  await server?.close();
});

describe('engine worker in headless Chromium', () => {
  it('the page is crossOriginIsolated and the worker sees a WebGPU adapter', async () => {
    const hello = await inPage<{ crossOriginIsolated: boolean; webgpu: boolean; adapter: string; softwareAdapter: boolean; pageIsolated: boolean }>(`async (q) => {
      const c = await q.QwenWorkerClient.create();
      const h = c.hello;
      await c.dispose();
      return { ...h, pageIsolated: globalThis.crossOriginIsolated };
    }`);
    expect(hello.pageIsolated).toBe(true);
    expect(hello.crossOriginIsolated).toBe(true);
    expect(hello.webgpu).toBe(true);
    expect(hello.adapter).toMatch(/swiftshader/i);
    expect(hello.softwareAdapter).toBe(true);
  });

  for (const backend of ['webgpu', 'cpu'] as const) {
    it(`greedy chat.json on ${backend}: golden token ids, clean responses, streamed deltas add up`, async () => {
      const before = server.log.length;
      const r = await inPage<{ info: any; results: any[] }>(`async (q, { url, backend, cases, chunk }) => {
        const c = await q.QwenWorkerClient.create();
        try {
          const info = await c.load(url, { backend, cache: { chunkSize: chunk } });
          const results = [];
          for (const k of cases) {
            const s = c.chatStream(k.query, {
              history: k.history, system: k.system, doSample: false,
              repetitionPenalty: k.generation.repetition_penalty,
              maxNewTokens: k.generation.max_new_tokens, maxWindowSize: k.generation.max_window_size,
            });
            let streamed = '';
            for await (const d of s) streamed += d;
            results.push({ ...(await s.result), streamed, streamTokens: s.tokens });
          }
          return { info, results };
        } finally {
          await c.dispose();
        }
      }`, { url: MODEL_URL, backend, cases, chunk: CHUNK });
      expect(r.info.backend).toBe(backend);
      expect(r.info.crossOriginIsolated).toBe(true);
      if (backend === 'webgpu') expect(r.info.description).toMatch(/swiftshader/i);
      else expect(r.info.threads).toBeGreaterThan(1); // isolated page: wasm threads
      expect(r.results).toHaveLength(cases.length);
      cases.forEach((c, i) => {
        const got = r.results[i];
        expect(got.tokens, `${c.name} token ids`).toEqual(c.output_ids);
        expect(got.streamTokens, `${c.name} streamed ids`).toEqual(c.output_ids);
        expect(got.response, `${c.name} response`).toBe(cleanResponse(c.output_ids));
        expect(got.streamed, `${c.name} deltas`).toBe(got.response);
        expect(got.history).toEqual([...c.history, [c.query, got.response]]);
        expect(got.finishReason).toBe(c.output_ids.includes(tok.imEnd) ? 'stop' : 'length');
      });
      // the weights came through ranged requests (the first test downloads; the second may hit the cache)
      for (const e of requestsTo(`${MODEL_URL}${WEIGHTS}`, before)) if (e.method === 'GET') expect(e.range).toMatch(/^bytes=\d+-\d+$/);
    }, SLOW_MS); // SwiftShader: ~25-50 s alone for the whole chat.json on this 2-core machine, more beside other test files
  }

  it('a reload loads from the Cache API: no weight bytes from the network, and the same answer', async () => {
    // make sure it is cached (the chat tests above did; this load is a no-op download if so)
    await inPage(`async (q, { url, chunk }) => { const c = await q.QwenWorkerClient.create(); await c.load(url, { backend: 'cpu', cache: { chunkSize: chunk } }); await c.dispose(); }`,
      { url: MODEL_URL, chunk: CHUNK });
    await browser.page.reload();
    await browser.page.waitForSelector('body[data-ready]');
    const mark = server.log.length;
    const c = cases[0];
    const r = await inPage<{ info: any; tokens: number[] }>(`async (q, { url, k, chunk }) => {
      const c = await q.QwenWorkerClient.create();
      const info = await c.load(url, { backend: 'cpu', cache: { chunkSize: chunk } });
      const r = await c.chat(k.query, { doSample: false, repetitionPenalty: k.generation.repetition_penalty, maxNewTokens: k.generation.max_new_tokens });
      await c.dispose();
      return { info, tokens: r.tokens };
    }`, { url: MODEL_URL, k: c, chunk: CHUNK });
    const weightGets = requestsTo(`${MODEL_URL}${WEIGHTS}`, mark).filter((e) => e.method === 'GET');
    expect(weightGets, 'GETs of the weights after the reload').toEqual([]);
    const bodyBytes = server.log.slice(mark).filter((e) => e.path.startsWith(MODEL_URL)).reduce((s, e) => s + e.bytes, 0);
    expect(bodyBytes, 'checkpoint body bytes served after the reload').toBe(0);
    expect(r.info.bytesFetched).toBe(0);
    expect(r.info.bytesFromCache).toBeGreaterThanOrEqual(WEIGHTS_SIZE);
    expect(r.tokens).toEqual(c.output_ids);

    // revalidate: false trusts the cache completely: not even a HEAD
    const mark2 = server.log.length;
    await inPage(`async (q, { url, chunk }) => { const c = await q.QwenWorkerClient.create(); await c.load(url, { backend: 'cpu', cache: { chunkSize: chunk, revalidate: false } }); await c.dispose(); }`,
      { url: MODEL_URL, chunk: CHUNK });
    expect(server.log.slice(mark2).filter((e) => e.path.startsWith(MODEL_URL))).toEqual([]);
  });

  it('an interrupted download resumes: stored chunks are not fetched again, progress counts bytes and files', async () => {
    const url = '/resume/';
    const path = `${url}${WEIGHTS}`;
    let served = 0;
    // the network drops after 6 chunks of the weights
    fault = (entry, req, res) => {
      if (entry.path !== path || req.method !== 'GET' || !req.headers.range) return false;
      if (++served <= 6) return false;
      entry.status = -1;
      res.destroy();
      return true;
    };
    const mark = server.log.length;
    const first = await inPage<{ code: string; message: string; progress: any[] }>(`async (q, { url, chunk }) => {
      const c = await q.QwenWorkerClient.create();
      const progress = [];
      try {
        await c.load(url, { backend: 'cpu', cache: { chunkSize: chunk, parallel: 2 }, onProgress: (p) => progress.push(p) });
        return { code: 'none', message: 'loaded', progress };
      } catch (e) {
        return { code: e.code, message: e.message, progress };
      } finally {
        await c.dispose();
      }
    }`, { url, chunk: CHUNK });
    fault = undefined;
    expect(first.code).toBe('E_CHECKPOINT');
    expect(first.message).toContain(path);
    const okFirst = requestsTo(path, mark).filter((e) => e.method === 'GET' && e.status === 206).map((e) => e.range);
    expect(okFirst.length).toBeGreaterThanOrEqual(6);

    const mark2 = server.log.length;
    const second = await inPage<{ info: any; progress: any[]; tokens: number[] }>(`async (q, { url, chunk, k }) => {
      const c = await q.QwenWorkerClient.create();
      const progress = [];
      const info = await c.load(url, { backend: 'cpu', cache: { chunkSize: chunk, parallel: 3 }, onProgress: (p) => progress.push(p) });
      const r = await c.chat(k.query, { doSample: false, repetitionPenalty: k.generation.repetition_penalty, maxNewTokens: k.generation.max_new_tokens });
      await c.dispose();
      return { info, progress, tokens: r.tokens };
    }`, { url, chunk: CHUNK, k: cases[1] });
    const again = requestsTo(path, mark2).filter((e) => e.method === 'GET').map((e) => e.range);
    // nothing stored in the first attempt is fetched again, and together they cover the file once
    expect(again.filter((r) => okFirst.includes(r))).toEqual([]);
    const total = Math.ceil(WEIGHTS_SIZE / CHUNK);
    expect(new Set([...okFirst, ...again]).size).toBe(total);
    expect(okFirst.length + again.length).toBe(total);
    const dl = second.progress.filter((p) => p.phase === 'download');
    expect(dl[0].bytesDone).toBeGreaterThanOrEqual(6 * CHUNK); // resumed, not restarted
    const last = dl[dl.length - 1];
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(last.filesDone).toBe(last.filesTotal);
    expect(last.filesTotal).toBeGreaterThanOrEqual(4); // configs, vocabulary, weights
    expect(second.progress.some((p) => p.phase === 'weights' && p.bytesDone === p.bytesTotal)).toBe(true);
    expect(second.tokens).toEqual(cases[1].output_ids);
  });

  it('a manifest sha256 is checked before use: a match loads, a mismatch is refused and discarded', async () => {
    const ok = await inPage<{ backend: string }>(`async (q) => {
      const c = await q.QwenWorkerClient.create();
      try { return await c.load('/signed/', { backend: 'cpu', cache: { chunkSize: 8 << 20 } }); } finally { await c.dispose(); }
    }`);
    expect(ok.backend).toBe('cpu');
    const bad = await inPage<{ code: string; message: string; left: number }>(`async (q) => {
      const c = await q.QwenWorkerClient.create();
      let err;
      try { await c.load('/badsig/', { backend: 'cpu', cache: { chunkSize: 8 << 20 } }); } catch (e) { err = e; }
      await c.dispose();
      const cache = await caches.open('qwen-rt-models-v1');
      const left = (await cache.keys()).filter((r) => r.url.includes('/badsig/model.safetensors?qwen-rt=chunk')).length;
      return { code: err?.code, message: err?.message, left };
    }`);
    expect(bad.code).toBe('E_CHECKPOINT');
    expect(bad.message).toMatch(/sha256 [0-9a-f]{64} does not match/);
    expect(bad.left, 'chunks of the refused file left in the cache').toBe(0);
  });

  it('abort stops an answer mid-way; the model keeps working', async () => {
    const k = cases[0]; // 48 tokens with no stop at repetition penalty 1.1
    const r = await inPage<{ aborted: any; after: number[]; deltas: number }>(`async (q, { url, k, k2, chunk }) => {
      const c = await q.QwenWorkerClient.create();
      await c.load(url, { backend: 'webgpu', cache: { chunkSize: chunk } });
      let deltas = 0;
      const s = c.chatStream(k.query, { doSample: false, repetitionPenalty: k.generation.repetition_penalty, maxNewTokens: 400 });
      for await (const _ of s) { if (++deltas === 3) s.abort(); }
      const aborted = await s.result;
      const after = (await c.chat(k2.query, { history: k2.history, system: k2.system, doSample: false, repetitionPenalty: k2.generation.repetition_penalty, maxNewTokens: k2.generation.max_new_tokens })).tokens;
      await c.dispose();
      return { aborted, after, deltas };
    }`, { url: MODEL_URL, k, k2: cases[3], chunk: CHUNK });
    expect(r.aborted.finishReason).toBe('abort');
    expect(r.aborted.tokens.length).toBeGreaterThanOrEqual(3);
    expect(r.aborted.tokens.length).toBeLessThan(48);
    expect(r.aborted.tokens).toEqual(k.output_ids.slice(0, r.aborted.tokens.length));
    expect(r.aborted.response).toBe(tok.decode(r.aborted.tokens).trim());
    expect(r.after).toEqual(cases[3].output_ids); // a fresh turn after the aborted one (history case)
  }, SLOW_MS);

  it('a load can be aborted mid-download (E_ABORTED); the next load resumes it', async () => {
    const r = await inPage<{ code: string; fetched: number; info: any }>(`async (q, { chunk }) => {
      const c = await q.QwenWorkerClient.create();
      const ctl = new AbortController();
      let code = 'none';
      try {
        await c.load('/abortload/', { backend: 'cpu', cache: { chunkSize: chunk, parallel: 1 }, signal: ctl.signal,
          onProgress: (p) => { if (p.phase === 'download' && p.bytesFetched >= 2 * chunk) ctl.abort(); } });
      } catch (e) { code = e.code; }
      const info = await c.load('/abortload/', { backend: 'cpu', cache: { chunkSize: chunk } });
      await c.dispose();
      return { code, info };
    }`, { chunk: CHUNK });
    expect(r.code).toBe('E_ABORTED');
    expect(r.info.bytesFetched).toBeGreaterThan(0);
    expect(r.info.bytesFetched).toBeLessThanOrEqual(WEIGHTS_SIZE - 2 * CHUNK + 4e6); // configs + vocabulary at most
  });

  it('a page that is not crossOriginIsolated says so and runs the CPU backend on one thread', async () => {
    fault = (entry, req, res) => {
      if (entry.path === '/demo/' && req.url?.includes('plain=1')) {
        res.removeHeader('Cross-Origin-Opener-Policy');
        res.removeHeader('Cross-Origin-Embedder-Policy');
      }
      return false;
    };
    const page = await browser.ctx.newPage();
    try {
      await page.goto(`${server.url}/demo/?plain=1`);
      await page.waitForSelector('body[data-ready]');
      expect(await page.textContent('#env')).toMatch(/crossOriginIsolated: NO — wasm runs single-threaded/);
      const k = cases[3];
      const r = await inPage<{ info: any; tokens: number[] }>(`async (q, { url, k }) => {
        const c = await q.QwenWorkerClient.create();
        const info = await c.load(url, { backend: 'cpu' });
        const r = await c.chat(k.query, { history: k.history, system: k.system, doSample: false, repetitionPenalty: k.generation.repetition_penalty, maxNewTokens: k.generation.max_new_tokens });
        await c.dispose();
        return { info, tokens: r.tokens };
      }`, { url: MODEL_URL, k }, page);
      expect(r.info.crossOriginIsolated).toBe(false);
      expect(r.info.threads).toBe(1);
      expect(r.tokens).toEqual(k.output_ids);
    } finally {
      fault = undefined;
      await page.close();
    }
  });

  it('errors cross the worker as {code, message}', async () => {
    const r = await inPage<Array<{ code: string; message: string }>>(`async (q) => {
      const c = await q.QwenWorkerClient.create();
      const out = [];
      for (const f of [
        () => c.chat('hi'),
        () => c.load('/fixtures/models/no-such-model/', { backend: 'cpu' }),
        () => c.load('synthetic:tiny-int4', { backend: 'nonsense' }),
      ]) {
        try { await f(); out.push({ code: 'none', message: '' }); } catch (e) { out.push({ code: e.code, message: e.message }); }
      }
      await c.dispose();
      return out;
    }`);
    expect(r[0]).toEqual({ code: 'E_ARGUMENT', message: expect.stringMatching(/no model loaded/) });
    expect(r[1].code).toBe('E_CHECKPOINT');
    expect(r[1].message).toMatch(/no-such-model.*config\.json/);
    expect(r[2].code).toBe('E_BACKEND');
  });
});

describe('demo page', () => {
  it('loads a model from its URL, streams a greedy answer with history and tok/s, stops, shows errors; screenshot', async () => {
    const page = browser.page;
    await page.goto(`${server.url}/demo/`);
    await page.waitForSelector('body[data-ready]');
    expect(await page.textContent('#env')).toMatch(/crossOriginIsolated: yes.*WebGPU adapter: yes — .*swiftshader.*software/);
    // a bad URL: the error is shown
    await page.fill('#model-url', '/fixtures/models/missing/');
    await page.selectOption('#backend', 'cpu');
    await page.click('#load');
    await page.waitForFunction(() => document.getElementById('error')!.textContent !== '');
    expect(await page.textContent('#error')).toMatch(/^E_CHECKPOINT: .*missing.*config\.json/);

    await page.fill('#model-url', '/ui/');
    await page.click('#load');
    await page.waitForFunction(() => document.body.dataset.backend === 'cpu', undefined, { timeout: 60_000 });
    expect(await page.textContent('#status')).toMatch(/loaded in .* on cpu — wasm simd, 2 threads/);
    expect(await page.textContent('#error')).toBe('');
    expect(await page.getAttribute('#progress', 'value')).toBe('1');

    const k = cases[0];
    await page.fill('#query', k.query);
    await page.click('#send');
    await page.waitForFunction(() => document.body.dataset.turns === '1', undefined, { timeout: 60_000 });
    const answer = await page.$eval('.msg.assistant', (el) => el.firstChild?.textContent ?? '');
    expect(answer).toBe(cleanResponse(k.output_ids));
    expect(await page.textContent('.msg.assistant .meta')).toMatch(/^48 tokens · \d+(\.\d+)? tok\/s/);

    // a second turn carries the history (chat.json's chained case); stop it mid-way
    await page.fill('#max-tokens', '400');
    await page.fill('#query', '继续说。');
    // press Stop as soon as the first words of the answer show (an observer, not a polling race)
    await page.evaluate(() => {
      const chat = document.getElementById('chat')!;
      const obs = new MutationObserver(() => {
        if ((document.querySelectorAll('.msg.assistant')[1]?.textContent ?? '').length > 0) {
          obs.disconnect();
          document.getElementById('stop')!.click();
        }
      });
      obs.observe(chat, { childList: true, subtree: true, characterData: true });
    });
    await page.click('#send');
    await page.waitForFunction(() => document.body.dataset.turns === '2', undefined, { timeout: 60_000 });
    expect(await page.textContent('.msg.assistant:nth-of-type(4) .meta')).toMatch(/stopped/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'demo.png'), fullPage: true });
    expect(statSync(join(ARTIFACTS, 'demo.png')).size).toBeGreaterThan(10_000);
  });
});
