/**
 * The engine Web Worker (start it as a module worker; QwenWorkerClient does). It owns one model at a
 * time and answers the requests of protocol.ts: the page never runs a kernel, so it never blocks,
 * and the CPU thread pool may block in Atomics.wait here (not allowed on a page's main thread).
 */
import { describeAdapter, isSoftwareAdapter } from '../../src/backend/webgpu/device.js';
import { makeContext, DEFAULT_SYSTEM } from '../../src/chat/makeContext.js';
import { AbortError, ArgumentError } from '../../src/errors.js';
import { StopStringMatcher, WhitespaceTrimmer } from '../../src/generate/text.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { isSyntheticLocation } from '../../src/io/synthetic.js';
import { loadModelOn } from '../../src/load.js';
import type { QwenModel } from '../../src/model/model.js';
import type { Platform } from '../../src/platform.js';
import { cachedFetchSource, clearModelCache, type CachedFetchSource } from './cachedFetchSource.js';
import { createBrowserWorker } from './cpuWorkers.js';
import { browserGpu } from './gpu.js';
import { createBrowserPlatform } from './platform.js';
import { toWireError, type ChatDone, type ChatRequest, type LoadRequest, type LoadedInfo, type Request, type WorkerEvent } from './protocol.js';

interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (e: MessageEvent) => void): void;
  crossOriginIsolated?: boolean;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;
const post = (e: WorkerEvent) => scope.postMessage(e);

const base = createBrowserPlatform();
const isolated = () => scope.crossOriginIsolated === true;

let model: QwenModel | undefined;
/** AbortControllers of running requests, by request id. */
const running = new Map<number, AbortController>();

async function load(req: LoadRequest, signal: AbortSignal): Promise<LoadedInfo> {
  const t0 = performance.now();
  if (model) {
    const old = model;
    model = undefined;
    await old.dispose();
  }
  let source: CachedFetchSource | undefined;
  const platform: Platform = { ...base, createWorker: createBrowserWorker, gpu: browserGpu };
  if (!isSyntheticLocation(req.source)) {
    const c = req.cache ?? {};
    const url = new URL(req.source, (globalThis as { location?: { href: string } }).location?.href).href;
    const src = cachedFetchSource(url, {
      signal,
      chunkSize: c.chunkSize,
      parallel: c.parallel,
      cacheName: c.cacheName,
      revalidate: c.revalidate,
      caches: c.enabled === false ? undefined : (globalThis as { caches?: CacheStorage }).caches,
    });
    source = src;
    // Open once to learn which files the checkpoint consists of, fetch them all into the cache
    // (parallel, resumable, verified), then load from the cache.
    const ckpt = await openCheckpoint(src);
    await src.size('qwen.tiktoken');
    const files: string[] = [];
    for (const f of src.knownFiles()) if ((await src.size(f)) !== undefined) files.push(f);
    await ckpt.close();
    await src.download(files, {
      signal,
      onProgress: (p) => post({ type: 'progress', id: req.id, phase: 'download', ...p }),
    });
    platform.openSource = async () => src;
  }
  const m = await loadModelOn(platform, req.source, {
    backend: req.backend ?? 'auto',
    threads: req.threads,
    prefillChunk: req.prefillChunk,
    signal,
    onProgress: (p) => post({ type: 'progress', id: req.id, phase: 'weights', bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, bytesFetched: source?.stats.bytesFetched }),
  });
  model = m;
  const desc = m.backend.description;
  const threads = m.backend.kind === 'cpu' ? Number(/(\d+) thread/.exec(desc)?.[1] ?? 1) : undefined;
  return {
    backend: m.backend.kind,
    description: desc,
    crossOriginIsolated: isolated(),
    threads,
    bytesFetched: source?.stats.bytesFetched ?? 0,
    bytesFromCache: source?.stats.bytesFromCache ?? 0,
    cached: source?.persistent ?? false,
    loadMs: performance.now() - t0,
    config: { hiddenSize: m.config.hiddenSize, numLayers: m.config.numLayers, vocabSize: m.config.vocabSize, quantized: !!m.config.quantization },
  };
}

/**
 * model.chat's semantics over model.generate, so each delta can carry its token ids: the answer
 * ends at <|im_end|>, <|im_start|> or <|endoftext|> (ids after it, e.g. the EOS Qwen's stop-word
 * processor forces, are still reported in `tokens`), stop strings never leak, Python's strip().
 */
async function chat(req: ChatRequest, signal: AbortSignal): Promise<ChatDone> {
  const m = model;
  if (!m) throw new ArgumentError('no model loaded: send a load request first');
  if (typeof req.query !== 'string') throw new ArgumentError('query must be a string');
  const o = req.options ?? {};
  const history = o.history ?? [];
  const tok = m.tokenizer;
  const { contextTokens } = makeContext(tok, req.query, {
    history,
    system: o.system ?? DEFAULT_SYSTEM,
    maxWindowSize: o.maxWindowSize ?? m.generationConfig.maxWindowSize,
  });
  const endIds = new Set([tok.imEnd, tok.imStart, tok.endOfText, ...(o.stopTokenIds ?? [])]);
  const decoder = tok.createStreamDecoder();
  const trimmer = new WhitespaceTrimmer();
  const stopper = new StopStringMatcher(o.stop ?? []);
  const tokens: number[] = [];
  let pending: number[] = [];
  let response = '';
  let ended = false;
  let stoppedByString = false;
  let finishReason: ChatDone['finishReason'] = 'length';
  const emit = (text: string) => {
    const safe = trimmer.push(text);
    response += safe;
    if (safe || pending.length) {
      post({ type: 'delta', id: req.id, text: safe, tokens: pending });
      pending = [];
    }
  };
  const { history: _h, system: _s, ...gen } = o;
  try {
    for await (const id of m.generate(contextTokens, { ...gen, signal })) {
      tokens.push(id);
      pending.push(id);
      if (ended) continue;
      if (endIds.has(id)) {
        ended = true;
        finishReason = 'stop';
        continue;
      }
      const piece = stopper.push(decoder.push(id));
      emit(piece.text);
      if (piece.stopped) {
        stoppedByString = true;
        finishReason = 'stop';
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof AbortError)) throw e;
    finishReason = 'abort';
  }
  if (!stoppedByString && finishReason !== 'abort') emit(stopper.flush(decoder.flush()));
  else if (pending.length) emit('');
  const s = m.lastStats;
  const decodeTokens = Math.max(0, (s?.generatedTokens ?? 0) - 1);
  return {
    response,
    history: [...history, [req.query, response]],
    tokens,
    finishReason,
    promptTokens: contextTokens.length,
    prefillMs: s?.prefillMs ?? 0,
    decodeMs: s?.decodeMs ?? 0,
    tokensPerSecond: s && s.decodeMs > 0 ? (decodeTokens * 1000) / s.decodeMs : 0,
  };
}

async function handle(req: Request): Promise<void> {
  switch (req.type) {
    case 'abort':
      running.get(req.target)?.abort(new AbortError());
      post({ type: 'done', id: req.id, result: null });
      return;
    case 'dispose': {
      for (const c of running.values()) c.abort(new AbortError());
      const m = model;
      model = undefined;
      await m?.dispose();
      post({ type: 'done', id: req.id, result: null });
      return;
    }
    case 'clearCache': {
      const prefix = req.source ? new URL(req.source, (globalThis as { location?: { href: string } }).location?.href).href : undefined;
      await clearModelCache(prefix, req.cacheName);
      post({ type: 'done', id: req.id, result: null });
      return;
    }
    case 'load':
    case 'chat': {
      const ctl = new AbortController();
      running.set(req.id, ctl);
      try {
        const result = req.type === 'load' ? await load(req, ctl.signal) : await chat(req, ctl.signal);
        post({ type: 'done', id: req.id, result });
      } catch (err) {
        post({ type: 'error', id: req.id, error: ctl.signal.aborted ? { code: 'E_ABORTED', message: `${req.type} aborted` } : toWireError(err) });
      } finally {
        running.delete(req.id);
      }
      return;
    }
    default:
      throw new ArgumentError(`unknown request type ${JSON.stringify((req as { type?: unknown }).type)}`);
  }
}

scope.addEventListener('message', (e: MessageEvent) => {
  const req = e.data as Request;
  handle(req).catch((err) => {
    post({ type: 'error', id: typeof req?.id === 'number' ? req.id : -1, error: toWireError(err) });
  });
});

void (async () => {
  const gpu = await browserGpu().catch(() => undefined);
  const adapter = await gpu?.requestAdapter().catch(() => null);
  post({
    type: 'hello',
    crossOriginIsolated: isolated(),
    webgpu: !!adapter,
    adapter: adapter ? describeAdapter(adapter.info) : undefined,
    softwareAdapter: adapter ? isSoftwareAdapter(adapter.info, adapter) : undefined,
    hardwareConcurrency: base.hardwareConcurrency(),
  });
})();
