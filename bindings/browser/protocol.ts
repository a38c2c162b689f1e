/**
 * The message protocol between the page (QwenWorkerClient) and the engine Web Worker
 * (engineWorker.ts). Every request carries an id; the worker answers with events of that id and
 * ends each request with exactly one 'done' or 'error'. Errors cross as plain {code, message}
 * objects (structured clone drops Error subclasses).
 */
import type { ChatOptions } from '../../src/model/model.js';

export type BackendName = 'auto' | 'cpu' | 'webgpu';

export interface LoadRequest {
  type: 'load';
  id: number;
  /** Checkpoint URL prefix (HF layout), resolved against the page URL, or `synthetic:<preset>`. */
  source: string;
  backend?: BackendName;
  threads?: number;
  /** Cache options for URL sources (see CachedFetchSourceOptions). */
  cache?: { enabled?: boolean; chunkSize?: number; parallel?: number; cacheName?: string; revalidate?: boolean };
  prefillChunk?: number;
}

/** Chat options that survive structured cloning (no AbortSignal: abort with an 'abort' message). */
export type WireChatOptions = Omit<ChatOptions, 'signal'>;

export interface ChatRequest {
  type: 'chat';
  id: number;
  query: string;
  options?: WireChatOptions;
}

export interface AbortRequest {
  type: 'abort';
  id: number;
  /** The request to abort (a chat or a load). */
  target: number;
}

export interface DisposeRequest {
  type: 'dispose';
  id: number;
}

export interface ClearCacheRequest {
  type: 'clearCache';
  id: number;
  /** Only this URL prefix's entries (default: the whole qwen-rt cache). */
  source?: string;
  cacheName?: string;
}

export type Request = LoadRequest | ChatRequest | AbortRequest | DisposeRequest | ClearCacheRequest;

export interface WireError {
  code: string;
  message: string;
}

/** Sent once when the worker starts, before any request. */
export interface HelloEvent {
  type: 'hello';
  crossOriginIsolated: boolean;
  webgpu: boolean;
  /** The WebGPU adapter navigator.gpu offers ("google (google, swiftshader)"), if any. */
  adapter?: string;
  /** A software adapter: backend 'auto' then prefers the wasm CPU backend. */
  softwareAdapter?: boolean;
  hardwareConcurrency: number;
}

export interface ProgressEvent {
  type: 'progress';
  id: number;
  /** download: network → cache; weights: cache/network → backend memory. */
  phase: 'download' | 'weights';
  bytesDone: number;
  bytesTotal: number;
  /** Files complete / files in all (download phase). */
  filesDone?: number;
  filesTotal?: number;
  /** Bytes that came from the network in this load (the rest came from the cache). */
  bytesFetched?: number;
}

export interface LoadedInfo {
  backend: 'cpu' | 'webgpu';
  /** The backend's description: adapter name, or "wasm simd, N threads, …". */
  description: string;
  crossOriginIsolated: boolean;
  threads?: number;
  /** Weight bytes that came from the network in this load (0 when everything was cached). */
  bytesFetched: number;
  /** Weight bytes served from the persistent cache. */
  bytesFromCache: number;
  cached: boolean;
  loadMs: number;
  config: { hiddenSize: number; numLayers: number; vocabSize: number; quantized: boolean };
}

export interface DeltaEvent {
  type: 'delta';
  id: number;
  text: string;
  /** Token ids generated since the previous delta (may be several, or ids that produced no text). */
  tokens: number[];
}

export interface ChatDone {
  response: string;
  history: Array<[string, string]>;
  tokens: number[];
  finishReason: 'stop' | 'length' | 'abort';
  promptTokens: number;
  prefillMs: number;
  decodeMs: number;
  /** Generated tokens per second of decoding (first token excluded). */
  tokensPerSecond: number;
}

export interface DoneEvent {
  type: 'done';
  id: number;
  result?: LoadedInfo | ChatDone | null;
}

export interface ErrorEvent {
  type: 'error';
  id: number;
  error: WireError;
}

export interface LogEvent {
  type: 'log';
  level: 'info' | 'warn';
  message: string;
}

export type WorkerEvent = HelloEvent | ProgressEvent | DeltaEvent | DoneEvent | ErrorEvent | LogEvent;

/** Any thrown value as {code, message}. */
export function toWireError(e: unknown): WireError {
  if (e && typeof e === 'object') {
    const o = e as { code?: unknown; message?: unknown; name?: unknown };
    const code = typeof o.code === 'string' ? o.code
      : o.name === 'AbortError' ? 'E_ABORTED'
        : o.name === 'QuotaExceededError' ? 'E_QUOTA'
          : 'E_INTERNAL';
    return { code, message: typeof o.message === 'string' ? o.message : String(e) };
  }
  return { code: 'E_INTERNAL', message: String(e) };
}
