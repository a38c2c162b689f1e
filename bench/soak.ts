/**
 * Soak tests on the tiny fixture model (CPU):
 *
 *   node dist/bench/soak.js aborts [--count 1000] [--seed S]
 *     random aborts (timers, after k tokens, pre-aborted, abandoned streams, aborts while queued
 *     behind another call) during prefill and decode; after each one the engine's next answer must
 *     equal a fresh engine's, and KV / activation memory must be back at its baseline.
 *
 *   node dist/bench/soak.js server [--clients 32] [--requests 500] [--seed S]
 *     an OpenAI server on 127.0.0.1: `clients` concurrent streaming clients × `requests` each,
 *     every answer equal to its solo greedy answer (no cross-talk), RSS sampled for its peak, then
 *     a graceful shutdown with work still queued.
 *
 * Prints JSON lines and a short table; exit code 1 on any failure. test/hardening runs both with
 * small counts.
 */
import type { QwenModel } from '../src/model/model.js';
import { AbortError } from '../src/errors.js';
import type { GenerationOptions } from '../src/generate/options.js';

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- aborts

type Prompt =
  | { kind: 'chat'; query: string; history?: Array<[string, string]>; sample?: boolean }
  | { kind: 'ids'; ids: number[] };

export interface AbortSoakOptions {
  count: number;
  seed: number;
  /** Tokens per answer (default 16). */
  maxNewTokens?: number;
  log?: (line: string) => void;
}

export interface AbortSoakResult {
  aborts: number;
  /** Runs that ended in an AbortError. */
  abortErrors: number;
  /** Runs the abort reached too late (the answer had finished) or that were abandoned without one. */
  completedOrAbandoned: number;
  /** Answers checked against the fresh engine after an abort. */
  verified: number;
  failures: string[];
  kvBaseline: number;
  kvAfter: number;
  activationBaseline: number;
  activationAfter: number;
  ms: number;
}

function prompts(tokenizerVocab: number, seed: number): Prompt[] {
  const r = rng(seed ^ 0x9e3779b9);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(r() * (tokenizerVocab - 1)));
  return [
    { kind: 'chat', query: 'Hi' },
    { kind: 'chat', query: 'Tell me a story about a cat who learns to fly.' },
    { kind: 'chat', query: 'What is 2 + 2?', history: [['Hello', 'Hi! How can I help?']] },
    { kind: 'chat', query: 'Summarise: ' + 'the quick brown fox jumps over the lazy dog. '.repeat(30) }, // > one 256-token chunk
    { kind: 'chat', query: 'Pick a random word.', sample: true },
    { kind: 'ids', ids: ids(5) },
    { kind: 'ids', ids: ids(40) },
    { kind: 'ids', ids: ids(300) },
  ];
}

/** Greedy (or seeded sampling) with the stop tokens masked, so every answer runs its full length. */
function optionsFor(model: QwenModel, p: Prompt, maxNewTokens: number, signal?: AbortSignal): GenerationOptions & { history?: Array<[string, string]> } {
  const t = model.tokenizer;
  const o: GenerationOptions & { history?: Array<[string, string]> } = { maxNewTokens, signal };
  if (p.kind === 'ids') return { ...o, doSample: false, repetitionPenalty: 1, stopTokenIds: [] };
  const sample = p.sample ? { doSample: true, seed: 7, topP: 0.8, temperature: 0.9 } : { doSample: false };
  return { ...o, ...sample, history: p.history, logitBias: { [t.imEnd]: -100, [t.imStart]: -100, [t.endOfText]: -100 } };
}

/** The token stream of one prompt. */
function stream(model: QwenModel, p: Prompt, o: GenerationOptions & { history?: Array<[string, string]> }): AsyncGenerator<unknown> {
  return p.kind === 'ids' ? model.generate(p.ids, o) : model.chatStream(p.query, o);
}

async function answer(model: QwenModel, p: Prompt, maxNewTokens: number): Promise<string> {
  if (p.kind === 'ids') {
    const out: number[] = [];
    for await (const id of model.generate(p.ids, optionsFor(model, p, maxNewTokens))) out.push(id);
    return out.join(',');
  }
  const r = await model.chat(p.query, optionsFor(model, p, maxNewTokens));
  return JSON.stringify([r.response, r.tokens]);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `count` random aborts on `model`, checking each next answer against `fresh` (a second
 * engine on the same checkpoint whose cache is reset before every reference answer).
 */
export async function abortSoak(model: QwenModel, fresh: QwenModel, opts: AbortSoakOptions): Promise<AbortSoakResult> {
  const t0 = performance.now();
  const n = opts.maxNewTokens ?? 16;
  const ps = prompts(model.config.vocabSize, opts.seed);
  const reference: string[] = [];
  for (const p of ps) {
    fresh.reset();
    reference.push(await answer(fresh, p, n));
  }
  // warm-up: the cache and activations reach their working size, which is the baseline
  for (let i = 0; i < ps.length; i++) {
    const got = await answer(model, ps[i], n);
    if (got !== reference[i]) throw new Error(`before any abort, prompt ${i} differs from the fresh engine: ${got} vs ${reference[i]}`);
  }
  const base = model.backend.memoryUsage();
  const r = rng(opts.seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)];
  const res: AbortSoakResult = {
    aborts: 0, abortErrors: 0, completedOrAbandoned: 0, verified: 0, failures: [],
    kvBaseline: base.kvBytes, kvAfter: 0, activationBaseline: base.activationBytes, activationAfter: 0, ms: 0,
  };
  const fail = (msg: string) => {
    res.failures.push(msg);
    opts.log?.(`FAIL ${msg}`);
  };
  /** Drains a stream; `onToken(k)` may abort. Returns 'aborted' | 'done', rethrows anything else. */
  const drain = async (g: AsyncGenerator<unknown>, onToken?: (k: number) => boolean | void): Promise<'aborted' | 'done' | 'left'> => {
    let k = 0;
    try {
      for await (const _ of g) {
        k++;
        if (onToken?.(k) === true) return 'left'; // abandoned mid-stream (for-await calls return())
      }
      return 'done';
    } catch (e) {
      if (e instanceof AbortError) return 'aborted';
      throw e;
    }
  };

  for (let i = 0; i < opts.count; i++) {
    const pi = Math.floor(r() * ps.length);
    const p = ps[pi];
    const mode = Math.floor(r() * 6);
    const ac = new AbortController();
    const at = Math.floor(r() * (n + 2));
    let outcome: string;
    try {
      if (mode === 0) {
        // timer: lands during prefill's first task, between decode steps, or after the end
        const timer = setTimeout(() => ac.abort(), Math.floor(r() * 3 * n));
        outcome = await drain(stream(model, p, optionsFor(model, p, n, ac.signal)));
        clearTimeout(timer);
      } else if (mode === 1) {
        outcome = await drain(stream(model, p, optionsFor(model, p, n, ac.signal)), (k) => void (k === at && ac.abort()));
      } else if (mode === 2) {
        ac.abort();
        outcome = await drain(stream(model, p, optionsFor(model, p, n, ac.signal)));
        if (outcome !== 'aborted') fail(`#${i}: a pre-aborted signal gave ${outcome}`);
      } else if (mode === 3) {
        outcome = await drain(stream(model, p, optionsFor(model, p, n)), (k) => k >= at);
      } else if (mode === 4) {
        // aborted while another call holds the engine; the other call's answer must be intact
        const q = pick(ps);
        const other = answer(model, q, n);
        const mine = drain(stream(model, p, optionsFor(model, p, n, ac.signal)));
        await sleep(Math.floor(r() * n));
        ac.abort();
        outcome = await mine;
        const got = await other;
        if (got !== reference[ps.indexOf(q)]) fail(`#${i}: the call running beside an aborted one differs from the fresh engine`);
      } else {
        // aborted during its own run while the next call already waits behind it
        const q = pick(ps);
        const mine = drain(stream(model, p, optionsFor(model, p, n, ac.signal)), (k) => void (k === at && ac.abort()));
        const next = answer(model, q, n);
        outcome = await mine;
        const got = await next;
        if (got !== reference[ps.indexOf(q)]) fail(`#${i}: the call queued behind an aborted one differs from the fresh engine`);
      }
    } catch (e) {
      fail(`#${i} mode ${mode}: untyped failure ${(e as Error)?.stack ?? e}`);
      outcome = 'error';
    }
    res.aborts++;
    if (outcome === 'aborted') res.abortErrors++;
    else res.completedOrAbandoned++;
    // the next answer equals the fresh engine's
    const vi = Math.floor(r() * ps.length);
    const got = await answer(model, ps[vi], n).catch((e) => `error: ${e}`);
    res.verified++;
    if (got !== reference[vi]) fail(`#${i} (mode ${mode}, prompt ${pi} → verify ${vi}): answer differs from a fresh engine's: ${got.slice(0, 200)} vs ${reference[vi].slice(0, 200)}`);
    if ((i + 1) % 100 === 0) opts.log?.(`${i + 1} aborts, ${res.abortErrors} AbortErrors, ${res.failures.length} failures`);
  }
  const after = model.backend.memoryUsage();
  res.kvAfter = after.kvBytes;
  res.activationAfter = after.activationBytes;
  if (res.kvAfter !== res.kvBaseline) fail(`KV memory ${res.kvAfter} bytes after the aborts, baseline ${res.kvBaseline}`);
  if (res.activationAfter !== res.activationBaseline) fail(`activation memory ${res.activationAfter} after the aborts, baseline ${res.activationBaseline}`);
  res.ms = Math.round(performance.now() - t0);
  return res;
}

// ---------------------------------------------------------------- server

export interface ServerSoakOptions {
  clients: number;
  requests: number;
  seed: number;
  /** Tokens per answer (default 8). */
  maxTokens?: number;
  log?: (line: string) => void;
}

export interface ServerSoakResult {
  requests: number;
  mismatches: number;
  errors: number;
  failures: string[];
  peakRssBytes: number;
  startRssBytes: number;
  endRssBytes: number;
  /** Graceful shutdown with work in flight: answers completed in full, cancelled cleanly, or refused (503). */
  shutdown: { completed: number; cancelled: number; refused: number; bad: number };
  ms: number;
}

/** Parses an SSE chat stream: the concatenated content, whether a finish_reason and [DONE] came, any error event. */
function sseContent(text: string): { content: string; done: boolean; finished: boolean; error?: { message: string; code: string | null } } {
  let content = '';
  let done = false;
  let finished = false;
  let error: { message: string; code: string | null } | undefined;
  for (const block of text.split('\n\n')) {
    if (!block.startsWith('data: ')) continue;
    const data = block.slice(6);
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    const ev = JSON.parse(data);
    if (ev.error) error = ev.error;
    if (ev.choices?.[0]?.finish_reason) finished = true;
    content += ev.choices?.[0]?.delta?.content ?? '';
  }
  return { content, done, finished, error };
}

const SOAK_QUERIES = [
  'Hi', 'What is the capital of France?', 'Write a haiku about rain.', 'Count to five.', 'Translate "cat" into German.',
  'Tell me a joke.', '你好，请介绍一下你自己。', 'List three colours.', 'Why is the sky blue?', 'Explain recursion briefly.',
  'What day comes after Monday?', 'Say something nice.', 'Name a prime number.', '¿Cómo estás?', 'Describe a tree.', 'Finish: once upon a',
];

export async function serverSoak(model: QwenModel, opts: ServerSoakOptions): Promise<ServerSoakResult> {
  const { serve } = await import('../bindings/node/server.js');
  const t0 = performance.now();
  const maxTokens = opts.maxTokens ?? 8;
  const tok = model.tokenizer;
  // stop tokens masked: every answer is maxTokens long, so cross-talk would show
  const bias = { [tok.imEnd]: -100, [tok.imStart]: -100, [tok.endOfText]: -100 };
  const body = (q: string, stream: boolean) =>
    JSON.stringify({ model: 'qwen', messages: [{ role: 'user', content: q }], temperature: 0, max_tokens: maxTokens, logit_bias: bias, stream });
  const server = await serve(model, { port: 0, maxQueue: opts.clients * 2 + 8 });
  if (server.host !== '127.0.0.1') throw new Error(`serve bound ${server.host}, expected loopback`);
  const url = `${server.url}/v1/chat/completions`;
  const res: ServerSoakResult = {
    requests: 0, mismatches: 0, errors: 0, failures: [], peakRssBytes: 0, startRssBytes: process.memoryUsage.rss(), endRssBytes: 0,
    shutdown: { completed: 0, cancelled: 0, refused: 0, bad: 0 }, ms: 0,
  };
  const fail = (msg: string) => {
    if (res.failures.length < 50) res.failures.push(msg);
    opts.log?.(`FAIL ${msg}`);
  };
  let peak = res.startRssBytes;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  // e.g. MaxListenersExceededWarning: listeners piling up per request look like a leak in server logs
  const onWarning = (w: Error) => fail(`process warning: ${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    // solo answers: one request at a time, non-streaming
    const solo = new Map<string, string>();
    for (const q of SOAK_QUERIES) {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(q, false) });
      const j = await r.json();
      if (r.status !== 200) throw new Error(`solo answer for ${q}: ${r.status} ${JSON.stringify(j)}`);
      solo.set(q, j.choices[0].message.content);
    }
    if (new Set(solo.values()).size < SOAK_QUERIES.length / 2) fail(`solo answers are too alike to reveal cross-talk: ${[...solo.values()].join(' | ')}`);
    const r = rng(opts.seed);
    const client = async (c: number) => {
      for (let k = 0; k < opts.requests; k++) {
        const q = SOAK_QUERIES[Math.floor(r() * SOAK_QUERIES.length)];
        try {
          const resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(q, true) });
          const text = await resp.text();
          res.requests++;
          if (res.requests % 1000 === 0) opts.log?.(`${res.requests} requests, ${res.mismatches} mismatches, ${res.errors} errors, RSS ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MiB`);
          if (resp.status !== 200) {
            res.errors++;
            fail(`client ${c} request ${k}: status ${resp.status} ${text.slice(0, 200)}`);
            continue;
          }
          const s = sseContent(text);
          if (!s.done || !s.finished || s.error) {
            res.errors++;
            fail(`client ${c} request ${k}: stream ended without finish_reason and [DONE], or with an error: ${JSON.stringify(s.error)}`);
          } else if (s.content !== solo.get(q)) {
            res.mismatches++;
            fail(`client ${c} request ${k}: ${JSON.stringify(s.content)} ≠ solo ${JSON.stringify(solo.get(q))} for ${JSON.stringify(q)}`);
          }
        } catch (e) {
          res.requests++;
          res.errors++;
          fail(`client ${c} request ${k}: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
    opts.log?.(`${res.requests} requests, ${res.mismatches} mismatches, ${res.errors} errors, peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`);

    // graceful shutdown with work queued: every request completes in full, is cancelled, or refused
    const inflight = Array.from({ length: opts.clients }, async (_, c) => {
      const q = SOAK_QUERIES[c % SOAK_QUERIES.length];
      try {
        const resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(q, true) });
        if (resp.status === 503) return 'refused';
        const s = sseContent(await resp.text());
        if (resp.status === 200 && s.done && s.finished && !s.error && s.content === solo.get(q)) return 'completed';
        // cut short: says so (an error event, code "cancelled") or the connection ended early — never a clean finish
        if (resp.status === 200 && !s.finished && (s.error?.code === 'cancelled' || !s.done) && solo.get(q)!.startsWith(s.content)) return 'cancelled';
        return `bad: ${resp.status} ${JSON.stringify(s)}`;
      } catch (e) {
        // the connection was closed by the shutdown before or while answering
        return (e as Error).message.includes('fetch failed') || (e as Error).name === 'TypeError' ? 'cancelled' : `bad: ${(e as Error).message}`;
      }
    });
    await sleep(5);
    await server.close({ timeoutMs: 200 });
    for (const o of await Promise.all(inflight)) {
      if (o === 'completed' || o === 'cancelled' || o === 'refused') res.shutdown[o]++;
      else {
        res.shutdown.bad++;
        fail(`shutdown: ${o}`);
      }
    }
    if (server.handler.active !== 0) fail(`after close, ${server.handler.active} requests are still active`);
    const after = await fetch(url, { method: 'POST', body: body('Hi', false) }).then((r) => `status ${r.status}`, () => 'refused');
    if (after !== 'refused') fail(`after close the server still answers: ${after}`);
  } finally {
    clearInterval(sampler);
    process.off('warning', onWarning);
    await server.close({ timeoutMs: 100 });
  }
  res.peakRssBytes = Math.max(peak, process.memoryUsage.rss());
  res.endRssBytes = process.memoryUsage.rss();
  res.ms = Math.round(performance.now() - t0);
  return res;
}

// ---------------------------------------------------------------- CLI

async function main(): Promise<void> {
  const { parseArgs } = await import('node:util');
  const { loadModel } = await import('../bindings/node/index.js');
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      count: { type: 'string', default: '1000' },
      clients: { type: 'string', default: '32' },
      requests: { type: 'string', default: '500' },
      seed: { type: 'string', default: '1127' },
      threads: { type: 'string' },
      model: { type: 'string', default: new URL('../../../shared/fixtures/models/qwen-tiny-int4', import.meta.url).pathname },
    },
  });
  const mode = positionals[0] ?? 'aborts';
  const log = (l: string) => process.stderr.write(l + '\n');
  const load = () => loadModel(values.model, { backend: 'cpu', threads: values.threads ? Number(values.threads) : undefined });
  let ok = true;
  if (mode === 'aborts' || mode === 'all') {
    const [model, fresh] = [await load(), await load()];
    const r = await abortSoak(model, fresh, { count: Number(values.count), seed: Number(values.seed), log });
    process.stdout.write(JSON.stringify({ bench: 'soak-aborts', ...r, failures: r.failures.slice(0, 20) }) + '\n');
    process.stdout.write(
      `aborts ${r.aborts} (AbortError ${r.abortErrors}, finished/abandoned ${r.completedOrAbandoned}), answers verified ${r.verified}, ` +
        `KV ${r.kvAfter}/${r.kvBaseline} B, activations ${r.activationAfter}/${r.activationBaseline} B, failures ${r.failures.length}, ${(r.ms / 1000).toFixed(1)} s\n`,
    );
    ok &&= r.failures.length === 0;
    await model.dispose();
    await fresh.dispose();
  }
  if (mode === 'server' || mode === 'all') {
    const model = await load();
    const r = await serverSoak(model, { clients: Number(values.clients), requests: Number(values.requests), seed: Number(values.seed), log });
    process.stdout.write(JSON.stringify({ bench: 'soak-server', clients: Number(values.clients), ...r, failures: r.failures.slice(0, 20) }) + '\n');
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    process.stdout.write(
      `requests ${r.requests} (${values.clients} clients), mismatches ${r.mismatches}, errors ${r.errors}, RSS start ${mib(r.startRssBytes)} peak ${mib(r.peakRssBytes)} end ${mib(r.endRssBytes)}, ` +
        `shutdown ${JSON.stringify(r.shutdown)}, failures ${r.failures.length}, ${(r.ms / 1000).toFixed(1)} s\n`,
    );
    ok &&= r.failures.length === 0;
    await model.dispose();
  }
  if (!ok) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
