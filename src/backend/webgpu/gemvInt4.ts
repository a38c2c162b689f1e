/**
 * One-row GPTQ int4 GEMV dispatches for decode (wgsl/gemv_int4.wgsl, entries `grouped` and
 * `dual`), with the fusions the backend's peepholes hand them: an RMSNorm prologue on the input,
 * a SwiGLU or residual-add epilogue, and w1 + w2 of the MLP in one dispatch.
 */
import { ArgumentError } from '../../errors.js';
import type { WGptq } from './backend.js';
import type { KernelSpec } from './kernels.js';
import { f32, whole, type BindKind, type BindRange, type GBuf, type Kernel, type Recorder } from './recorder.js';

/** A one-row int4 GEMV held back for fusion (see the backend's settle). */
export interface HeldGemv {
  out: GBuf;
  x: GBuf;
  w: WGptq;
  /** its input is this RMSNorm's output, computed in the GEMV's prologue */
  norm?: HeldNorm;
  /** residual add as the epilogue: resid += out */
  resid?: GBuf;
  /** its input already quantised for the integer kernels (by the pass that computed it: a GEMV's epilogue, the attention) */
  pre?: QuantX;
}

/** An epilogue that also quantises the GEMV's output for the next integer GEMV (QOUT). */
export interface QuantOut {
  /** the next RMSNorm's weight: the residual sum times it is quantised (with its Σ x²) */
  gamma?: GBuf;
}

/** out = RMSNorm(x) · w of one row of `cols` values. */
export interface HeldNorm {
  out: GBuf;
  x: GBuf;
  w: GBuf;
  eps: number;
  cols: number;
}

/**
 * Unit slots per workgroup of the dual (w1+w2) GEMV: small workgroups, several units per thread,
 * so several workgroups share an SM out of phase (measured best on the H100, bench/NOTES.md).
 */
const DUAL_MAX_SLOTS = 32;

/**
 * The default variant: Q1 (4 columns per thread), units of 2 word rows (both kernels), at most 64
 * unit slots per workgroup, the next unit's weights prefetched, integer math: measured fastest on
 * the H200 (bench/NOTES.md, session 8; GPU step 5.5 → 4.2 ms on 14B against the f32 kernels'
 * best, which had split units instead of ID).
 */
export const DEFAULT_INT4_VARIANT = 'Q1,RB2,GS64,PF,ID,DRB2';

/** the tokens Int4Variant accepts ('GS<n>' and 'DGS<n>' besides) */
const TOKENS = new Set(['Q1', 'RB2', 'RB8', 'PF', 'PF2', 'EL', 'NOMATH', 'DPF', 'DRB2', 'SU', 'ID']);

/**
 * A one-row int4 GEMV variant (WebGpuOptions.int4Variant), parsed once: it is consulted on every
 * decode dispatch. Either 'rowtable' (the per-row-table kernel) or comma-separated tokens:
 * - grouped kernel: 'Q1' (4 columns per thread), 'RB2' / 'RB8' (2 / 8 word rows per unit, else 4;
 *   RB8 with PF only, else 4), 'GS<n>' (at most n
 *   unit slots per workgroup), 'PF' (prefetch the next unit's weights; needs Q1), 'PF2'
 *   (prefetch the next two units'; implies PF);
 * - dual w1+w2 kernel (runs whenever Q1 is set): 'DRB2' (2 word rows per unit, else 4), 'DPF'
 *   (prefetch the next unit's weights), 'DGS<n>' (at most n unit slots per workgroup, default 32);
 * - both: 'EL' (with the RMSNorm prologue, issue the first unit's weight loads before it: grouped
 *   with PF/PF2, dual always), 'SU' (split units: unit j of a group takes rows j, j + nb, … so a
 *   warp's load instruction reads neighbouring rows; grouped with PF, dual where rows per group
 *   divide by its unit rows), 'NOMATH' (diagnostic: the same loads without the dequantisation),
 *   'ID' (integer math: the input quantised per block of 16 values to 24-bit integers, by the
 *   previous GEMV's epilogue or one more dispatch, then dp4a dot products; needs Q1, PF, RB2 and
 *   DRB2, no SU; used where the rows per group are even; the input's error ≤ 6e-8 of its
 *   block's largest value, f32-grade).
 * Unknown tokens are rejected (a typo would otherwise benchmark the default silently).
 */
export class Int4Variant {
  /** the kernels compiled for this variant, by a numeric key of slots and fusions (hot path) */
  readonly kernels = new Map<number, Kernel>();
  /** the per-row-table kernel instead of the grouped one */
  readonly rowTable: boolean;
  /** 4 columns per thread (the dual w1+w2 kernel needs it) */
  readonly q1: boolean;
  /** word rows per unit of the grouped kernel: 2, 4 or 8 (8 with PF only) */
  readonly rows: number;
  /** prefetch the next unit's weights (needs Q1; used where the rows per group divide by the unit's) */
  readonly pf: boolean;
  /** prefetch two units ahead (PF2; implies pf) */
  readonly pf2: boolean;
  /** first unit's weight loads before the norm prologue */
  readonly el: boolean;
  /** split units (rows j, j + nb, … of a group) */
  readonly su: boolean;
  /** at most this many unit slots per workgroup; 0 = as many as fit */
  readonly slotCap: number;
  /** the same for the dual kernel */
  readonly dualSlotCap: number;
  /** word rows per unit of the dual kernel */
  readonly dualRows: number;
  /** the grouped kernel's defines common to every matrix (PF, PF2, EL are added per matrix) */
  readonly defines: readonly string[];
  /** the dual kernel's variant defines (GROUPED, Q1, DUAL, NORM, IDOT added by the dispatcher) */
  readonly dualDefines: readonly string[];
  /** integer math over a quantised input (ID) */
  readonly idot: boolean;

  constructor(readonly text: string) {
    const tokens = text.split(',').filter(Boolean);
    this.rowTable = text === 'rowtable';
    if (!this.rowTable) {
      const bad = tokens.filter((d) => !TOKENS.has(d) && !/^D?GS\d+$/.test(d));
      if (bad.length) throw new ArgumentError(`int4Variant: unknown token(s) ${bad.join(', ')} in '${text}'`);
    }
    const has = (d: string) => tokens.includes(d);
    this.q1 = has('Q1');
    this.rows = has('RB2') ? 2 : has('RB8') ? 8 : 4;
    this.pf2 = has('PF2');
    this.pf = has('PF') || this.pf2;
    this.el = has('EL');
    this.su = has('SU');
    this.slotCap = Number(/(?:^|,)GS(\d+)/.exec(text)?.[1] ?? 0);
    this.dualSlotCap = Number(/(?:^|,)DGS(\d+)/.exec(text)?.[1] ?? DUAL_MAX_SLOTS);
    this.defines = ['Q1', 'NOMATH'].filter(has);
    const dual = ['NOMATH', 'DRB2', 'DPF', 'EL'].filter(has);
    // DPRE: the first unit is loaded before the loop (the prefetch pipeline's start, or EL's load)
    if (has('DPF') || this.el) dual.push('DPRE');
    this.dualDefines = dual;
    this.dualRows = has('DRB2') ? 2 : 4;
    this.idot = has('ID');
    if (this.pf && !this.q1) throw new ArgumentError(`int4Variant: PF/PF2 need Q1, got ${text}`);
    // the integer kernels' unit is one quantisation block: 2 consecutive word rows
    if (this.idot && !(this.pf && this.rows === 2 && this.dualRows === 2 && !this.su)) {
      throw new ArgumentError(`int4Variant: ID needs Q1, PF or PF2, RB2 and DRB2, and no SU; got ${text}`);
    }
  }
}

/** What the dispatchers need from the backend. */
export interface GemvContext {
  readonly rec: Recorder;
  readonly limits: GPUSupportedLimits;
  /** a hot-path kernel memoised by key (the key must determine the spec) */
  kernel(key: string, spec: () => KernelSpec): Kernel;
  /** bound where a kernel has no bias */
  readonly dummy: GBuf;
  /** the GEMV variant (WebGpuOptions.int4Variant) */
  readonly variant: Int4Variant;
  /** a scratch buffer of at least `bytes` for `name` (kept and reused) */
  scratch(name: string, bytes: number): GBuf;
  /** quantSet's records of sets A and B, by the buffer they were made for */
  readonly quantSets: ({ buf: GBuf; q: QuantX } | undefined)[];
}

/**
 * A quantised GEMV input for the integer (ID) kernels (wgsl/quant_block.wgsl): word rows and per
 * block of 16 values (scale, Σ x²). Two sets, A and B, alternate: a GEMV reading one writes its
 * quantised output into the other.
 */
export interface QuantX {
  readonly set: 0 | 1;
  readonly xq: BindRange;
}

/** The set a GEMV reading `input` (or nothing quantised) writes its quantised output of R word rows into. */
function outputSet(ctx: GemvContext, input: QuantX | undefined, R: number): QuantX {
  return quantSet(ctx, input?.set === 0 ? 1 : 0, R);
}

/** Quantisation set `set`, sized for an input of R word rows. */
export function quantSet(ctx: GemvContext, set: 0 | 1, R: number): QuantX {
  // 2 vec4s per word row, then one per block of 2 rows (the set's record is made again only when
  // its buffer grows: this runs several times a decode step)
  const g = ctx.scratch(set ? 'int gemv x B' : 'int gemv x A', 32 * R + 16 * Math.ceil(R / 2));
  const memo = ctx.quantSets[set];
  if (memo?.buf === g) return memo.q;
  const q: QuantX = { set, xq: whole(g) };
  ctx.quantSets[set] = { buf: g, q };
  return q;
}

/** Whether `w`'s one-row GEMV runs the integer kernels (blocks of 2 word rows inside its groups). */
export function intInput(variant: Int4Variant, w: WGptq): boolean {
  return variant.idot && w.rowsPerGroup > 0 && w.rowsPerGroup % 2 === 0 && !w.perm;
}

/**
 * Quantises the GEMV input (`norm`: the held RMSNorm's input times its weight, the norm's factor
 * being applied by the GEMV) into set A (wgsl/quant_x.wgsl).
 */
function quantise(ctx: GemvContext, x: GBuf, norm: HeldNorm | undefined, w: WGptq): QuantX {
  const R = w.R;
  const q = quantSet(ctx, 0, R);
  const kern = norm
    ? ctx.kernel('quant_x|norm', () => ({ file: 'quant_x', entry: 'quant', defines: ['NORM'], bindings: { 1: 'r', 2: 'r', 19: 'w' } }))
    : ctx.kernel('quant_x', () => ({ file: 'quant_x', entry: 'quant', bindings: { 1: 'r', 19: 'w' } }));
  const bufs = { 1: whole(norm ? norm.x : x), 2: norm && whole(norm.w), 19: q.xq } as Record<number, BindRange>;
  ctx.rec.dispatch(kern, [R / 2, R, 0, 0], bufs, [Math.ceil(R / 128)], [], ctx.rec.profilingOn ? `${norm ? 'rmsnorm+' : ''}quant_x ${w.inFeatures}` : undefined);
  return q;
}

/** Defines and bindings of a QOUT epilogue (added to a kernel spec). */
function quantOutSpec(qo: QuantOut, defines: string[], bindings: Record<number, BindKind>): void {
  defines.push('QOUT');
  bindings[19] = 'w';
  if (qo.gamma) {
    defines.push('QNORM');
    bindings[18] = 'r';
  }
}

/**
 * Unit slots per workgroup of the grouped int4 GEMV: one per work unit (group × rb word rows) up
 * to the device's workgroup size and memory, a multiple of 8, at least 8; a 'GS<n>' variant token
 * (or `slotCap`) caps them (smaller workgroups, several units per thread).
 */
function unitSlots(ctx: GemvContext, w: WGptq, tpr: number, rb: number, matrices = 1, slotCap = 0, norm = false): number {
  const units = w.G * Math.ceil(w.rowsPerGroup / rb);
  const lim = ctx.limits;
  const maxThreads = Math.min(lim.maxComputeInvocationsPerWorkgroup, lim.maxComputeWorkgroupSizeX);
  // workgroup memory: 16 floats per slot and matrix + 256 floats per matrix; with the norm
  // prologue also one float per thread + 32; 32 floats for a quantised output (QOUT, reserved
  // whether or not this dispatch has one)
  const perSlot = 64 * matrices + (norm ? 4 * tpr : 0);
  const fixed = 1024 * matrices + (norm ? 128 : 0) + 128;
  let maxSlots = Math.min(Math.floor(maxThreads / tpr / 8) * 8, Math.floor((lim.maxComputeWorkgroupStorageSize - fixed) / perSlot / 8) * 8);
  const cap = slotCap || ctx.variant.slotCap;
  if (cap >= 8) maxSlots = Math.min(maxSlots, Math.floor(cap / 8) * 8);
  const rounds = Math.ceil(units / maxSlots);
  return Math.max(8, Math.ceil(Math.ceil(units / rounds) / 8) * 8);
}

/** Whether `w` (out ← w·x, `outLength` floats) can run in one dual dispatch with the held GEMV `a`. */
export function pairable(variant: Int4Variant, a: HeldGemv, out: GBuf, x: GBuf, outLength: number, w: WGptq): boolean {
  const b = a.w;
  return (
    variant.q1 &&
    x === a.x &&
    !w.perm &&
    out !== a.out &&
    out !== a.x &&
    w.rowsPerGroup > 0 &&
    w.rowsPerGroup === b.rowsPerGroup &&
    w.inFeatures === b.inFeatures &&
    w.outFeatures === b.outFeatures &&
    !w.bias &&
    !b.bias &&
    w.chunks.length === 1 &&
    b.chunks.length === 1 &&
    outLength >= w.outFeatures
  );
}

/** The variant's kernel for `key` (it must determine the spec), without building a string key per dispatch. */
function variantKernel(ctx: GemvContext, key: number, spec: () => KernelSpec): Kernel {
  const memo = ctx.variant.kernels;
  let k = memo.get(key);
  if (!k) {
    k = ctx.kernel(`gemv4|${ctx.variant.text}|${key}`, spec);
    memo.set(key, k);
  }
  return k;
}

/**
 * y1 ← w1(x) · silu(w2(x)) and y2 ← w2(x) in one dispatch (entry `dual`); with `qo`, y1 is also
 * quantised for the next integer GEMV (returned).
 */
export function dispatchDual(ctx: GemvContext, a: HeldGemv, b: HeldGemv, qoWanted?: QuantOut): QuantX | undefined {
  const norm = a.norm;
  const vr = ctx.variant;
  // storage bindings with the norm prologue: 9, +1 for the integer input, +1 for the quantised
  // output; devices with fewer (Chromium: 10) run the f32 kernel or leave the output to a
  // quantisation dispatch
  const storage = ctx.limits.maxStorageBuffersPerShaderStage;
  const idot = intInput(vr, a.w) && (!norm || storage >= 10);
  const qo = qoWanted && (!norm || storage >= (idot ? 11 : 10)) ? qoWanted : undefined;
  const GS = unitSlots(ctx, a.w, 4, vr.dualRows, 2, vr.dualSlotCap, !!norm);
  // split units need whole units
  const su = vr.su && a.w.rowsPerGroup % vr.dualRows === 0;
  // every define the kernel gets is in the key: the dual defines follow the variant text
  const kern = variantKernel(ctx, -(16 * GS + (qo ? 8 : 0) + (idot ? 4 : 0) + (su ? 2 : 0) + (norm ? 1 : 0)) - 1, () => {
    const defines = ['GROUPED', 'Q1', 'DUAL', ...(norm ? ['NORM'] : []), ...(su ? ['SU'] : []), ...vr.dualDefines];
    const bindings = (norm ? { 1: 'w', 2: 'r', 3: 'r', 8: 'r', 9: 'r', 10: 'w', 11: 'r', 12: 'r', 13: 'w' } : { 1: 'w', 2: 'r', 3: 'r', 5: 'r', 8: 'r', 9: 'r', 10: 'w' }) as Record<number, BindKind>;
    if (idot) {
      defines.push('IDOT');
      bindings[15] = 'r';
    }
    if (qo) quantOutSpec(qo, defines, bindings);
    return { file: 'gemv_int4', entry: 'dual', defines, values: { GS }, bindings };
  });
  const q = idot ? (a.pre ?? quantise(ctx, a.x, norm, a.w)) : undefined;
  const out = qo ? outputSet(ctx, q, Math.ceil(a.w.outFeatures / 8)) : undefined;
  const K = a.w.inFeatures;
  const N = a.w.outFeatures;
  const c1 = a.w.chunks[0];
  const c2 = b.w.chunks[0];
  // one literal with every binding the kernel may have (a fast-mode object: no keys added later)
  const bufs = {
    1: whole(a.out),
    2: whole(c1.qw),
    3: whole(c1.sz),
    5: norm ? undefined : whole(a.x),
    8: whole(c2.qw),
    9: whole(c2.sz),
    10: whole(b.out),
    11: norm && whole(norm.x),
    12: norm && whole(norm.w),
    13: norm && whole(norm.out),
    15: q?.xq,
    19: out?.xq,
  } as Record<number, BindRange>;
  ctx.rec.dispatch(kern, [a.w.R, a.w.G, N, 0, 0, 0, a.w.rowsPerGroup, c1.tiles, f32(norm?.eps ?? 0), 0, 0, 0], bufs, [c1.tiles], [], ctx.rec.profilingOn ? `${norm ? 'rmsnorm+' : ''}gemv_int4 dual${idot ? ' int' : ''}+swiglu${qo ? '+quant' : ''} ${K}x${N}` : undefined);
  return out;
}

/**
 * One-row int4 GEMV over uniform groups (entry `grouped`); with `sw`, also sw[c] = sw[c] ·
 * silu(out[c]); with `qo`, its final output (the residual sum with `resid`) is also quantised for
 * the next integer GEMV (returned).
 */
export function dispatchGrouped(ctx: GemvContext, m: HeldGemv, sw: GBuf | undefined, qo?: QuantOut): QuantX | undefined {
  const { out, x, w, norm, resid } = m;
  const vr = ctx.variant;
  // PF / PF2 (prefetch) need whole units
  let rows = vr.rows;
  let pf = vr.pf && w.rowsPerGroup % rows === 0;
  if (rows === 8 && !pf) {
    // 8-row units only in the prefetch pipeline; elsewhere 4
    rows = 4;
    pf = vr.pf && w.rowsPerGroup % 4 === 0;
  }
  const GS = unitSlots(ctx, w, vr.q1 ? 4 : 2, rows, 1, 0, !!norm);
  const su = pf && vr.su;
  // integer math where the prefetch pipeline runs (whole units)
  const idot = pf && intInput(vr, w);
  const qkey = qo ? (qo.gamma ? 2 : 1) : 0;
  const kern = variantKernel(ctx, ((128 * GS + (sw ? 1 : 0) + (norm ? 2 : 0) + (resid ? 4 : 0) + (pf ? 8 : 0) + (su ? 16 : 0) + (idot ? 32 : 0)) * 4 + qkey) * 16 + rows, () => {
    const bindings: Record<number, BindKind> = { 1: 'w', 2: 'r', 3: 'r', 6: 'r' };
    const defines = ['GROUPED', ...vr.defines];
    if (rows !== 4) defines.push(`RB${rows}`);
    if (pf) defines.push('PF');
    if (pf && vr.pf2) defines.push('PF2');
    if (su) defines.push('SU');
    // EL moves the PF pipeline's first loads; without PF it has nothing to move
    if (pf && vr.el) defines.push('EL');
    if (sw) {
      defines.push('SWIGLU');
      bindings[7] = 'w';
    }
    if (norm) {
      defines.push('NORM');
      Object.assign(bindings, { 11: 'r', 12: 'r', 13: 'w' });
    } else {
      bindings[5] = 'r';
    }
    if (resid) {
      defines.push('RESID');
      bindings[14] = 'w';
    }
    if (idot) {
      defines.push('IDOT');
      bindings[15] = 'r';
    }
    if (qo) quantOutSpec(qo, defines, bindings);
    return { file: 'gemv_int4', entry: 'grouped', defines, values: { GS }, bindings };
  });
  const K = w.inFeatures;
  const N = w.outFeatures;
  const bias = w.bias ?? ctx.dummy;
  // labels name the fusions in per-kernel profiles; built only while profiling (hot path)
  const label = ctx.rec.profilingOn ? `${norm ? 'rmsnorm+' : ''}gemv_int4${idot ? ' int' : ''}${sw ? '+swiglu' : ''}${resid ? '+residual' : ''}${qo ? '+quant' : ''} ${K}x${N}` : undefined;
  const q = idot ? (m.pre ?? quantise(ctx, x, norm, w)) : undefined;
  const qout = qo ? outputSet(ctx, q, Math.ceil(N / 8)) : undefined;
  const gamma = qo?.gamma && whole(qo.gamma);
  for (const c of w.chunks) {
    // one literal with every binding the kernel may have (a fast-mode object: no keys added later)
    const bufs = {
      1: whole(out),
      2: whole(c.qw),
      3: whole(c.sz),
      5: norm ? undefined : whole(x),
      6: whole(bias),
      7: sw && whole(sw),
      11: norm && whole(norm.x),
      12: norm && whole(norm.w),
      13: norm && whole(norm.out),
      14: resid && whole(resid),
      15: q?.xq,
      18: gamma,
      19: qout?.xq,
    } as Record<number, BindRange>;
    ctx.rec.dispatch(kern, [w.R, w.G, N, c.tile0, w.bias ? 1 : 0, 0, w.rowsPerGroup, c.tiles, f32(norm?.eps ?? 0), 0, 0, 0], bufs, [c.tiles], [], label);
  }
  return qout;
}
