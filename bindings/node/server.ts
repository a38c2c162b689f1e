/**
 * Node adapter for the runtime-neutral handlers in src/server: node:http ⇄ fetch Request/Response,
 * streamed bodies with backpressure, a closed connection aborts its request's generation, and
 * graceful shutdown. Also the `qwen-rt serve` command.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createHandler, type Handler, type HandlerOptions } from '../../src/server/handler.js';
import type { Engine } from '../../src/server/engine.js';
import { ArgumentError } from '../../src/errors.js';

export interface ServeOptions extends HandlerOptions {
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only); pass 0.0.0.0 to listen on every interface. */
  host?: string;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  handler: Handler;
  /** Stops accepting, lets running requests finish for up to `timeoutMs` (default 5000), then aborts them. */
  close(opts?: { timeoutMs?: number }): Promise<void>;
}

/** IncomingMessage → Request; `signal` aborts with the connection. */
export function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    try {
      headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    } catch {
      // a header value fetch's Headers refuses: drop it
    }
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(new URL(req.url ?? '/', 'http://localhost'), {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>) : undefined,
    signal,
    // @ts-expect-error Node's fetch needs duplex for a streamed request body (not in the DOM types)
    duplex: 'half',
  });
}

/** Writes a Response to a ServerResponse, waiting for 'drain' when the socket is full. */
export async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  if (headers['content-type']?.startsWith('text/event-stream')) res.flushHeaders();
  const reader = response.body.getReader();
  const closed = new Promise<void>((r) => res.once('close', r));
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), closed.then(() => undefined)]);
      if (next === undefined || res.destroyed) {
        await reader.cancel().catch(() => {});
        return;
      }
      if (next.done) break;
      if (!res.write(next.value)) await Promise.race([new Promise((r) => res.once('drain', r)), closed]);
    }
    res.end();
  } catch {
    await reader.cancel().catch(() => {});
    res.destroy();
  }
}

/** A node:http request listener around a fetch handler. */
export function nodeListener(handler: (req: Request) => Promise<Response>): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const ac = new AbortController();
    // 'close' on the response before it finished = the client went away
    res.once('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    let request: Request;
    try {
      request = toRequest(req, ac.signal);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'malformed request', type: 'invalid_request_error', param: null, code: null } }));
      return;
    }
    handler(request)
      .then((response) => writeResponse(res, response))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'internal error', type: 'server_error', param: null, code: null } }));
      });
  };
}

/** Serves the OpenAI-compatible API for `engine` (a QwenModel). */
export async function serve(engine: Engine, opts: ServeOptions = {}): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ArgumentError(`serve: port must be an integer in 0..65535, got ${port}`);
  const handler = createHandler(engine, opts);
  const listener = nodeListener(handler);
  // Responses still being written: close() waits for them, not only for the handler, so the tail
  // of a finished stream is never cut by closeAllConnections().
  let writing = 0;
  let drained: (() => void) | undefined;
  const server = createServer((req, res) => {
    writing++;
    res.once('close', () => {
      if (--writing === 0) drained?.();
    });
    listener(req, res);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' || e.code === 'EACCES' ? new ArgumentError(`serve: cannot listen on ${host}:${port} (${e.code})`) : e),
    );
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${addr.port}`,
    host: addr.address,
    port: addr.port,
    handler,
    close({ timeoutMs = 5000 } = {}) {
      closing ??= (async () => {
        handler.stopAccepting();
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const timer = setTimeout(() => handler.abortAll(), timeoutMs);
        await handler.idle();
        if (writing > 0) await new Promise<void>((r) => ((drained = r), setTimeout(r, timeoutMs)));
        clearTimeout(timer);
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}

const SERVE_USAGE = `usage: qwen-rt serve [--model SRC] [--backend auto|cpu|webgpu] [--threads N] [--port P] [--host H]
                     [--api-key KEY] [--cors] [--cors-origin ORIGIN] [--max-queue N] [--max-tokens N] [--model-id ID]
Serves an OpenAI-compatible API (POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
GET /health) on http://127.0.0.1:8000 by default. The API key may also come from QWEN_RT_API_KEY.`;

function positiveInt(name: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ArgumentError(`--${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

/** `qwen-rt serve …`: loads the model, serves until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serveCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      threads: { type: 'string' },
      port: { type: 'string', default: '8000' },
      host: { type: 'string', default: '127.0.0.1' },
      'api-key': { type: 'string' },
      cors: { type: 'boolean', default: false },
      'cors-origin': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-tokens': { type: 'string' },
      'model-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE + '\n');
    return;
  }
  const backend = values.backend;
  if (backend !== 'auto' && backend !== 'cpu' && backend !== 'webgpu') throw new ArgumentError(`--backend must be auto, cpu or webgpu, got "${backend}"`);
  const port = positiveInt('port', values.port, 0)!;
  if (port > 65535) throw new ArgumentError(`--port must be at most 65535, got ${port}`);
  const { loadModel, DEFAULT_MODEL } = await import('./index.js');
  const source = values.model ?? DEFAULT_MODEL;
  process.stderr.write(`qwen-rt serve: loading ${source} …\n`);
  const model = await loadModel(source, { backend, threads: positiveInt('threads', values.threads) });
  const modelId = values['model-id'] ?? (source.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || 'qwen');
  let server: RunningServer;
  try {
    server = await serve(model, {
      port,
      host: values.host,
      apiKey: values['api-key'] ?? process.env.QWEN_RT_API_KEY ?? undefined,
      cors: values['cors-origin'] ?? values.cors,
      maxQueue: positiveInt('max-queue', values['max-queue'], 0),
      maxTokens: positiveInt('max-tokens', values['max-tokens']),
      modelId,
    });
  } catch (e) {
    await model.dispose();
    throw e;
  }
  process.stderr.write(`qwen-rt serve: ${modelId} on ${model.backend.description} at ${server.url}/v1 (Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.stderr.write(`qwen-rt serve: ${sig}, finishing running requests …\n`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await model.dispose();
}
