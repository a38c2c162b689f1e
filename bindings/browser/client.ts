/**
 * The page side of the engine worker: QwenWorkerClient starts engineWorker.js as a module Worker
 * and turns the message protocol into promises and async iterators. Nothing here computes, so the
 * page stays responsive while a model loads or answers.
 */
import { QwenRtError } from '../../src/errors.js';
import type {
  BackendName, ChatDone, DeltaEvent, HelloEvent, LoadRequest, LoadedInfo, ProgressEvent, Request, WireChatOptions, WireError, WorkerEvent,
} from './protocol.js';

export type { BackendName, ChatDone, HelloEvent, LoadedInfo, ProgressEvent, WireChatOptions } from './protocol.js';

export interface ClientOptions {
  /** A started Worker, or the engine worker script's URL (default: engineWorker.js beside this module). */
  worker?: Worker | URL | string;
}

export interface LoadOptions {
  backend?: BackendName;
  threads?: number;
  prefillChunk?: number;
  cache?: LoadRequest['cache'];
  onProgress?: (p: ProgressEvent) => void;
  signal?: AbortSignal;
  /** Ask the browser to keep the cached weights under storage pressure (default true; pages only). */
  persist?: boolean;
}

export interface ClientChatOptions extends WireChatOptions {
  signal?: AbortSignal;
}

function toError(e: WireError): QwenRtError {
  return new QwenRtError(e.code, e.message);
}

interface Pending {
  onEvent(e: WorkerEvent): void;
}

/** A streaming answer: iterate for text deltas; `result` settles with the whole answer. */
export class ChatStream implements AsyncIterable<string> {
  /** Token ids received so far. */
  readonly tokens: number[] = [];
  readonly result: Promise<ChatDone>;
  private readonly queue: string[] = [];
  private wake: (() => void) | undefined;
  private finished = false;
  private failure: unknown;

  constructor(private readonly client: QwenWorkerClient, readonly id: number, onDelta?: (d: DeltaEvent) => void) {
    let resolve!: (r: ChatDone) => void;
    let reject!: (e: unknown) => void;
    this.result = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.result.catch(() => undefined); // iterating reports the error too
    client.track(id, {
      onEvent: (e) => {
        if (e.type === 'delta') {
          this.tokens.push(...e.tokens);
          if (e.text) this.queue.push(e.text);
          onDelta?.(e);
        } else if (e.type === 'done') {
          this.finished = true;
          resolve(e.result as ChatDone);
        } else if (e.type === 'error') {
          this.finished = true;
          this.failure = toError(e.error);
          reject(this.failure);
        }
        this.wake?.();
      },
    });
  }

  /** Stops generating; the stream ends with what was produced (finishReason 'abort'). */
  abort(): void {
    if (!this.finished) this.client.send({ type: 'abort', id: this.client.nextId(), target: this.id });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      if (this.queue.length) {
        yield this.queue.shift()!;
        continue;
      }
      if (this.finished) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

export class QwenWorkerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private ids = 0;
  private dead: QwenRtError | undefined;
  /** What the worker reported at start: crossOriginIsolated, navigator.gpu adapter, cores. */
  hello!: HelloEvent;
  /** The loaded model's backend and origin of its bytes. */
  loaded: LoadedInfo | undefined;
  /** Worker log lines (warnings). */
  onLog: ((level: string, message: string) => void) | undefined;

  private constructor(worker: Worker) {
    this.worker = worker;
    worker.addEventListener('message', (e: MessageEvent) => this.onEvent(e.data as WorkerEvent));
    worker.addEventListener('error', (e: ErrorEvent) => this.fail(new QwenRtError('E_WORKER', `engine worker failed: ${e.message || 'script error (is engineWorker.js served?)'}`)));
    worker.addEventListener('messageerror', () => this.fail(new QwenRtError('E_WORKER', 'engine worker sent a message that could not be cloned')));
  }

  /** Starts the worker and waits for its hello. */
  static async create(opts: ClientOptions = {}): Promise<QwenWorkerClient> {
    const w = opts.worker;
    const worker = w instanceof Worker ? w : new Worker(w ?? new URL('./engineWorker.js', import.meta.url), { type: 'module', name: 'qwen-rt engine' });
    const client = new QwenWorkerClient(worker);
    client.hello = await new Promise<HelloEvent>((resolve, reject) => {
      client.pending.set(0, {
        onEvent: (e) => {
          if (e.type === 'hello') resolve(e);
          else if (e.type === 'error') reject(toError(e.error));
        },
      });
    }).finally(() => client.pending.delete(0));
    return client;
  }

  /** @internal */
  nextId(): number {
    return ++this.ids;
  }
  /** @internal */
  send(req: Request): void {
    if (this.dead) throw this.dead;
    this.worker.postMessage(req);
  }
  /** @internal */
  track(id: number, p: Pending): void {
    this.pending.set(id, p);
  }

  private onEvent(e: WorkerEvent): void {
    if (e.type === 'hello') {
      this.pending.get(0)?.onEvent(e);
      return;
    }
    if (e.type === 'log') {
      this.onLog?.(e.level, e.message);
      return;
    }
    const p = this.pending.get(e.id);
    if (!p) return;
    if (e.type === 'done' || e.type === 'error') this.pending.delete(e.id);
    p.onEvent(e);
  }

  private fail(err: QwenRtError): void {
    this.dead ??= err;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.onEvent({ type: 'error', id, error: { code: err.code, message: err.message } });
    }
  }

  /** A request answered by one done/error; progress and deltas go to `onEvent`. */
  private request<T>(make: (id: number) => Request, onEvent?: (e: WorkerEvent) => void, signal?: AbortSignal): Promise<T> {
    const id = this.nextId();
    return new Promise<T>((resolve, reject) => {
      if (this.dead) return reject(this.dead);
      const onAbort = () => this.send({ type: 'abort', id: this.nextId(), target: id });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.track(id, {
        onEvent: (e) => {
          if (e.type === 'done' || e.type === 'error') signal?.removeEventListener('abort', onAbort);
          if (e.type === 'done') resolve(e.result as T);
          else if (e.type === 'error') reject(toError(e.error));
          else onEvent?.(e);
        },
      });
      this.send(make(id));
      if (signal?.aborted) onAbort();
    });
  }

  /**
   * Loads a checkpoint: a URL prefix of an HF-layout directory (relative to the page) or
   * `synthetic:<preset>`. URL checkpoints are downloaded into the Cache API first (resumable);
   * progress: phase 'download' (bytes, files), then 'weights' (into the backend).
   */
  async load(source: string, opts: LoadOptions = {}): Promise<LoadedInfo> {
    const resolved = source.startsWith('synthetic:') ? source : new URL(source, location.href).href;
    // best effort: StorageManager.persist exists on pages, not in workers, and may be refused
    if (opts.persist !== false && !source.startsWith('synthetic:')) await navigator.storage?.persist?.().catch(() => false);
    const info = await this.request<LoadedInfo>(
      (id) => ({ type: 'load', id, source: resolved, backend: opts.backend, threads: opts.threads, cache: opts.cache, prefillChunk: opts.prefillChunk }),
      (e) => e.type === 'progress' && opts.onProgress?.(e),
      opts.signal,
    );
    this.loaded = info;
    return info;
  }

  /** Streams an answer; `signal` or stream.abort() stops it early (the result keeps what came). */
  chatStream(query: string, options: ClientChatOptions = {}, onDelta?: (d: DeltaEvent) => void): ChatStream {
    const { signal, ...wire } = options;
    const id = this.nextId();
    const stream = new ChatStream(this, id, onDelta);
    this.send({ type: 'chat', id, query, options: wire });
    if (signal) {
      if (signal.aborted) stream.abort();
      else signal.addEventListener('abort', () => stream.abort(), { once: true });
    }
    return stream;
  }

  async chat(query: string, options: ClientChatOptions = {}): Promise<ChatDone> {
    const s = this.chatStream(query, options);
    for await (const _ of s) {
      /* drain */
    }
    return s.result;
  }

  /** Aborts every running load and chat. */
  abortAll(): void {
    for (const id of this.pending.keys()) if (id !== 0) this.send({ type: 'abort', id: this.nextId(), target: id });
  }

  /** Removes cached checkpoint bytes (one URL prefix, or everything qwen-rt cached). */
  clearCache(source?: string): Promise<void> {
    const resolved = source === undefined ? undefined : new URL(source, location.href).href;
    return this.request<void>((id) => ({ type: 'clearCache', id, source: resolved }));
  }

  /** Frees the model and stops the worker. */
  async dispose(): Promise<void> {
    if (!this.dead) {
      await this.request<void>((id) => ({ type: 'dispose', id })).catch(() => undefined);
    }
    this.fail(new QwenRtError('E_DISPOSED', 'client is disposed'));
    this.worker.terminate();
  }
}
