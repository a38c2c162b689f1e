/**
 * A FileSource over a URL prefix that keeps what it downloads in the browser's Cache API, one
 * entry per fixed-size chunk of each file, so that
 * - a reload reads the weights from disk instead of the network (only a HEAD per file, to notice
 *   a changed file; none with revalidate: false, and offline the cache is trusted);
 * - an interrupted download resumes: chunks already stored are never fetched again;
 * - no buffer is ever larger than one chunk (default 16 MiB), whatever the file size.
 * download() fetches whole files with `parallel` ranged requests and reports progress; read()
 * serves ranges from the cache and fetches missing chunks on demand (with read-ahead).
 * Sizes are checked against the server (and an optional manifest, `qwen-rt.manifest.json`:
 * {"files": {"model.safetensors": {"size": n, "sha256": "…"}}}); a file with a sha256 is hashed
 * once after download and not served until it matches.
 */
import { CheckpointError, QwenRtError } from '../../src/errors.js';
import type { FileSource } from '../../src/io/source.js';
import { fetchSource, type FetchSourceOptions } from './fetchSource.js';
import { Sha256 } from './sha256.js';

export const DEFAULT_CACHE_NAME = 'qwen-rt-models-v1';
export const MANIFEST_FILE = 'qwen-rt.manifest.json';
const MiB = 1024 * 1024;

/** Browser storage is full (Cache API QuotaExceededError) or too small for the download. */
export class QuotaError extends QwenRtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_QUOTA', message, options);
  }
}

export interface DownloadProgress {
  /** Bytes of the requested files present in the cache (fetched now or earlier). */
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  /** Bytes fetched from the network by this download() call. */
  bytesFetched: number;
}

export interface CachedFetchSourceOptions extends FetchSourceOptions {
  /** Cache API bucket (default qwen-rt-models-v1). */
  cacheName?: string;
  /** Bytes per cached chunk and per ranged request (default 16 MiB). */
  chunkSize?: number;
  /** Concurrent ranged requests (default 4). */
  parallel?: number;
  /** HEAD each file once per source to notice changes (default true). */
  revalidate?: boolean;
  /** Manifest file name beside the checkpoint, or false for none (default qwen-rt.manifest.json). */
  manifest?: string | false;
  /** CacheStorage to use (default globalThis.caches; undefined → no persistence, plain ranged reads). */
  caches?: CacheStorage;
  /** Aborts every network request of this source. */
  signal?: AbortSignal;
}

interface FileMeta {
  size: number | null;
  etag?: string | null;
  chunkSize: number;
  /** sha256 this file's cached chunks were verified against. */
  verified?: string;
}

interface ManifestEntry {
  size?: number;
  sha256?: string;
}

export interface CachedFetchSource extends FileSource {
  /** Whether a persistent cache is in use. */
  readonly persistent: boolean;
  readonly stats: { bytesFetched: number; bytesFromCache: number; requests: number };
  /** Files whose size was asked for and that exist (what a checkpoint open touched). */
  knownFiles(): string[];
  /** Ensures `names` are fully cached (and verified); progress after every chunk. */
  download(names: string[], opts?: { onProgress?: (p: DownloadProgress) => void; signal?: AbortSignal }): Promise<void>;
}

const KEY_PARAM = 'qwen-rt';

function isQuota(e: unknown): boolean {
  const n = (e as { name?: string } | null)?.name;
  return n === 'QuotaExceededError' || (e as { code?: number } | null)?.code === 22;
}

async function storageNote(): Promise<string> {
  const est = await (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage?.estimate?.().catch(() => undefined);
  if (!est || est.quota === undefined) return '';
  const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
  return ` (browser storage: ${gb(est.usage ?? 0)} used of ${gb(est.quota)} allowed for this site)`;
}

export function cachedFetchSource(baseUrl: string, opts: CachedFetchSourceOptions = {}): CachedFetchSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  // an explicit `caches: undefined` turns persistence off
  const storage = 'caches' in opts ? opts.caches : (globalThis as { caches?: CacheStorage }).caches;
  const cacheName = opts.cacheName ?? DEFAULT_CACHE_NAME;
  const defaultChunk = opts.chunkSize ?? 16 * MiB;
  if (!(Number.isInteger(defaultChunk) && defaultChunk >= 4096)) throw new QwenRtError('E_ARGUMENT', `chunkSize must be an integer ≥ 4096, got ${defaultChunk}`);
  const parallel = Math.max(1, Math.floor(opts.parallel ?? 4));
  const revalidate = opts.revalidate ?? true;
  const baseFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const stats = { bytesFetched: 0, bytesFromCache: 0, requests: 0 };
  let extraSignal: AbortSignal | undefined;
  const countingFetch: typeof fetch = (input, init) => {
    stats.requests++;
    const signals = [opts.signal, extraSignal, init?.signal ?? undefined].filter((s): s is AbortSignal => !!s);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    return baseFetch(input, { ...init, signal });
  };
  const net = fetchSource(base, { headers: opts.headers, fetch: countingFetch });
  const urlOf = (name: string) => new URL(name.split('/').map(encodeURIComponent).join('/'), base).href;
  const metaKey = (name: string) => `${urlOf(name)}?${KEY_PARAM}=meta`;
  const chunkKey = (name: string, m: FileMeta, i: number) => `${urlOf(name)}?${KEY_PARAM}=chunk&size=${m.chunkSize}&i=${i}`;

  let cachePromise: Promise<Cache | undefined> | undefined;
  const cache = () =>
    (cachePromise ??= storage ? storage.open(cacheName).catch(() => undefined) : Promise.resolve(undefined));

  const put = async (name: string, key: string, body: BodyInit, bytes: number) => {
    const c = await cache();
    if (!c) return;
    try {
      await c.put(key, new Response(body));
    } catch (e) {
      if (isQuota(e)) {
        throw new QuotaError(`${urlOf(name)}: the browser refused to store ${bytes} more bytes in the cache (quota exceeded)${await storageNote()}; ` +
          'free disk space, clear the model cache (clearModelCache) or load with the cache disabled', { cause: e });
      }
      throw e;
    }
  };

  // ---- manifest (optional sizes and hashes) ----
  const manifestName = opts.manifest === false ? undefined : (opts.manifest ?? MANIFEST_FILE);
  let manifestPromise: Promise<Map<string, ManifestEntry>> | undefined;
  const manifest = () =>
    (manifestPromise ??= (async () => {
      const out = new Map<string, ManifestEntry>();
      if (opts.manifest === false) return out;
      const file = opts.manifest ?? MANIFEST_FILE;
      // cached like any file (an absent manifest too), so revalidate: false needs no request
      const m = await meta(file);
      if (m.size === null) return out;
      const bytes = new Uint8Array(m.size);
      await readFrom(file, m, 0, bytes);
      let json: { files?: Record<string, ManifestEntry> };
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch (e) {
        throw new CheckpointError(`${urlOf(file)}: not valid JSON (${(e as Error).message})`, { file });
      }
      for (const [name, ent] of Object.entries(json.files ?? {})) {
        if (ent.size !== undefined && !(Number.isInteger(ent.size) && ent.size >= 0)) throw new CheckpointError(`${urlOf(file)}: files["${name}"].size must be a byte count`, { file });
        if (ent.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(ent.sha256)) throw new CheckpointError(`${urlOf(file)}: files["${name}"].sha256 must be 64 hex digits`, { file });
        out.set(name, { size: ent.size, sha256: ent.sha256?.toLowerCase() });
      }
      return out;
    })());

  // ---- per-file metadata ----
  const metas = new Map<string, Promise<FileMeta>>();
  const head = async (name: string): Promise<{ size: number | undefined; etag: string | null }> => {
    const res = await countingFetch(urlOf(name), { method: 'HEAD', headers: opts.headers });
    if (res.status === 404 || res.status === 410) return { size: undefined, etag: null };
    if (!res.ok) throw new CheckpointError(`${urlOf(name)}: HEAD returned HTTP ${res.status} ${res.statusText}`, { file: name });
    const etag = res.headers.get('etag');
    const len = res.headers.get('content-length');
    const enc = res.headers.get('content-encoding');
    if (len !== null && /^\d+$/.test(len) && (!enc || enc === 'identity')) return { size: Number(len), etag };
    // no usable content-length: fetchSource probes with a 1-byte ranged GET
    return { size: await net.size(name), etag };
  };
  const loadMeta = async (name: string): Promise<FileMeta> => {
    const c = await cache();
    const hit = await c?.match(metaKey(name));
    const cached: FileMeta | undefined = hit ? await hit.json().catch(() => undefined) : undefined;
    if (cached && !revalidate) return cached;
    let fresh: { size: number | undefined; etag: string | null };
    try {
      fresh = await head(name);
    } catch (e) {
      if (cached) return cached; // offline: trust the cache
      throw e;
    }
    const expected = name === manifestName ? undefined : (await manifest()).get(name);
    if (fresh.size !== undefined && expected?.size !== undefined && expected.size !== fresh.size) {
      throw new CheckpointError(`${urlOf(name)}: the server has ${fresh.size} bytes, the manifest says ${expected.size}`, { file: name });
    }
    if (cached && cached.size === (fresh.size ?? null) && (!fresh.etag || !cached.etag || fresh.etag === cached.etag)) return cached;
    // new or changed on the server: forget the old chunks
    if (cached && c && cached.size !== null) {
      const n = Math.ceil(cached.size / cached.chunkSize);
      for (let i = 0; i < n; i++) await c.delete(chunkKey(name, cached, i));
    }
    const meta: FileMeta = { size: fresh.size ?? null, etag: fresh.etag, chunkSize: defaultChunk };
    await put(name, metaKey(name), JSON.stringify(meta), 256);
    return meta;
  };
  const meta = (name: string): Promise<FileMeta> => {
    let m = metas.get(name);
    if (!m) {
      m = loadMeta(name);
      metas.set(name, m);
      m.catch(() => metas.delete(name));
    }
    return m;
  };

  // ---- chunks ----
  const inflight = new Map<string, Promise<Uint8Array>>();
  const prefetching = new Map<string, Promise<unknown>>();
  /** Chunk keys known to be stored (read-ahead skips them). */
  const stored = new Set<string>();
  const recent: Array<{ key: string; bytes: Uint8Array }> = [];
  const remember = (key: string, bytes: Uint8Array) => {
    recent.push({ key, bytes });
    if (recent.length > 2) recent.shift();
  };
  const chunkRange = (m: FileMeta, i: number) => {
    const start = i * m.chunkSize;
    return { start, length: Math.min(m.chunkSize, m.size! - start) };
  };
  const fetchChunk = async (name: string, m: FileMeta, i: number): Promise<Uint8Array> => {
    const { start, length } = chunkRange(m, i);
    const bytes = new Uint8Array(length);
    await net.read(name, start, bytes); // checks status 206, Content-Range and the exact length
    stats.bytesFetched += length;
    await put(name, chunkKey(name, m, i), bytes, length);
    stored.add(chunkKey(name, m, i));
    return bytes;
  };
  /** A cached chunk of the right length, or undefined (a wrong-length entry is dropped). */
  const cachedChunk = async (name: string, m: FileMeta, i: number): Promise<Uint8Array | undefined> => {
    const c = await cache();
    const key = chunkKey(name, m, i);
    const hit = await c?.match(key);
    if (!hit) return undefined;
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if (bytes.length === chunkRange(m, i).length) {
      stored.add(key);
      return bytes;
    }
    await c!.delete(key);
    return undefined;
  };
  const chunk = (name: string, m: FileMeta, i: number, fromNetwork = true): Promise<Uint8Array> => {
    const key = chunkKey(name, m, i);
    const mem = recent.find((r) => r.key === key);
    if (mem) return Promise.resolve(mem.bytes);
    let p = inflight.get(key);
    if (!p) {
      p = (async () => {
        await prefetching.get(key)?.catch(() => undefined);
        const hit = await cachedChunk(name, m, i);
        if (hit) {
          stats.bytesFromCache += hit.length;
          return hit;
        }
        if (!fromNetwork) throw new CheckpointError(`${urlOf(name)}: chunk ${i} is not cached`, { file: name });
        return fetchChunk(name, m, i);
      })();
      inflight.set(key, p);
      p.then((b) => remember(key, b), () => undefined).finally(() => inflight.delete(key));
    }
    return p;
  };

  /** Puts chunk i into the cache without keeping its bytes. */
  const prefetch = (name: string, m: FileMeta, i: number) => {
    const key = chunkKey(name, m, i);
    const p = (async () => {
      const c = await cache();
      const hit = await c?.match(key);
      if (hit) {
        await hit.body?.cancel();
        stored.add(key);
        return new Uint8Array(0);
      }
      return fetchChunk(name, m, i);
    })();
    // a chunk() of this key waits for it, then reads the stored entry
    prefetching.set(key, p);
    p.catch(() => undefined).finally(() => prefetching.delete(key));
  };

  /** Bytes [offset, offset + dst.length) of a file from its chunks (no hash check). */
  const readFrom = async (name: string, m: FileMeta, offset: number, dst: Uint8Array): Promise<void> => {
    if (m.size === null) throw new CheckpointError(`${urlOf(name)}: missing file`, { file: name });
    const end = offset + dst.length;
    if (offset < 0 || end > m.size) throw new CheckpointError(`${urlOf(name)}: read of bytes ${offset}..${end} past the end (${m.size} bytes)`, { file: name });
    if (dst.length === 0) return;
    const first = Math.floor(offset / m.chunkSize);
    const last = Math.floor((end - 1) / m.chunkSize);
    const n = Math.ceil(m.size / m.chunkSize);
    // read-ahead from the network: the next chunks are on their way into the cache while this
    // one is copied (only with a persistent cache, which is where they land)
    if (storage) {
      for (let i = last + 1; i < Math.min(n, last + parallel); i++) {
        const key = chunkKey(name, m, i);
        if (!stored.has(key) && !inflight.has(key) && !prefetching.has(key)) prefetch(name, m, i);
      }
    }
    for (let i = first; i <= last; i++) {
      const bytes = await chunk(name, m, i);
      const cStart = i * m.chunkSize;
      const from = Math.max(offset, cStart);
      const to = Math.min(end, cStart + bytes.length);
      dst.set(bytes.subarray(from - cStart, to - cStart), from - offset);
    }
  };

  // ---- verification ----
  const verifying = new Map<string, Promise<void>>();
  const verify = (name: string, m: FileMeta): Promise<void> => {
    let p = verifying.get(name);
    if (!p) {
      p = (async () => {
        const sha = (await manifest()).get(name)?.sha256;
        if (!sha || m.verified === sha || m.size === null) return;
        await downloadFiles([name], {});
        const h = new Sha256();
        const n = Math.ceil(m.size / m.chunkSize);
        for (let i = 0; i < n; i++) h.update(await chunk(name, m, i));
        const got = h.hex();
        if (got !== sha) {
          const c = await cache();
          for (let i = 0; i < n; i++) await c?.delete(chunkKey(name, m, i));
          recent.length = 0;
          await c?.delete(metaKey(name));
          metas.delete(name);
          throw new CheckpointError(`${urlOf(name)}: sha256 ${got} does not match the manifest's ${sha}; the cached copy was discarded`, { file: name });
        }
        m.verified = sha;
        await put(name, metaKey(name), JSON.stringify(m), 256);
      })();
      verifying.set(name, p);
      p.catch(() => verifying.delete(name));
    }
    return p;
  };

  // ---- whole-file download ----
  const downloadFiles = async (names: string[], o: { onProgress?: (p: DownloadProgress) => void; signal?: AbortSignal }) => {
    const files = await Promise.all(names.map(async (name) => ({ name, m: await meta(name) })));
    const jobs: Array<{ f: number; i: number; length: number }> = [];
    const missingPerFile = new Array<number>(files.length).fill(0);
    let bytesTotal = 0;
    let bytesDone = 0;
    for (let f = 0; f < files.length; f++) {
      const { name, m } = files[f];
      if (m.size === null) throw new CheckpointError(`${urlOf(name)}: missing file`, { file: name });
      bytesTotal += m.size;
      const n = Math.ceil(m.size / m.chunkSize);
      const c = await cache();
      for (let i = 0; i < n; i++) {
        const { length } = chunkRange(m, i);
        const hit = c ? await c.match(chunkKey(name, m, i)) : undefined;
        // a present entry's length is checked when it is read
        if (hit) {
          await hit.body?.cancel();
          stored.add(chunkKey(name, m, i));
          bytesDone += length;
        } else {
          jobs.push({ f, i, length });
          missingPerFile[f]++;
        }
      }
    }
    const progress: DownloadProgress = {
      bytesDone, bytesTotal, filesDone: missingPerFile.filter((n) => n === 0).length, filesTotal: files.length, bytesFetched: 0,
    };
    o.onProgress?.({ ...progress });
    if (jobs.length === 0) return;
    if (!(await cache())) return; // nothing to persist into: reads go to the network
    const missing = jobs.reduce((s, j) => s + j.length, 0);
    const est = await (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage?.estimate?.().catch(() => undefined);
    if (est?.quota !== undefined && est.quota - (est.usage ?? 0) < missing) {
      throw new QuotaError(`${base}: the download needs ${(missing / 1e9).toFixed(2)} GB more browser storage but only ` +
        `${((est.quota - (est.usage ?? 0)) / 1e9).toFixed(2)} GB is left${await storageNote()}; free disk space or clear cached models`);
    }
    extraSignal = o.signal;
    let next = 0;
    let failed: unknown;
    const worker = async () => {
      while (next < jobs.length && failed === undefined) {
        const j = jobs[next++];
        if (o.signal?.aborted) throw o.signal.reason ?? new DOMException('aborted', 'AbortError');
        const { name, m } = files[j.f];
        await chunk(name, m, j.i);
        progress.bytesDone += j.length;
        progress.bytesFetched += j.length;
        if (--missingPerFile[j.f] === 0) progress.filesDone++;
        o.onProgress?.({ ...progress });
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, () => worker().catch((e) => {
        failed ??= e;
      })));
    } finally {
      extraSignal = undefined;
    }
    if (failed !== undefined) throw failed;
  };

  return {
    location: base,
    get persistent() {
      return !!storage;
    },
    stats,
    knownFiles: () => [...metas.keys()],
    async size(name) {
      const m = await meta(name);
      return m.size ?? undefined;
    },
    async read(name, offset, dst) {
      if (dst.length === 0) return;
      const m = await meta(name);
      await verify(name, m);
      await readFrom(name, m, offset, dst);
    },
    async download(names, o = {}) {
      await downloadFiles(names, o);
      for (const name of names) await verify(name, await meta(name));
    },
  };
}

/**
 * Deletes cached checkpoint data: every entry under `baseUrl` (a URL prefix), or the whole cache.
 * Returns the number of entries removed.
 */
export async function clearModelCache(baseUrl?: string, cacheName = DEFAULT_CACHE_NAME, storage?: CacheStorage): Promise<number> {
  const s = storage ?? (globalThis as { caches?: CacheStorage }).caches;
  if (!s) return 0;
  if (!baseUrl) {
    const c = await s.open(cacheName);
    const n = (await c.keys()).length;
    await s.delete(cacheName);
    return n;
  }
  const prefix = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const c = await s.open(cacheName);
  let n = 0;
  for (const req of await c.keys()) {
    if (req.url.startsWith(prefix)) {
      await c.delete(req);
      n++;
    }
  }
  return n;
}
