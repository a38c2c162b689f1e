/**
 * The CPU worker's code as a self-contained script string (no imports, valid as a classic script
 * or an ES module). The platform binding starts it (Node worker_threads or a Web Worker); a Node
 * shim may define globalThis.__qwenWorkerHost = { post(msg), listen(fn) } when `self` is absent.
 *
 * Protocol (see threadPool.ts): the worker instantiates the kernel module once per memory, then
 * sleeps in Atomics.wait on the control block's SEQ word; each bump of SEQ is one job:
 * RUN calls kernel FN of memory MEM on its own [lo, hi) range and counts DONE; YIELD returns to
 * the event loop so a pending 'addMemory' message can be received (acknowledged through ACK).
 */
export const CTRL = {
  SEQ: 0,
  DONE: 1,
  ERR: 2,
  ACK: 3,
  OP: 4,
  FN: 5,
  MEM: 6,
  NARGS: 7,
  /** lo, hi of thread t at RANGES + 2t. */
  RANGES: 16,
  /** Byte offset of the f64 argument array. */
  ARGS_BYTE: 1024,
  MAX_ARGS: 32,
  BYTES: 1024 + 32 * 8,
  MAX_THREADS: 64,
} as const;

export const OP = { RUN: 1, YIELD: 2, EXIT: 3 } as const;

export const cpuWorkerSource = `
const C = ${JSON.stringify(CTRL)};
const OP = ${JSON.stringify(OP)};
const host = typeof globalThis.__qwenWorkerHost === 'object' ? globalThis.__qwenWorkerHost
  : { post: (m) => self.postMessage(m), listen: (f) => self.addEventListener('message', (e) => f(e.data)) };
let ctrl, args, id = 0, module, names, lastSeq = 0;
const fns = [];
function instantiate(memory) {
  const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('wasm kernel abort'); } } });
  fns.push(names.map((n) => inst.exports[n]));
}
function loop() {
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctrl, C.SEQ) === lastSeq) {
      if (++spins > 4000) Atomics.wait(ctrl, C.SEQ, lastSeq);
    }
    lastSeq = Atomics.load(ctrl, C.SEQ);
    const op = ctrl[C.OP];
    if (op === OP.RUN) {
      try {
        const lo = ctrl[C.RANGES + 2 * id], hi = ctrl[C.RANGES + 2 * id + 1];
        if (hi > lo) {
          const n = ctrl[C.NARGS];
          const a = new Array(n + 3);
          a[0] = lo; a[1] = hi; a[2] = id;
          for (let i = 0; i < n; i++) a[i + 3] = args[i];
          fns[ctrl[C.MEM]][ctrl[C.FN]].apply(null, a);
        }
      } catch (e) {
        Atomics.store(ctrl, C.ERR, 1);
        host.post({ type: 'error', message: String(e && e.stack || e) });
      }
      Atomics.add(ctrl, C.DONE, 1);
      Atomics.notify(ctrl, C.DONE);
    } else if (op === OP.YIELD) {
      return;
    } else if (op === OP.EXIT) {
      return;
    }
  }
}
host.listen((msg) => {
  if (msg.type === 'init') {
    ctrl = new Int32Array(msg.ctrl);
    args = new Float64Array(msg.ctrl, C.ARGS_BYTE, C.MAX_ARGS);
    id = msg.id; module = msg.module; names = msg.names;
    for (const m of msg.memories) instantiate(m);
    lastSeq = Atomics.load(ctrl, C.SEQ);
    host.post({ type: 'ready', id });
    loop();
  } else if (msg.type === 'addMemory') {
    instantiate(msg.memory);
    lastSeq = Atomics.load(ctrl, C.SEQ);
    Atomics.add(ctrl, C.ACK, 1);
    Atomics.notify(ctrl, C.ACK);
    loop();
  }
});
`;
