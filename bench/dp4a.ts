/**
 * Does this adapter have fast packed 8-bit dot products? Prints the WGSL language features and
 * times an ALU-bound loop of dot4I8Packed against the same loop of f32 FMAs (4 chains per thread).
 *
 *   node dist/bench/dp4a.js
 */
import { nodeGpu } from '../bindings/node/gpu.js';

const ITERS = 4096;

function shader(kind: 'dp4a' | 'fma'): string {
  const body =
    kind === 'dp4a'
      ? `var a0 = i32(l); var a1 = 1; var a2 = 2; var a3 = 3;
         let x = v + 0x01020304u; let y = v ^ 0x7f00ff01u;
         for (var i = 0u; i < ${ITERS}u; i++) {
           a0 = dot4I8Packed(x, y + u32(a0)) + a0;
           a1 = dot4I8Packed(x, y + u32(a1)) + a1;
           a2 = dot4I8Packed(x, y + u32(a2)) + a2;
           a3 = dot4I8Packed(x, y + u32(a3)) + a3;
         }
         out[l] = u32(a0 + a1 + a2 + a3);`
      : `var a0 = f32(l); var a1 = 1.0; var a2 = 2.0; var a3 = 3.0;
         let x = f32(v) * 1e-9; let y = 0.999;
         for (var i = 0u; i < ${ITERS}u; i++) {
           a0 = fma(a0, y, x); a1 = fma(a1, y, x); a2 = fma(a2, y, x); a3 = fma(a3, y, x);
           a0 = fma(a0, y, x); a1 = fma(a1, y, x); a2 = fma(a2, y, x); a3 = fma(a3, y, x);
         }
         out[l] = bitcast<u32>(a0 + a1 + a2 + a3);`;
  return `@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let l = g.x;
  let v = l * 2654435761u;
  ${body}
}`;
}

async function main(): Promise<void> {
  const gpu = await nodeGpu({ dawnOptions: ['disable-dawn-features=timestamp_quantization'] });
  if (!gpu) throw new Error('no WebGPU');
  const feats = [...((gpu as unknown as { wgslLanguageFeatures?: Set<string> }).wgslLanguageFeatures ?? [])];
  console.log(JSON.stringify({ wgslLanguageFeatures: feats }));
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no adapter');
  console.log(JSON.stringify({ adapterFeatures: [...adapter.features] }));
  const device = await adapter.requestDevice();
  const threads = 132 * 2048 * 4;
  const out = device.createBuffer({ size: threads * 4, usage: GPUBufferUsage.STORAGE });
  for (const kind of ['fma', 'dp4a', 'fma', 'dp4a'] as const) {
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: shader(kind) });
    const info = await module.getCompilationInfo();
    const errs = info.messages.filter((m) => m.type === 'error');
    if (errs.length) {
      console.log(JSON.stringify({ kind, compile: errs.map((m) => m.message) }));
      await device.popErrorScope();
      continue;
    }
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] });
    const run = async () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(threads / 256);
      pass.end();
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    await run();
    let best = Infinity;
    for (let i = 0; i < 5; i++) best = Math.min(best, await run());
    const err = await device.popErrorScope();
    const ops = threads * ITERS * (kind === 'dp4a' ? 4 : 8);
    console.log(JSON.stringify({ kind, ms: best, gops: ops / best / 1e6, note: kind === 'dp4a' ? 'dot4I8Packed/s (4 MACs each)' : 'fma/s', error: err?.message }));
  }
  device.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
