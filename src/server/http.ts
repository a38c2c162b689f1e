/** Small fetch-API helpers: JSON responses, bounded body reading, SSE streams, signals. */
import { AbortError } from '../errors.js';
import { HttpError } from './errors.js';

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export function errorResponse(e: HttpError, headers: Record<string, string> = {}): Response {
  return json(e.status, e.body(), headers);
}

/** Reads the body as JSON, refusing more than `maxBytes` (413) and malformed JSON (400). */
export async function readJson(req: Request, maxBytes: number): Promise<unknown> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw new HttpError(413, `request body is larger than ${maxBytes} bytes`, null, 'request_too_large');
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new HttpError(413, `request body is larger than ${maxBytes} bytes`, null, 'request_too_large');
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'request body is not valid UTF-8', null, 'invalid_json');
  }
  if (text.trim() === '') throw new HttpError(400, 'request body is empty; expected a JSON object', null, 'invalid_json');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json');
  }
}

/** An AbortSignal that fires when any of `signals` does. */
export function anySignal(signals: Array<AbortSignal | undefined>): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const cleanups: Array<() => void> = [];
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    const f = () => ac.abort(s.reason);
    s.addEventListener('abort', f, { once: true });
    cleanups.push(() => s.removeEventListener('abort', f));
  }
  return { signal: ac.signal, dispose: () => cleanups.forEach((c) => c()) };
}

export const isAbort = (e: unknown, signal?: AbortSignal) =>
  e instanceof AbortError || (e as { name?: string })?.name === 'AbortError' || signal?.aborted === true;

/**
 * A text/event-stream response fed by `events` (each yields one JSON payload, or a string sent
 * as-is), ending with `data: [DONE]`. Pulled on demand, so a slow client slows generation; a
 * cancelled stream (client gone) calls `onCancel` and stops the generator.
 */
export function sseResponse(events: AsyncGenerator<unknown, void>, onCancel: () => void, headers: Record<string, string> = {}): Response {
  const enc = new TextEncoder();
  let finished = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await events.next();
        if (r.done) {
          finished = true;
          controller.enqueue(enc.encode('data: [DONE]\n\n'));
          controller.close();
          return;
        }
        controller.enqueue(enc.encode(`data: ${typeof r.value === 'string' ? r.value : JSON.stringify(r.value)}\n\n`));
      } catch (e) {
        finished = true;
        controller.error(e);
      }
    },
    async cancel() {
      if (finished) return;
      finished = true;
      onCancel();
      await events.return(undefined).catch(() => {});
    },
  });
  return new Response(stream, {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', ...headers },
  });
}
