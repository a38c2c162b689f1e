// Platform byte sources: the Node directory source, the Node platform, and the browser fetch
// source against a local HTTP server (Range requests, servers that ignore them, missing files).
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchSource } from '../../bindings/browser/fetchSource.js';
import { nodeFileSource } from '../../bindings/node/fileSource.js';
import { nodePlatform } from '../../bindings/node/platform.js';
import { CheckpointError, QwenRtError } from '../../src/errors.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { bundledVocabulary, vocabularyFor } from '../../src/io/open.js';
import { INT4_DIR, catchError } from './helpers.js';

describe('nodeFileSource', () => {
  it('reads a 78 MB file in one call (several 64 MiB pieces) identical to fs', async () => {
    const src = nodeFileSource(INT4_DIR);
    const want = readFileSync(join(INT4_DIR, 'model.safetensors'));
    expect(await src.size('model.safetensors')).toBe(want.length);
    const got = new Uint8Array(want.length);
    await src.read('model.safetensors', 0, got);
    expect(Buffer.compare(got, want)).toBe(0);
    const part = new Uint8Array(1001);
    await src.read('model.safetensors', 12345, part);
    expect(Buffer.compare(part, want.subarray(12345, 13346))).toBe(0);
    await src.close();
    await expect(src.read('model.safetensors', 0, part)).rejects.toThrow(/closed/);
  });

  it('absent files have no size; short reads and names outside the directory are CheckpointErrors', async () => {
    const src = nodeFileSource(INT4_DIR);
    expect(await src.size('model.safetensors.index.json')).toBeUndefined();
    expect(await src.size('golden')).toBeUndefined(); // a directory is not a file
    const size = (await src.size('config.json'))!;
    const e = await catchError(src.read('config.json', size - 3, new Uint8Array(10)));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/config\.json: unexpected end of file/);
    await expect(src.size('../qwen-tiny-bf16/config.json')).rejects.toThrow(/outside the checkpoint directory/);
    await expect(src.read('/etc/passwd', 0, new Uint8Array(1))).rejects.toBeInstanceOf(CheckpointError);
    await expect(src.read('absent.bin', 0, new Uint8Array(1))).rejects.toThrow(/absent\.bin: cannot open/);
    await src.close();
  });
});

describe('nodePlatform', () => {
  it('opens checkpoint directories and reports cores', async () => {
    expect(nodePlatform.name).toBe('node');
    expect(nodePlatform.hardwareConcurrency()).toBeGreaterThanOrEqual(1);
    const ck = await openCheckpoint(await nodePlatform.openSource(INT4_DIR));
    expect(ck.config.hiddenSize).toBe(128);
    await ck.close();
  });

  it('reads assets from the package assets/ folder; bad or absent names are typed errors', async () => {
    const gz = await nodePlatform.readAsset('qwen.tiktoken.gz');
    const fixture = readFileSync(join(INT4_DIR, 'qwen.tiktoken'));
    expect(Buffer.compare(gunzipSync(gz), fixture)).toBe(0);
    expect(Buffer.compare(await bundledVocabulary(nodePlatform), fixture)).toBe(0);
    // tokenize --model SRC: the checkpoint's vocabulary, or the bundled one for synthetic models.
    expect(Buffer.compare(await vocabularyFor(INT4_DIR, nodePlatform), fixture)).toBe(0);
    expect(Buffer.compare(await vocabularyFor('synthetic:7b-bf16', nodePlatform), fixture)).toBe(0);
    const noVocab = await catchError(vocabularyFor(join(INT4_DIR, 'golden'), nodePlatform));
    expect(noVocab).toBeInstanceOf(CheckpointError);
    expect(noVocab.message).toMatch(/golden: missing qwen\.tiktoken/);
    const e = await catchError(nodePlatform.readAsset('no-such-asset.bin'));
    expect(e).toBeInstanceOf(QwenRtError);
    expect(e.code).toBe('E_ASSET');
    await expect(nodePlatform.readAsset('../package.json')).rejects.toThrow(/plain file name/);
  });
});

describe('fetchSource (browser binding) against a local HTTP server', () => {
  let base = '';
  let server: ReturnType<typeof createServer>;
  const files: Record<string, Buffer> = {
    'config.json': readFileSync(join(INT4_DIR, 'config.json')),
    'model.safetensors': readFileSync(join(INT4_DIR, 'model.safetensors')),
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const [, mode, name] = /^\/(\w+)\/(.*)$/.exec(req.url ?? '') ?? [];
    const body = files[decodeURIComponent(name ?? '')];
    if (!body) return res.writeHead(404).end();
    if (req.method === 'HEAD') return res.writeHead(200, mode === 'nolength' ? {} : { 'content-length': body.length }).end();
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || mode === 'norange') return res.writeHead(200, { 'content-length': body.length }).end(body);
    const [a, b] = [Number(m[1]), Number(m[2])];
    const shift = mode === 'badrange' ? 1 : 0;
    const end = mode === 'short' ? b : b + 1; // 'short' sends one byte less than asked
    const headers: Record<string, string | number> = { 'content-length': end - a };
    if (mode !== 'nocr') headers['content-range'] = `bytes ${a + shift}-${b + shift}/${body.length}`;
    res.writeHead(206, headers);
    res.end(body.subarray(a, end));
  };
  beforeAll(async () => {
    server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sizes via HEAD (or a 1-byte range), ranged reads identical to the file, 404 → undefined', async () => {
    for (const mode of ['ok', 'nolength']) {
      const src = fetchSource(`${base}/${mode}`);
      expect(await src.size('model.safetensors')).toBe(files['model.safetensors'].length);
      expect(await src.size('missing.json')).toBeUndefined();
    }
    const src = fetchSource(`${base}/ok/`);
    const dst = new Uint8Array(70_000_001); // > 64 MiB: two requests
    await src.read('model.safetensors', 7, dst);
    expect(Buffer.compare(dst, files['model.safetensors'].subarray(7, 7 + dst.length))).toBe(0);
  });

  it('refuses servers that ignore Range or answer another range, naming the URL', async () => {
    const e = await catchError(fetchSource(`${base}/norange`).read('config.json', 10, new Uint8Array(5)));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/norange\/config\.json: server ignored the Range header/);
    const e2 = await catchError(fetchSource(`${base}/badrange`).read('config.json', 10, new Uint8Array(5)));
    expect(e2.message).toMatch(/Content-Range "bytes 11-15\/\d+" does not match the requested bytes 10-14/);
    const e4 = await catchError(fetchSource(`${base}/short`).read('config.json', 10, new Uint8Array(5)));
    expect(e4.message).toMatch(/returned 4 of 5 bytes/);
    // Content-Range hidden (cross-origin without Access-Control-Expose-Headers): the exact length suffices.
    const ok = new Uint8Array(5);
    await fetchSource(`${base}/nocr`).read('config.json', 10, ok);
    expect(Buffer.compare(ok, files['config.json'].subarray(10, 15))).toBe(0);
    const e3 = await catchError(fetchSource('http://127.0.0.1:1').size('config.json'));
    expect(e3).toBeInstanceOf(CheckpointError);
    expect(e3.message).toMatch(/request failed/);
  });
});
