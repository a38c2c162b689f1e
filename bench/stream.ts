/**
 * Checkpoint streaming benchmark: reads every tensor of a checkpoint through openCheckpoint's
 * TensorSources in ≤ 64 MiB chunks into one reused buffer (what a backend upload does, minus the
 * upload), and reports bytes, seconds, GB/s and peak RSS (which must stay near the chunk size).
 *   npm run build:ts && node dist/bench/stream.js [--model synthetic:14b-int4] [--chunk-mib 64]
 * Prints one JSON line and a table row.
 */
import { parseArgs } from 'node:util';
import { nodePlatform } from '../bindings/node/platform.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { openSource } from '../src/io/open.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'synthetic:14b-int4' },
    'chunk-mib': { type: 'string', default: '64' },
  },
});
const chunk = Math.min(64, Number(values['chunk-mib'])) * 1024 * 1024;

const t0 = performance.now();
const ck = await openCheckpoint(await openSource(values.model!, nodePlatform), {
  onProgress: (p) => (progress = p.bytesDone),
});
let progress = 0;
const openS = (performance.now() - t0) / 1000;

const buf = new Uint8Array(chunk);
let bytes = 0;
let check = 0; // touch the data so nothing can be skipped
const t1 = performance.now();
for (const name of ck.tensorNames()) {
  const t = ck.tensor(name);
  for (let o = 0; o < t.byteLength; o += chunk) {
    const n = Math.min(chunk, t.byteLength - o);
    await t.read(o, buf.subarray(0, n));
    check = (check + buf[0] + buf[n - 1]) >>> 0;
    bytes += n;
  }
}
const seconds = (performance.now() - t1) / 1000;
await ck.close();
if (bytes !== ck.totalBytes || progress !== ck.totalBytes) {
  throw new Error(`streamed ${bytes} bytes, progress ${progress}, expected ${ck.totalBytes}`);
}

const row = {
  bench: 'stream',
  model: values.model,
  tensors: ck.tensorNames().length,
  bytes,
  chunk_mib: chunk / 1048576,
  open_s: +openS.toFixed(3),
  seconds: +seconds.toFixed(2),
  gb_s: +(bytes / seconds / 1e9).toFixed(2),
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  check,
  date: new Date().toISOString(),
};
console.log(JSON.stringify(row));
console.log('| bench | model | tensors | GB | chunk MiB | open s | s | GB/s | peak RSS MB |');
console.log('|---|---|---|---|---|---|---|---|---|');
console.log(`| stream | ${row.model} | ${row.tensors} | ${(bytes / 1e9).toFixed(2)} | ${row.chunk_mib} | ${row.open_s} | ${row.seconds} | ${row.gb_s} | ${row.peak_rss_mb} |`);
