/**
 * createHandler: a runtime-neutral fetch handler `(Request) => Promise<Response>` serving the
 * OpenAI-compatible API over one engine (Node through bindings/node/server.ts; Deno.serve,
 * Bun.serve and Workers-style runtimes take it as is).
 *
 * Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/:id], GET /health.
 * Bad input of any kind is a 4xx with an OpenAI-style error body, never a 500.
 */
import { ArgumentError } from '../errors.js';
import { chatCompletions } from './chatCompletions.js';
import { completions } from './completions.js';
import type { EndpointContext } from './context.js';
import type { Engine } from './engine.js';
import { HttpError, toHttpError } from './errors.js';
import { anySignal, errorResponse, isAbort, json, readJson } from './http.js';
import { RequestQueue } from './queue.js';

export interface HandlerOptions {
  /** Required as `Authorization: Bearer <apiKey>` on /v1/* when set. */
  apiKey?: string;
  /** CORS: false (default) sends no CORS headers; true allows any origin; a string is the allowed origin. */
  cors?: boolean | string;
  /** Requests that may wait while one runs (default 16); more get 429. */
  maxQueue?: number;
  /** Largest request body in bytes (default 1 MiB); larger gets 413. */
  maxBodyBytes?: number;
  /** Largest max_tokens a request may ask for (default 4096). */
  maxTokens?: number;
  /** Prompt plus max_tokens may not exceed this (default 32768). */
  maxContextTokens?: number;
  /** The id /v1/models lists and responses carry (default "qwen"). */
  modelId?: string;
}

export interface Handler {
  (req: Request): Promise<Response>;
  /** Requests running or waiting. */
  readonly active: number;
  /** Refuse new requests (503) from now on. */
  stopAccepting(): void;
  /** Abort every running and waiting generation. */
  abortAll(): void;
  /** Resolves once no request is active. */
  idle(): Promise<void>;
}

export function createHandler(engine: Engine, opts: HandlerOptions = {}): Handler {
  const maxQueue = opts.maxQueue ?? 16;
  const maxBodyBytes = opts.maxBodyBytes ?? 1 << 20;
  const maxTokens = opts.maxTokens ?? 4096;
  const modelId = opts.modelId ?? 'qwen';
  for (const [k, v] of Object.entries({ maxQueue, maxBodyBytes, maxTokens })) {
    if (!Number.isInteger(v) || v < (k === 'maxQueue' ? 0 : 1)) throw new ArgumentError(`createHandler: ${k} must be an integer ≥ ${k === 'maxQueue' ? 0 : 1}, got ${v}`);
  }
  const queue = new RequestQueue(maxQueue);
  const shutdown = new AbortController();
  const live = new Set<AbortController>();
  const limits = {
    maxTokens,
    defaultMaxTokens: Math.min(engine.generationConfig.maxNewTokens, maxTokens),
    vocabSize: engine.tokenizer.vocabSize,
    maxContextTokens: opts.maxContextTokens ?? 32768,
  };
  const created = Math.floor(Date.now() / 1000);
  let accepting = true;
  let active = 0;
  let idleWaiters: Array<() => void> = [];

  const corsHeaders: Record<string, string> = opts.cors
    ? {
        'access-control-allow-origin': typeof opts.cors === 'string' ? opts.cors : '*',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type, openai-organization, openai-project, x-stainless-*',
        'access-control-max-age': '600',
        ...(typeof opts.cors === 'string' ? { vary: 'origin' } : {}),
      }
    : {};

  const authorized = (req: Request): boolean => {
    if (!opts.apiKey) return true;
    const h = req.headers.get('authorization') ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(h.trim());
    return m !== null && timingSafeEqual(m[1], opts.apiKey);
  };

  const model = () => ({ id: modelId, object: 'model', created, owned_by: 'qwen-rt' });

  async function route(req: Request, path: string, ctx: () => EndpointContext): Promise<Response> {
    if (path === '/health' || path === '/v1/health') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(req.method, path);
      return json(200, { status: accepting ? 'ok' : 'shutting_down', model: modelId, running: queue.running, queued: queue.queued, max_queue: maxQueue }, corsHeaders);
    }
    if (!path.startsWith('/v1/')) throw new HttpError(404, `no route for ${req.method} ${path}`, null, 'unknown_url');
    if (!authorized(req)) throw new HttpError(401, 'invalid or missing API key (send "Authorization: Bearer <key>")', null, 'invalid_api_key');
    if (path === '/v1/models') {
      if (req.method !== 'GET') throw methodNotAllowed(req.method, path);
      return json(200, { object: 'list', data: [model()] }, corsHeaders);
    }
    if (path.startsWith('/v1/models/')) {
      if (req.method !== 'GET') throw methodNotAllowed(req.method, path);
      // a malformed escape (e.g. %ff) is the client's mistake: 404, not a URIError → 500
      let id: string;
      try {
        id = decodeURIComponent(path.slice('/v1/models/'.length));
      } catch {
        throw new HttpError(404, `the model id in ${JSON.stringify(path)} is not a valid percent-encoded string`, 'model', 'model_not_found');
      }
      if (id !== modelId) throw new HttpError(404, `the model "${id}" does not exist; this server has "${modelId}"`, 'model', 'model_not_found');
      return json(200, model(), corsHeaders);
    }
    const endpoint = path === '/v1/chat/completions' ? chatCompletions : path === '/v1/completions' ? completions : undefined;
    if (!endpoint) throw new HttpError(404, `no route for ${req.method} ${path}`, null, 'unknown_url');
    if (req.method !== 'POST') throw methodNotAllowed(req.method, path);
    if (!accepting) throw new HttpError(503, 'the server is shutting down', null, 'shutting_down');
    const body = await readJson(req, maxBodyBytes);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'request body must be a JSON object', null, 'invalid_type');
    const b = body as Record<string, unknown>;
    if (b.model !== undefined && typeof b.model !== 'string') throw new HttpError(400, 'model must be a string', 'model', 'invalid_type');
    return endpoint(b, ctx());
  }

  const handler = async (req: Request): Promise<Response> => {
    let path: string;
    try {
      path = new URL(req.url).pathname.replace(/\/+$/, '') || '/';
    } catch {
      return errorResponse(new HttpError(400, 'bad request URL', null, 'invalid_url'), corsHeaders);
    }
    if (req.method === 'OPTIONS') {
      return opts.cors ? new Response(null, { status: 204, headers: corsHeaders }) : errorResponse(methodNotAllowed('OPTIONS', path));
    }
    const own = new AbortController();
    // Shutdown reaches requests through `live`, not a listener each on shutdown.signal: past 10
    // concurrent requests Node would print a MaxListenersExceededWarning ("possible memory leak").
    if (shutdown.signal.aborted) own.abort();
    live.add(own);
    const linked = anySignal([req.signal, own.signal]);
    active++;
    let streaming = false;
    const done = () => {
      linked.dispose();
      live.delete(own);
      if (--active === 0) {
        const w = idleWaiters;
        idleWaiters = [];
        w.forEach((f) => f());
      }
    };
    try {
      const res = await route(req, path, () => ({
        engine,
        queue,
        limits,
        modelId,
        signal: linked.signal,
        abort: () => own.abort(),
        headers: corsHeaders,
      }));
      if (res.body && res.headers.get('content-type')?.startsWith('text/event-stream')) {
        // the request stays active until its stream ends
        streaming = true;
        return new Response(trackEnd(res.body, done), { status: res.status, headers: res.headers });
      }
      return res;
    } catch (e) {
      if (isAbort(e, linked.signal) && !(e instanceof HttpError)) {
        // cancelled by the server's shutdown (not by the client, which 499 means): 503, retry elsewhere
        if (shutdown.signal.aborted) return errorResponse(new HttpError(503, 'the server is shutting down; the request was cancelled', null, 'shutting_down'), corsHeaders);
        return errorResponse(new HttpError(499, 'the request was cancelled', null, 'cancelled'), corsHeaders);
      }
      return errorResponse(toHttpError(e), corsHeaders);
    } finally {
      if (!streaming) done();
    }
  };

  const h = handler as Handler;
  // a getter: Object.assign would copy the value once
  Object.defineProperty(h, 'active', { get: () => active });
  return Object.assign(h, {
    stopAccepting() {
      accepting = false;
    },
    abortAll() {
      shutdown.abort();
      for (const c of live) c.abort();
    },
    idle() {
      return active === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r));
    },
  });
}

function methodNotAllowed(method: string, path: string): HttpError {
  return new HttpError(405, `method ${method} is not allowed on ${path}`, null, 'method_not_allowed');
}

/** Compares without an early exit, so response timing does not reveal the key's prefix. */
function timingSafeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a.charCodeAt(i % Math.max(a.length, 1)) || 0) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Passes a stream through and calls `onEnd` once when it ends, errors or is cancelled. */
function trackEnd(body: ReadableStream<Uint8Array>, onEnd: () => void): ReadableStream<Uint8Array> {
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      onEnd();
    }
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          end();
        } else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
        end();
      }
    },
    async cancel(reason) {
      try {
        await reader.cancel(reason);
      } finally {
        end();
      }
    },
  });
}
