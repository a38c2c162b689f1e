/**
 * Node's patient polling (bindings/node/patientPolling.ts): while a GPU wait has lasted past its
 * patience, Dawn's event-loop ticks come at most about once a ms instead of every turn; short
 * waits and everything else the host schedules are untouched. Real Dawn on SwiftShader: a compute
 * job that keeps the (software) GPU busy for a while, waited on through onSubmittedWorkDone.
 */
import '../setup/webgpu.js';
import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../../bindings/node/gpu.js';
import { isDawnTick, patientPolling } from '../../bindings/node/patientPolling.js';

const BUSY = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  var x = f32(id.x);
  for (var i = 0u; i < 20000u; i++) { x = x * 0.9999999 + 0.5; }
  o[id.x] = x;
}`;

async function busyDevice() {
  const gpu = (await nodeGpu())!;
  const adapter = (await gpu.requestAdapter())!;
  const device = await adapter.requestDevice();
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: BUSY }), entryPoint: 'main' } });
  const out = device.createBuffer({ size: 4 * 64 * 512, usage: GPUBufferUsage.STORAGE });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] });
  const submitBusy = (groups: number) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(groups);
    pass.end();
    device.queue.submit([enc.finish()]);
  };
  return { device, submitBusy };
}

/**
 * Dawn's polling ticks scheduled during `wait` (Immediates and Timeouts whose callback is Dawn's,
 * read from Node's timer objects), with when they were scheduled.
 */
async function dawnTicks(wait: () => Promise<unknown>) {
  const times: number[] = [];
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      const r = resource as { _onImmediate?: unknown; _onTimeout?: unknown };
      if ((type === 'Immediate' && isDawnTick(r._onImmediate)) || (type === 'Timeout' && isDawnTick(r._onTimeout))) times.push(performance.now());
    },
  });
  const t0 = performance.now();
  hook.enable();
  try {
    await wait();
  } finally {
    hook.disable();
  }
  return { ms: performance.now() - t0, after: (ms: number) => times.filter((t) => t - t0 > ms).length, total: times.length };
}

describe('patient polling of Dawn waits (Node)', () => {
  it("recognises Dawn's tick callbacks and nothing of the host's", async () => {
    const { device, submitBusy } = await busyDevice();
    const seen: unknown[] = [];
    const g = globalThis as unknown as { setImmediate: (...a: unknown[]) => unknown };
    const original = g.setImmediate;
    g.setImmediate = (...a: unknown[]) => {
      seen.push(a[0]);
      return (original as (...a: unknown[]) => unknown)(...a);
    };
    try {
      submitBusy(8);
      await device.queue.onSubmittedWorkDone();
    } finally {
      g.setImmediate = original;
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every(isDawnTick)).toBe(true);
    function named() {}
    expect([() => 1, named, named.bind(null), Math.max, setImmediate].some(isDawnTick)).toBe(false);
    device.destroy();
  });

  it('polls a long wait about once a ms after its patience, every turn before', async () => {
    const { device, submitBusy } = await busyDevice();
    const hooks = patientPolling(3);
    const g = globalThis as unknown as { setImmediate: unknown };
    const original = g.setImmediate;
    // without the hooks: Dawn ticks on every turn
    submitBusy(512);
    const eager = await dawnTicks(() => device.queue.onSubmittedWorkDone());
    // with them
    submitBusy(512);
    const patient = await dawnTicks(async () => {
      hooks.enter();
      try {
        await device.queue.onSubmittedWorkDone();
      } finally {
        hooks.leave();
      }
    });
    expect(g.setImmediate).toBe(original);
    // the job must outlast the patience by far, or this test proves nothing
    expect(eager.ms).toBeGreaterThan(40);
    expect(patient.ms).toBeGreaterThan(40);
    // past patience + one timer: at most one callback per ms (a 1 ms timer re-armed by each tick)
    const late = patient.after(5);
    expect(late).toBeLessThanOrEqual(Math.ceil(patient.ms - 5) + 2);
    expect(eager.after(5) / (eager.ms - 5)).toBeGreaterThan((3 * late) / (patient.ms - 5));
    device.destroy();
  });

  it("with a throttle, spaces Dawn's ticks before the patience runs out (the turns between are the host's own)", async () => {
    const { device, submitBusy } = await busyDevice();
    const run = async (throttleMs: number) => {
      const hooks = patientPolling(10_000, throttleMs);
      submitBusy(512);
      const t0 = performance.now();
      hooks.enter();
      try {
        await device.queue.onSubmittedWorkDone();
      } finally {
        hooks.leave();
      }
      return { ms: performance.now() - t0, ticks: hooks.ticks };
    };
    const eager = await run(0);
    const spaced = await run(0.5);
    expect(spaced.ms).toBeGreaterThan(40);
    // at most one Dawn tick per 0.5 ms (plus the first), and still polling all along
    expect(spaced.ticks).toBeLessThanOrEqual(spaced.ms / 0.5 + 2);
    expect(spaced.ticks).toBeGreaterThan(spaced.ms / 0.5 / 4);
    expect(eager.ticks / eager.ms).toBeGreaterThan((2 * spaced.ticks) / spaced.ms);
    device.destroy();
  });

  it('leaves short waits, overlapping waits and a host-replaced setImmediate alone', async () => {
    const hooks = patientPolling(3);
    const g = globalThis as unknown as { setImmediate: unknown };
    const original = g.setImmediate;
    hooks.enter();
    hooks.enter();
    expect(g.setImmediate).not.toBe(original);
    hooks.leave();
    expect(g.setImmediate).not.toBe(original);
    // a host callback is never delayed, even far past the patience
    await new Promise((r) => setTimeout(r, 10));
    const t = performance.now();
    await new Promise((r) => setImmediate(r));
    expect(performance.now() - t).toBeLessThan(50);
    hooks.leave();
    expect(g.setImmediate).toBe(original);
    hooks.leave(); // unbalanced: ignored
    expect(g.setImmediate).toBe(original);
    // a host that installs its own setImmediate during a wait keeps it
    hooks.enter();
    const mine = (...a: unknown[]) => (original as (...a: unknown[]) => unknown)(...a);
    g.setImmediate = mine;
    hooks.leave();
    expect(g.setImmediate).toBe(mine);
    g.setImmediate = original;
  });
});
