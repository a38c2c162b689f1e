#!/usr/bin/env node
/**
 * qwen-rt command line: chat | tokenize | logits | bench.
 * Output contracts (DESIGN): tokenize prints a JSON array of ids; logits prints {"ids","logits"};
 * chat --json prints {"response","history","tokens"}.
 */
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import { stdin, stdout, stderr, exit, argv } from 'node:process';
import { loadModel, DEFAULT_MODEL, type QwenModel, type History } from './index.js';
import { vocabularyFor } from '../../src/io/open.js';
import { QwenTokenizer } from '../../src/tokenizer/index.js';
import { nodePlatform } from './index.js';
import { QwenRtError } from '../../src/errors.js';
import type { BackendChoice } from '../../src/backend/select.js';

const USAGE = `usage:
  qwen-rt chat [--model SRC] [--backend auto|cpu|webgpu] [--system TEXT] [--greedy] [--max-new-tokens N] [--json] [QUERY]
  qwen-rt tokenize [--model SRC] TEXT
  qwen-rt logits [--model SRC] --ids 1,2,3 [--top K] [--backend B]
  qwen-rt serve [--model SRC] [--backend B] [--port P] [--host H] [--api-key K] [--cors]   (OpenAI-compatible)
  qwen-rt bench [--model SRC] [--backend B] [--prompt N] [--generate N] [--threads N]
SRC is a checkpoint directory, a URL, or synthetic:<tiny|1.8b|7b|14b>[-int4|-bf16] (default ${DEFAULT_MODEL}).`;

const common = {
  model: { type: 'string', default: DEFAULT_MODEL },
  backend: { type: 'string', default: 'auto' },
  threads: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function int(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new QwenRtError('E_ARGUMENT', `--${name} must be a positive integer, got "${v}"`);
  return n;
}

function backendOf(v: string): BackendChoice {
  if (v === 'auto' || v === 'cpu' || v === 'webgpu') return v;
  throw new QwenRtError('E_ARGUMENT', `--backend must be auto, cpu or webgpu, got "${v}"`);
}

/** A one-line progress bar on stderr while the weights stream in. */
function progressBar(label: string) {
  let last = -1;
  return (p: { bytesDone: number; bytesTotal: number }) => {
    if (!stderr.isTTY) return;
    const pct = p.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
    if (pct === last) return;
    last = pct;
    const width = 30;
    const fill = Math.round((width * pct) / 100);
    stderr.write(`\r${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${pct}% ${(p.bytesDone / 1e6).toFixed(0)}/${(p.bytesTotal / 1e6).toFixed(0)} MB`);
    if (pct === 100) stderr.write('\n');
  };
}

async function open(values: { model: string; backend: string; threads?: string }): Promise<QwenModel> {
  return loadModel(values.model, {
    backend: backendOf(values.backend),
    threads: values.threads ? int('threads', values.threads, 1) : undefined,
    onProgress: progressBar(`loading ${values.model}`),
  });
}

async function cmdTokenize(args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { model: common.model } });
  if (positionals.length !== 1) throw new QwenRtError('E_ARGUMENT', 'tokenize takes exactly one TEXT argument');
  const tok = QwenTokenizer.fromTiktoken(await vocabularyFor(values.model, nodePlatform));
  stdout.write(JSON.stringify(tok.encode(positionals[0])) + '\n');
}

async function cmdLogits(args: string[]) {
  const { values } = parseArgs({ args, options: { ...common, ids: { type: 'string' }, top: { type: 'string' } } });
  if (!values.ids) throw new QwenRtError('E_ARGUMENT', 'logits needs --ids 1,2,3');
  const ids = values.ids.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new QwenRtError('E_ARGUMENT', `--ids: "${s}" is not a token id`);
    return n;
  });
  const k = int('top', values.top, 10);
  const model = await open(values);
  try {
    const logits = await model.forward(ids);
    const top = Array.from(logits.keys())
      .sort((a, b) => logits[b] - logits[a] || a - b)
      .slice(0, k);
    stdout.write(JSON.stringify({ ids: top, logits: top.map((i) => logits[i]) }) + '\n');
  } finally {
    await model.dispose();
  }
}

async function cmdChat(args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      system: { type: 'string' },
      greedy: { type: 'boolean', default: false },
      'max-new-tokens': { type: 'string' },
      json: { type: 'boolean', default: false },
      seed: { type: 'string' },
    },
  });
  const model = await open(values);
  const gen = {
    system: values.system,
    ...(values.greedy ? { doSample: false } : {}),
    ...(values['max-new-tokens'] ? { maxNewTokens: int('max-new-tokens', values['max-new-tokens'], 1) } : {}),
    ...(values.seed ? { seed: Number(values.seed) } : {}),
  };
  try {
    if (positionals.length > 0) {
      const query = positionals.join(' ');
      if (values.json) {
        const r = await model.chat(query, gen);
        stdout.write(JSON.stringify({ response: r.response, history: r.history, tokens: r.tokens }) + '\n');
      } else {
        for await (const d of model.chatStream(query, gen)) stdout.write(d);
        stdout.write('\n');
      }
      return;
    }
    await repl(model, gen, values.model);
  } finally {
    await model.dispose();
  }
}

/** Interactive chat: streaming answers, history, /reset, /system; Ctrl-C stops the answer, not the program. */
async function repl(model: QwenModel, gen: { system?: string }, name: string) {
  const rl = createInterface({ input: stdin, output: stdout, terminal: stdin.isTTY });
  let history: History = [];
  let system = gen.system;
  let current: AbortController | undefined;
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else {
      rl.close();
    }
  });
  stdout.write(`qwen-rt chat — ${name} on ${model.backend.description}. /reset clears history, /system TEXT sets the system prompt, /exit quits.\n`);
  for (;;) {
    let line: string;
    try {
      line = (await rl.question('> ')).trim();
    } catch {
      break; // closed (Ctrl-D / Ctrl-C at the prompt)
    }
    if (!line) continue;
    if (line === '/exit' || line === '/quit') break;
    if (line === '/reset') {
      history = [];
      stdout.write('(history cleared)\n');
      continue;
    }
    if (line.startsWith('/system')) {
      system = line.slice(7).trim() || undefined;
      history = [];
      stdout.write(`(system prompt ${system ? 'set' : 'reset to default'}; history cleared)\n`);
      continue;
    }
    current = new AbortController();
    const t0 = performance.now();
    let response = '';
    try {
      for await (const d of model.chatStream(line, { ...gen, system, history, signal: current.signal })) {
        response += d;
        stdout.write(d);
      }
      history = [...history, [line, response]];
    } catch (e) {
      if (!(e instanceof QwenRtError && e.code === 'E_ABORTED')) throw e;
      stdout.write(' [stopped]');
    } finally {
      current = undefined;
    }
    const s = model.lastStats;
    const secs = (performance.now() - t0) / 1000;
    const tps = s && s.decodeMs > 0 ? ((s.generatedTokens - 1) * 1000) / s.decodeMs : 0;
    stdout.write(`\n(${s?.generatedTokens ?? 0} tokens, ${tps.toFixed(1)} tok/s decode, ${secs.toFixed(1)} s)\n`);
  }
  rl.close();
}

async function cmdBench(args: string[]) {
  const { values } = parseArgs({ args, options: { ...common, prompt: { type: 'string' }, generate: { type: 'string' } } });
  const promptLen = int('prompt', values.prompt, 128);
  const genLen = int('generate', values.generate, 32);
  const model = await open(values);
  try {
    const ids = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % 151643);
    const t0 = performance.now();
    let n = 0;
    let tFirst = t0;
    for await (const _ of model.generate(ids, { doSample: false, repetitionPenalty: 1, stopTokenIds: [], maxNewTokens: genLen })) {
      if (n++ === 0) tFirst = performance.now();
    }
    const t1 = performance.now();
    const row = {
      model: values.model,
      backend: model.backend.description,
      prompt_tokens: promptLen,
      generated_tokens: n,
      prefill_tok_s: (promptLen * 1000) / (tFirst - t0),
      decode_tok_s: ((n - 1) * 1000) / (t1 - tFirst),
      bytes_per_token: model.bytesPerToken,
    };
    stdout.write(JSON.stringify(row) + '\n');
    stdout.write(`prefill ${row.prefill_tok_s.toFixed(1)} tok/s | decode ${row.decode_tok_s.toFixed(2)} tok/s | ${(row.bytes_per_token / 1e6).toFixed(1)} MB/token\n`);
  } finally {
    await model.dispose();
  }
}

/** `qwen-rt serve`: the OpenAI-compatible server (bindings/node/server.ts). */
async function cmdServe(args: string[]) {
  const { serveCommand } = await import('./server.js');
  await serveCommand(args);
}

async function main() {
  const [cmd, ...rest] = argv.slice(2);
  const commands: Record<string, (a: string[]) => Promise<void>> = { chat: cmdChat, tokenize: cmdTokenize, logits: cmdLogits, bench: cmdBench, serve: cmdServe };
  if (!cmd || cmd === '--help' || cmd === '-h' || !commands[cmd]) {
    (cmd && cmd !== '--help' && cmd !== '-h' ? stderr : stdout).write(USAGE + '\n');
    exit(cmd && cmd !== '--help' && cmd !== '-h' ? 2 : 0);
  }
  await commands[cmd](rest);
}

main().catch((e) => {
  if (e instanceof QwenRtError || (e && e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')) {
    stderr.write(`qwen-rt: ${e.message}\n`);
    exit(2);
  }
  stderr.write(`qwen-rt: ${e?.stack ?? e}\n`);
  exit(1);
});
