/**
 * FileSource over a URL prefix: sizes from HEAD content-length (falling back to a 1-byte ranged GET
 * when the server omits it), data through HTTP Range requests of at most 64 MiB that must come back
 * as 206 with a matching Content-Range, streamed straight into the caller's buffer.
 */
import { CheckpointError } from '../../src/errors.js';
import type { FileSource } from '../../src/io/source.js';

const CHUNK = 64 * 1024 * 1024;

export interface FetchSourceOptions {
  /** fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
}

export function fetchSource(baseUrl: string, opts: FetchSourceOptions = {}): FileSource {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const sizes = new Map<string, Promise<number | undefined>>();
  const urlOf = (name: string) => new URL(name.split('/').map(encodeURIComponent).join('/'), base).href;
  const fail = (name: string, what: string, cause?: unknown) =>
    new CheckpointError(`${urlOf(name)}: ${what}`, { file: name, cause });

  const request = async (name: string, init: RequestInit): Promise<Response> => {
    try {
      return await doFetch(urlOf(name), { ...init, headers: { ...opts.headers, ...(init.headers as Record<string, string>) } });
    } catch (cause) {
      throw fail(name, `request failed (${(cause as Error).message}; offline or blocked by CORS?)`, cause);
    }
  };

  const totalFromContentRange = (h: string | null): number | undefined => {
    const m = h && /^bytes (\d+)-(\d+)\/(\d+)$/.exec(h.trim());
    return m ? Number(m[3]) : undefined;
  };

  const fetchSize = async (name: string): Promise<number | undefined> => {
    const head = await request(name, { method: 'HEAD' });
    if (head.status === 404 || head.status === 410) return undefined;
    if (!head.ok) throw fail(name, `HEAD returned HTTP ${head.status} ${head.statusText}`);
    const len = head.headers.get('content-length');
    const encoded = head.headers.get('content-encoding');
    if (len !== null && (!encoded || encoded === 'identity') && /^\d+$/.test(len)) return Number(len);
    // No usable length (compressed or chunked response): ask for one byte and read the total.
    const probe = await request(name, { headers: { Range: 'bytes=0-0' } });
    await probe.body?.cancel();
    if (probe.status === 404 || probe.status === 410) return undefined;
    const total = probe.status === 206 ? totalFromContentRange(probe.headers.get('content-range')) : undefined;
    if (total === undefined) {
      throw fail(name, `cannot determine the size: no content-length, and no readable Content-Range (HTTP ${probe.status}; ` +
        'a cross-origin server must list Content-Range in Access-Control-Expose-Headers)');
    }
    return total;
  };

  const readChunk = async (name: string, offset: number, dst: Uint8Array): Promise<void> => {
    const last = offset + dst.length - 1;
    const res = await request(name, { headers: { Range: `bytes=${offset}-${last}` } });
    if (res.status !== 206) {
      await res.body?.cancel();
      throw fail(name, res.status === 200
        ? 'server ignored the Range header (HTTP 200 instead of 206): ranged reads are required'
        : `ranged GET bytes=${offset}-${last} returned HTTP ${res.status} ${res.statusText}`);
    }
    // Cross-origin servers may not expose Content-Range (Access-Control-Expose-Headers); then the
    // exact body length checked below is what guards the read.
    const cr = res.headers.get('content-range');
    const m = cr && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim());
    if (cr !== null && (!m || Number(m[1]) !== offset || Number(m[2]) !== last)) {
      await res.body?.cancel();
      throw fail(name, `Content-Range ${JSON.stringify(cr)} does not match the requested bytes ${offset}-${last}`);
    }
    if (!res.body) throw fail(name, 'response has no body');
    const reader = res.body.getReader();
    let done = 0;
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      if (done + value.length > dst.length) {
        await reader.cancel();
        throw fail(name, `ranged GET bytes=${offset}-${last} returned more than ${dst.length} bytes`);
      }
      dst.set(value, done);
      done += value.length;
    }
    if (done !== dst.length) throw fail(name, `ranged GET bytes=${offset}-${last} returned ${done} of ${dst.length} bytes`);
  };

  return {
    location: base,
    size(name) {
      let s = sizes.get(name);
      if (!s) {
        s = fetchSize(name);
        sizes.set(name, s);
        s.catch(() => sizes.delete(name));
      }
      return s;
    },
    async read(name, offset, dst) {
      if (dst.length === 0) return;
      for (let done = 0; done < dst.length; done += CHUNK) {
        await readChunk(name, offset + done, dst.subarray(done, Math.min(dst.length, done + CHUNK)));
      }
    },
  };
}
