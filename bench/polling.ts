/**
 * Dawn's polling per decoded token under the Node wait hooks' settings (bindings/node/patientPolling.ts):
 * Dawn's ticks (each a native function that outlives the young generation), GC pauses by kind and
 * tok/s, one greedy generation per setting in one process (settings alternate, twice each).
 *
 *   node dist/bench/polling.js --model synthetic:tiny-int4 --tokens 200 --throttle 0,0.025,0.05
 */
import { constants as perf } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadModel } from '../bindings/node/index.js';
import type { PatientPolling } from '../bindings/node/patientPolling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { watchGc } from './gc.js';
import { appendJsonl } from './jsonl.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'synthetic:tiny-int4' },
    tokens: { type: 'string', default: '200' },
    throttle: { type: 'string', default: '0,0.025' },
    kv: { type: 'string', default: 'int8' },
    out: { type: 'string', default: 'bench/out/polling.jsonl' },
  },
});

const n = Number(values.tokens);
const model = await loadModel(values.model, { backend: 'webgpu', kvCache: { quant: values.kv as 'f32' | 'int8' } });
const hooks = (model.backend as WebGpuBackend).rec.waitHooks as PatientPolling | undefined;
if (!hooks || !('throttleMs' in hooks)) throw new Error('the backend has no patient-polling wait hooks (Node platform expected)');

const { gcs, obs } = watchGc();

const settings = values.throttle!.split(',').map(Number);
for (const throttle of [...settings, ...settings]) {
  hooks.throttleMs = throttle;
  model.reset();
  const g0 = gcs.length;
  const ticks0 = hooks.ticks;
  const t0 = performance.now();
  let got = 0;
  for await (const _ of model.generate([9707, 11, 1879], { doSample: false, repetitionPenalty: 1, stopTokenIds: [], maxNewTokens: n })) got++;
  const s = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 10)); // gc entries arrive asynchronously
  const mine = gcs.slice(g0);
  const row = {
    bench: 'polling',
    model: values.model,
    backend: model.backend.description,
    throttle_ms: throttle,
    tokens: got,
    tok_s: +(got / s).toFixed(2),
    dawn_ticks_per_token: +((hooks.ticks - ticks0) / got).toFixed(1),
    gc_minor: mine.filter((g) => g.kind === perf.NODE_PERFORMANCE_GC_MINOR).length,
    gc_major: mine.filter((g) => g.kind === perf.NODE_PERFORMANCE_GC_MAJOR).length,
    gc_ms: +mine.reduce((a, g) => a + g.ms, 0).toFixed(2),
  };
  appendJsonl(values.out!, { ...row, date: new Date().toISOString() });
  console.log(JSON.stringify(row));
}
obs.disconnect();
await model.dispose();
