/**
 * cachedFetchSource in Node (fetch + an in-memory CacheStorage with the Cache API's semantics for
 * what the source uses) against demo/serve.mjs: ranges across chunk boundaries, offline reads,
 * changed files, damaged entries, quota errors. The real Cache API is covered in chromium.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedFetchSource, QuotaError } from '../../bindings/browser/cachedFetchSource.js';
import { startServer, type TestServer } from './harness.js';

class MemCache {
  entries = new Map<string, Uint8Array>();
  failPut: ((key: string) => unknown) | undefined;
  private key(r: RequestInfo | URL): string {
    return typeof r === 'string' ? r : r instanceof URL ? r.href : r.url;
  }
  async match(r: RequestInfo | URL): Promise<Response | undefined> {
    const b = this.entries.get(this.key(r));
    return b ? new Response(b.slice()) : undefined;
  }
  async put(r: RequestInfo | URL, res: Response): Promise<void> {
    const e = this.failPut?.(this.key(r));
    if (e) throw e;
    this.entries.set(this.key(r), new Uint8Array(await res.arrayBuffer()));
  }
  async delete(r: RequestInfo | URL): Promise<boolean> {
    return this.entries.delete(this.key(r));
  }
  async keys(): Promise<Request[]> {
    return [...this.entries.keys()].map((k) => new Request(k));
  }
}
function memStorage(cache = new MemCache()) {
  return { cache, storage: { open: async () => cache, delete: async () => true } as unknown as CacheStorage };
}

const dir = mkdtempSync(join(tmpdir(), 'qwen-rt-cfs-'));
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (Math.imul(i + seed, 2654435761) >>> 24) & 255);
const FILE = 100_000; // 25 chunks of 4096 minus a tail
let data = bytes(FILE, 1);
let server: TestServer;
let base: string;
const gets = (since: number) => server.log.slice(since).filter((e) => e.method === 'GET' && e.path === '/m/w.bin');

beforeAll(async () => {
  writeFileSync(join(dir, 'w.bin'), data);
  server = await startServer({ mounts: { '/m/': dir } });
  base = `${server.url}/m/`;
});
afterAll(async () => {
  vi.unstubAllGlobals();
  await server?.close();
});

describe('cachedFetchSource', () => {
  it('serves any range across chunk boundaries, then from the cache only', async () => {
    const { storage, cache } = memStorage();
    const src = cachedFetchSource(base, { caches: storage, chunkSize: 4096, parallel: 3, manifest: false });
    expect(await src.size('w.bin')).toBe(FILE);
    expect(await src.size('absent.bin')).toBeUndefined();
    const ranges: Array<[number, number]> = [[0, 1], [4095, 2], [4000, 9000], [FILE - 5, 5], [12288, 4096], [0, FILE]];
    for (let i = 0; i < 30; i++) {
      const a = (i * 7919) % FILE;
      ranges.push([a, Math.min(FILE - a, (i * 104729) % 20000)]);
    }
    for (const [off, len] of ranges) {
      const dst = new Uint8Array(len);
      await src.read('w.bin', off, dst);
      expect(Buffer.compare(dst, data.subarray(off, off + len)), `bytes ${off}+${len}`).toBe(0);
    }
    expect(src.stats.bytesFetched).toBe(FILE); // every chunk fetched exactly once
    await expect(src.read('w.bin', FILE - 1, new Uint8Array(2))).rejects.toThrow(/past the end/);

    // a new source on the same cache with the server gone: offline, everything from the cache
    const mark = server.log.length;
    const offline = cachedFetchSource(base, { caches: storage, chunkSize: 4096, manifest: false, fetch: async () => { throw new TypeError('offline'); } });
    const all = new Uint8Array(FILE);
    await offline.read('w.bin', 0, all);
    expect(Buffer.compare(all, data)).toBe(0);
    expect(offline.stats.bytesFetched).toBe(0);
    expect(server.log.length).toBe(mark);
    expect([...cache.entries.keys()].filter((k) => k.includes('qwen-rt=chunk')).length).toBe(Math.ceil(FILE / 4096));
  });

  it('download() reports bytes and files; a damaged entry is refetched; a changed file drops its chunks', async () => {
    const { storage, cache } = memStorage();
    const src = cachedFetchSource(base, { caches: storage, chunkSize: 8192, parallel: 4, manifest: false });
    const seen: number[] = [];
    await src.download(['w.bin'], { onProgress: (p) => seen.push(p.bytesDone) });
    expect(seen[0]).toBe(0);
    expect(seen[seen.length - 1]).toBe(FILE);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));

    // truncate one stored chunk: it is detected by its length and fetched again
    const key = [...cache.entries.keys()].find((k) => k.endsWith('&i=3'))!;
    cache.entries.set(key, cache.entries.get(key)!.subarray(0, 100));
    const mark = server.log.length;
    const again = cachedFetchSource(base, { caches: storage, chunkSize: 8192, manifest: false });
    const dst = new Uint8Array(8192);
    await again.read('w.bin', 3 * 8192, dst);
    expect(Buffer.compare(dst, data.subarray(3 * 8192, 4 * 8192))).toBe(0);
    expect(gets(mark).map((e) => e.range)).toEqual([`bytes=${3 * 8192}-${4 * 8192 - 1}`]);

    // the file changes on the server (new ETag): revalidation forgets the old bytes
    data = bytes(FILE, 2);
    writeFileSync(join(dir, 'w.bin'), data);
    utimesSync(join(dir, 'w.bin'), new Date(), new Date(Date.now() + 5000));
    const fresh = cachedFetchSource(base, { caches: storage, chunkSize: 8192, manifest: false });
    const all = new Uint8Array(FILE);
    await fresh.read('w.bin', 0, all);
    expect(Buffer.compare(all, data)).toBe(0);
    expect(fresh.stats.bytesFetched).toBe(FILE);
  });

  it('quota problems are QuotaErrors that say what happened', async () => {
    const { storage, cache } = memStorage();
    cache.failPut = (k) => (k.includes('qwen-rt=chunk') ? new DOMException('The quota has been exceeded.', 'QuotaExceededError') : undefined);
    const src = cachedFetchSource(base, { caches: storage, chunkSize: 8192, manifest: false });
    const err = await src.download(['w.bin']).catch((e) => e);
    expect(err).toBeInstanceOf(QuotaError);
    expect(err.code).toBe('E_QUOTA');
    expect(err.message).toMatch(/w\.bin: the browser refused to store \d+ more bytes in the cache \(quota exceeded\).*clear/);

    // the storage estimate says it cannot fit: refused before any weight byte is fetched
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 9_000_000_000, quota: 9_000_050_000 }) } });
    const { storage: s2 } = memStorage();
    const mark = server.log.length;
    const err2 = await cachedFetchSource(base, { caches: s2, chunkSize: 8192, manifest: false }).download(['w.bin']).catch((e) => e);
    vi.unstubAllGlobals();
    expect(err2).toBeInstanceOf(QuotaError);
    expect(err2.message).toMatch(/needs 0\.00 GB more browser storage but only 0\.00 GB is left \(browser storage: 9\.00 GB used of 9\.00 GB/);
    expect(gets(mark)).toEqual([]);
  });

  it('without a CacheStorage it still reads correctly (plain ranged fetches, not persistent)', async () => {
    const src = cachedFetchSource(base, { caches: undefined, chunkSize: 4096, manifest: false });
    expect(src.persistent).toBe(false);
    const dst = new Uint8Array(10_000);
    await src.read('w.bin', 5000, dst);
    expect(Buffer.compare(dst, data.subarray(5000, 15_000))).toBe(0);
  });
});
