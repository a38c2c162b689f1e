/** HTTP errors with OpenAI-style bodies: `{"error":{"message","type","param","code"}}`. */
import { QwenRtError } from '../errors.js';

export type OpenAIErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'server_error' | 'not_found_error';

export class HttpError extends QwenRtError {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly errorCode: string | null = null,
    readonly type: OpenAIErrorType = status === 401
      ? 'authentication_error'
      : status === 404
        ? 'not_found_error'
        : status === 429
          ? 'rate_limit_error'
          : status >= 500
            ? 'server_error'
            : 'invalid_request_error',
  ) {
    super('E_HTTP', message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.errorCode } };
  }
}

/** 400 for a request field: `param` names it as OpenAI does (e.g. "messages[2].content"). */
export function badParam(param: string, message: string, code: string | null = 'invalid_value'): HttpError {
  return new HttpError(400, message, param, code);
}

/** Any error → an HttpError: bad input (ArgumentError, TokenizerError) is 400, a lost device 503, the rest 500. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QwenRtError && (e.code === 'E_ARGUMENT' || e.code === 'E_TOKENIZER')) return new HttpError(400, e.message, null, 'invalid_value');
  if (e instanceof QwenRtError && e.code === 'E_ABORTED') return new HttpError(499, 'the request was cancelled', null, 'cancelled');
  // the engine cannot serve at all (GPU lost with no fallback): the service is unavailable, not broken
  if (e instanceof QwenRtError && e.code === 'E_DEVICE_LOST') return new HttpError(503, `engine unavailable: ${e.message}`, null, 'device_lost');
  const msg = e instanceof Error ? e.message : String(e);
  return new HttpError(500, `internal error: ${msg}`, null, 'internal_error');
}

/** The SSE payload for an error after the stream has started. */
export function errorEvent(e: unknown) {
  return toHttpError(e).body();
}

/**
 * The SSE payload ending a stream whose generation was aborted while a reader was still there
 * (the server shutting down): without it the cut answer would end with a plain [DONE] and look
 * complete. (A client that went away reads nothing, so it costs nothing there.)
 */
export function cancelledEvent() {
  return new HttpError(503, 'the request was cancelled before the answer was complete (server shutting down)', null, 'cancelled').body();
}
