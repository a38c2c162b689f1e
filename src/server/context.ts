/** What every endpoint handler gets: the engine, the queue, limits and ids. */
import type { GenerationOptions } from '../generate/options.js';
import { resolveOptions } from '../generate/options.js';
import { QwenRtError } from '../errors.js';
import type { Engine, TextResult } from './engine.js';
import { HttpError, badParam, cancelledEvent, errorEvent } from './errors.js';
import { isAbort, sseResponse } from './http.js';
import type { Limits } from './params.js';
import type { RequestQueue } from './queue.js';

export interface EndpointContext {
  engine: Engine;
  queue: RequestQueue;
  limits: Limits & { maxContextTokens: number };
  modelId: string;
  /** Fires when the client goes away or the server shuts down. */
  signal: AbortSignal;
  /** Aborts this request's generation (its stream was cancelled). */
  abort: () => void;
  headers: Record<string, string>;
}

export function newId(prefix: string): string {
  const c = globalThis.crypto as Crypto | undefined;
  const r = c?.randomUUID ? c.randomUUID().replace(/-/g, '') : Math.random().toString(36).slice(2) + Date.now().toString(36);
  return `${prefix}-${r.slice(0, 29)}`;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Checks the options the way the engine will (400 instead of an error mid-stream). */
export function checkOptions(ctx: EndpointContext, options: GenerationOptions): void {
  try {
    resolveOptions(options, ctx.engine.generationConfig, ctx.limits.vocabSize);
  } catch (e) {
    if (e instanceof QwenRtError) throw new HttpError(400, e.message, null, 'invalid_value');
    throw e;
  }
}

export function checkContext(ctx: EndpointContext, promptTokens: number, maxTokens: number): void {
  if (promptTokens + maxTokens > ctx.limits.maxContextTokens) {
    throw badParam(
      'messages',
      `the prompt (${promptTokens} tokens) plus max_tokens (${maxTokens}) exceeds the server's context limit of ${ctx.limits.maxContextTokens} tokens`,
      'context_length_exceeded',
    );
  }
}

/**
 * Runs `fn` holding the engine (queued FIFO). Waiting ends with 429 when the queue is full, or
 * an AbortError when the client goes away first.
 */
export async function withEngine<T>(ctx: EndpointContext, fn: () => Promise<T>): Promise<T> {
  const release = await ctx.queue.acquire(ctx.signal);
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * A streamed (SSE) response holding the engine (queued FIFO). `produce` yields the events and
 * registers the generation it starts with `track`: a stream closed or cancelled while suspended
 * also closes that generation (else it would keep the engine locked), and an abort ends with a
 * cancelled event, not a bare [DONE], because the answer is incomplete. `release` may be called
 * early (e.g. before the final chunk); later calls do nothing.
 */
export async function streamWithEngine(
  ctx: EndpointContext,
  produce: (track: (gen: AsyncGenerator<string, TextResult>) => void, release: () => void) => AsyncGenerator<unknown, void>,
): Promise<Response> {
  const release = await ctx.queue.acquire(ctx.signal);
  async function* events(): AsyncGenerator<unknown, void> {
    let gen: AsyncGenerator<string, TextResult> | undefined;
    try {
      yield* produce((g) => (gen = g), release);
    } catch (e) {
      if (isAbort(e, ctx.signal)) {
        yield cancelledEvent();
        return;
      }
      yield errorEvent(e);
    } finally {
      await gen?.return(undefined as unknown as TextResult).catch(() => {});
      release();
    }
  }
  return sseResponse(
    events(),
    () => {
      ctx.abort();
      release();
    },
    ctx.headers,
  );
}
