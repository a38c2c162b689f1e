#!/usr/bin/env node
/**
 * A tiny static server for the demo and the browser tests (node:http, no dependencies):
 * - COOP same-origin + COEP require-corp on every response, so pages are crossOriginIsolated
 *   (SharedArrayBuffer → wasm threads), and CORP so isolated pages may load everything;
 * - HEAD and single-range GET (206 + Content-Range) as the URL checkpoint source needs, with ETags;
 * - mounts: / → the project root, /fixtures/ → ../shared/fixtures (the fixture checkpoints).
 * Usage: node demo/serve.mjs [--port 8080] [--host 127.0.0.1]; then open http://127.0.0.1:8080/demo/
 */
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.gz': 'application/gzip',
};

/**
 * Starts the server. Options: port (0 = any), host, mounts ({'/prefix/': dir}), files ({'/path':
 * string|Uint8Array} served from memory), onRequest(req, res) → true when it answered itself
 * (fault injection in tests). Returns { url, port, log, close() }; log lists every request as
 * { method, path, range, status, bytes }.
 */
export async function startServer(opts = {}) {
  const mounts = Object.entries({ '/fixtures/': resolve(ROOT, '../shared/fixtures'), '/': ROOT, ...(opts.mounts ?? {}) })
    .sort((a, b) => b[0].length - a[0].length);
  const files = opts.files ?? {};
  const log = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const entry = { method: req.method, path, range: req.headers.range ?? null, status: 0, bytes: 0 };
    log.push(entry);
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    const send = (status, body, headers = {}) => {
      entry.status = status;
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (opts.onRequest?.(req, res, entry)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed', { Allow: 'GET, HEAD' });

    let size;
    let mtime = 0;
    let open;
    let type = TYPES[extname(path)] ?? 'application/octet-stream';
    if (Object.hasOwn(files, path)) {
      const body = typeof files[path] === 'string' ? Buffer.from(files[path]) : Buffer.from(files[path]);
      size = body.length;
      open = (start, end) => body.subarray(start, end + 1);
    } else {
      const mount = mounts.find(([prefix]) => path.startsWith(prefix) || `${path}/` === prefix);
      if (!mount) return send(404, 'not found');
      let file = normalize(join(mount[1], path.slice(mount[0].length)));
      if (file !== mount[1] && !file.startsWith(mount[1] + sep)) return send(403, 'forbidden');
      if (existsSync(file) && statSync(file).isDirectory()) {
        if (!path.endsWith('/')) return send(301, '', { Location: `${path}/` });
        file = join(file, 'index.html');
        type = TYPES['.html'];
      }
      if (!existsSync(file)) return send(404, 'not found');
      const st = statSync(file);
      size = st.size;
      mtime = st.mtimeMs;
      open = (start, end) => createReadStream(file, { start, end });
    }
    const headers = {
      'Content-Type': type,
      'Accept-Ranges': 'bytes',
      ETag: `"${size.toString(16)}-${Math.floor(mtime).toString(16)}"`,
    };
    const range = req.headers.range;
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (!m || (m[1] === '' && m[2] === '')) return send(416, 'bad range', { 'Content-Range': `bytes */${size}` });
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start > end || start >= size) return send(416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` });
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = String(size === 0 ? 0 : end - start + 1);
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) return res.end();
    const body = open(start, end);
    entry.bytes = end - start + 1;
    if (Buffer.isBuffer(body)) res.end(body);
    else body.pipe(res);
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', ok);
  });
  const port = server.address().port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    log,
    close: () => new Promise((ok) => {
      server.closeAllConnections?.();
      server.close(() => ok());
    }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const s = await startServer({ port: Number(arg('--port', process.env.PORT ?? 8080)), host: arg('--host', '127.0.0.1') });
  console.log(`qwen-rt demo: ${s.url}/demo/  (fixture models under ${s.url}/fixtures/models/)`);
}
