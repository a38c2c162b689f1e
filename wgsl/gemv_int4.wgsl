// GPTQ int4 GEMV (one activation row): y[c] = Σ_k x[k]·s[g(k),c]·(q[k,c] − zero[g(k),c]) + bias[c].
// One pass over the packed weights, f32 math.
//
// Layout (re-tiled at upload): the matrix is cut into tiles of 16 output columns; tile t is
// qw[t][r][16] u32 words for r < R = K/8 word rows (rows sorted by group when desc_act).
// sz[t][g] = 10 words: 8 f16 pairs of scales (columns 2i, 2i+1) + 2 words of zero nibbles
// (stored zero − 1, column c in nibble c%8 of word c/8). The group of word row r is
// r / rpg when rpg > 0, else rowGroup[r].
//
// Entries:
//   grouped (rpg > 0, every checkpoint with uniform groups): a workgroup owns one tile. Work units
//     are (group g, RB consecutive word rows of g); thread (slot = l / TPR, h = l % TPR) owns 8
//     columns (vec4 words h and h + 2 of a row; 4 columns, word h, with Q1) of units
//     slot, slot + GS, … — on a GPU with 1024-thread workgroups every thread has one unit, so
//     all of a tile's loads are issued at once. A unit loads its RB rows first, accumulates the
//     raw Σ x·q, then applies its group's scale and zero once: s·(Σ x·q − zero·Σ x). Nibbles
//     become exact floats with one and/or + one add each (see dq): no per-row index, scale or
//     zero work. Slots are summed in workgroup memory in a fixed order. PF (Q1, whole units of RB rows)
//     loads the next unit's weights before this unit's math, PF2 the next two units'; with EL the
//     first unit(s) of that pipeline are loaded before the NORM prologue, not after it.
//   dual: w1 and w2 of the MLP with the SwiGLU epilogue (see its comment).
//   main (row-group table, unequal groups): per word row scale/zero lookup.
//
// IDOT (grouped with PF and dual, units of 2 word rows, not split): integer math. The input
// comes quantised (quant_block.wgsl) to 24-bit integers X per block of 16 values = one unit
// (x ≈ sx·X, f32-grade), as three bytes; a word's 8 nibbles meet them in six dot4 instructions
// (dp4a): Σ X·q per byte exactly in i32, the zero term z·ΣX too, then per unit one f32
// combination and the scales s·sx. ≈ 9 instructions per word instead of ≈ 25 (see dq).
// QOUT: the epilogue also writes its output quantised that way for the next integer GEMV, one
// block per tile of 16 columns (QNORM: the residual sum times the next RMSNorm's γ, with Σ x²).
struct P { R: u32, G: u32, N: u32, tile0: u32, hasBias: u32, outOff: u32, rpg: u32, tiles: u32, eps: f32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> qw: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> sz: array<u32>;
//#if !GROUPED
@group(0) @binding(4) var<storage, read> rowGroup: array<u32>;
//#endif
@group(0) @binding(5) var<storage, read> x4: array<vec4f>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
//#if IDOT
@group(0) @binding(15) var<storage, read> xq: array<vec4<u32>>;
// block b's (scale, Σ x²) of the quantised input (see quant_block.wgsl)
fn xblock(b: u32) -> vec2f {
  return bitcast<vec2f>(xq[2u * p.R + b].xy);
}
//#endif
//#if QOUT
//#include quant_block
//#if QNORM
@group(0) @binding(18) var<storage, read> qlnw: array<f32>;
//#endif
var<workgroup> qv: array<vec4f, 4>;
var<workgroup> qs: array<f32, 16>;

// after qv / qs hold the tile's 16 output values and their squares (a barrier between): they
// are block tg of the next GEMV's input (whose R is this one's N / 8)
fn quantOut(l: u32, tg: u32) {
  if (l == 0u) {
    var sq = 0.0;
    for (var j = 0u; j < 16u; j++) { sq += qs[j]; }
    storeBlock(tg, p.N / 8u, qv[0], qv[1], qv[2], qv[3], sq);
  }
}
//#endif
//#if IDOT

// Σ_j X_j·q_j over the 8 nibbles of word w against word row (xa, xb) of the quantised input, per
// byte of X (high, middle, low): nibbles 0, 2, 4, 6 are the bytes of w & 0x0f0f0f0f, nibbles
// 1, 3, 5, 7 those of (w >> 4) & 0x0f0f0f0f (0..15: the same as i8 or u8)
fn idot(w: u32, xa: vec4<u32>, xb: vec4<u32>) -> vec3i {
  let e = w & 0x0f0f0f0fu;
  let o = (w >> 4u) & 0x0f0f0f0fu;
  return vec3i(dot4I8Packed(e, xa.x) + dot4I8Packed(o, xa.y),
               bitcast<i32>(dot4U8Packed(e, xa.z) + dot4U8Packed(o, xa.w)),
               bitcast<i32>(dot4U8Packed(e, xb.x) + dot4U8Packed(o, xb.y)));
}
// the byte sums of 4 columns (a thread's vec4 word)
struct I3 { h: vec4i, m: vec4i, l: vec4i }
fn idot4(w: vec4<u32>, xa: vec4<u32>, xb: vec4<u32>) -> I3 {
  let c0 = idot(w.x, xa, xb);
  let c1 = idot(w.y, xa, xb);
  let c2 = idot(w.z, xa, xb);
  let c3 = idot(w.w, xa, xb);
  return I3(vec4i(c0.x, c1.x, c2.x, c3.x), vec4i(c0.y, c1.y, c2.y, c3.y), vec4i(c0.z, c1.z, c2.z, c3.z));
}
fn i3add(a: I3, b: I3) -> I3 {
  return I3(a.h + b.h, a.m + b.m, a.l + b.l);
}
// a word row's Σh, Σm, Σl (stored in its second vec4)
fn rowSums(xb: vec4<u32>) -> vec3i {
  return vec3i(bitcast<i32>(xb.z), bitcast<i32>(xb.w & 0xffffu), bitcast<i32>(xb.w >> 16u));
}
// Σ X·(q − z) of 4 columns: per byte exactly in integers, combined once in f32
fn icombine(a: I3, s: vec3i, z: vec4i) -> vec4f {
  return (vec4f(a.h - z * s.x) * 65536.0 + vec4f(a.m - z * s.y) * 256.0) + vec4f(a.l - z * s.z);
}
// the 4 zeros (stored zero − 1) in the low 16 bits of zw, as integers
fn zeros4i(zw: u32) -> vec4i {
  return bitcast<vec4i>(vec4u(zw, zw >> 4u, zw >> 8u, zw >> 12u) & vec4u(15u)) + vec4i(1);
}
//#endif


//#if SWIGLU
// epilogue out[c] = out[c] · silu(y[c]) (Qwen's w1(x) · silu(w2(x)), out holds w1(x))
@group(0) @binding(7) var<storage, read_write> sw: array<f32>;
//#endif
fn silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }

//#if GROUPED
const GS: u32 = {{GS}}u;          // unit slots per workgroup
//#if RB2
const RB: u32 = 2u;               // word rows per work unit
//#else
//#if RB8
const RB: u32 = 8u;               // (PF only)
//#else
const RB: u32 = 4u;
//#endif
//#endif
//#if Q1
const TPR: u32 = 4u;              // threads per tile row: vec4 word h (4 columns) each
//#else
const TPR: u32 = 2u;              // threads per tile row: vec4 words h and h + 2 (8 columns) each
//#endif
const WGN: u32 = TPR * GS;
var<workgroup> red: array<f32, 16u * GS>;
var<workgroup> red2: array<f32, 256>;

//#if NORM
// RMSNorm of the input as a prologue (decode: it replaces the rmsnorm dispatch before the GEMV):
// every workgroup sums x² itself (same order in each: bitwise the same factor), reads x·w where
// the plain kernel reads x and scales its sums by inv once, and workgroup 0 also stores the
// normed row (the op's output).
@group(0) @binding(11) var<storage, read> xr: array<vec4f>;
@group(0) @binding(12) var<storage, read> lnw: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> xbo: array<vec4f>;
var<workgroup> nred: array<f32, WGN>;
var<workgroup> nred2: array<f32, 32>;
var<private> ninv: f32;

fn normPrologue(l: u32, first: bool) {
  let n4 = 2u * p.R;
  var s = 0.0;
//#if IDOT
  // the quantisation summed x² per block
  for (var i = l; i < p.R / 2u; i += WGN) { s += xblock(i).y; }
//#else
  for (var i = l; i < n4; i += WGN) {
    let v = xr[i];
    s += dot(v, v);
  }
//#endif
  nred[l] = s;
  workgroupBarrier();
  if (l < 32u) {
    var t = 0.0;
    for (var j = l; j < WGN; j += 32u) { t += nred[j]; }
    nred2[l] = t;
  }
  workgroupBarrier();
  var tot = 0.0;
  for (var j = 0u; j < 32u; j++) { tot += nred2[j]; }
  ninv = inverseSqrt(tot / f32(4u * n4) + p.eps);
  if (first) {
    for (var i = l; i < n4; i += WGN) { xbo[i] = (xr[i] * ninv) * lnw[i]; }
  }
}
//#endif

// the GEMV's input, 4 values at vec4 index i; with NORM x·w without the norm's factor, which
// multiplies the sums once at the end instead (every term is linear in x)
fn xv(i: u32) -> vec4f {
//#if NORM
  return xr[i] * lnw[i];
//#else
  return x4[i];
//#endif
}

// x of the four word rows r, r + rs, r + 2rs, r + 3rs (halves a, b of each row's 8 values), and
// the Σ x·q of four rows' words against it: the whole-unit step of the RB = 4 kernels
struct XU { a0: vec4f, b0: vec4f, a1: vec4f, b1: vec4f, a2: vec4f, b2: vec4f, a3: vec4f, b3: vec4f }
fn xunit(r: u32, rs: u32) -> XU {
  let r1 = r + rs;
  let r2 = r1 + rs;
  let r3 = r2 + rs;
  return XU(xv(2u * r), xv(2u * r + 1u), xv(2u * r1), xv(2u * r1 + 1u), xv(2u * r2), xv(2u * r2 + 1u), xv(2u * r3), xv(2u * r3 + 1u));
}
fn xsum(x: XU) -> vec4f {
  return ((x.a0 + x.b0) + (x.a1 + x.b1)) + ((x.a2 + x.b2) + (x.a3 + x.b3));
}
fn dq16(w0: vec4<u32>, w1: vec4<u32>, w2: vec4<u32>, w3: vec4<u32>, x: XU) -> vec4f {
  return (dq4(w0, x.a0, x.b0) + dq4(w1, x.a1, x.b1)) + (dq4(w2, x.a2, x.b2) + dq4(w3, x.a3, x.b3));
}

//#if RESID
// residual add as the epilogue (decode: replaces the add before the next RMSNorm): xres += y
@group(0) @binding(14) var<storage, read_write> xres: array<f32>;
//#endif

// Σ_j x_j·q_j over the 8 nibbles of one word (k = 8r + j; xa = x[8r..8r+4), xb = x[8r+4..8r+8)).
// A nibble at bits b..b+3 (b + 4 ≤ 20) or'ed with the exponent of 2^(23−b) is the float
// 2^(23−b) + q exactly; subtracting the power of two leaves q exactly (one and/or + one add per
// nibble, no per-nibble shifts; nibbles 5..7 share one shift).
fn dq(w: u32, xa: vec4f, xb: vec4f) -> f32 {
//#if NOMATH
  // diagnostic only (bench --step-configs …+NOMATH): the same loads without the dequantisation
  return bitcast<f32>((w & 0x007fffffu) | 0x3f800000u) * xa.x;
//#else
  let t = w >> 12u;
  let a = vec4f(bitcast<f32>((w & 0xfu) | 0x4b000000u), bitcast<f32>((w & 0xf0u) | 0x49000000u),
                bitcast<f32>((w & 0xf00u) | 0x47000000u), bitcast<f32>((w & 0xf000u) | 0x45000000u))
          - vec4f(8388608.0, 524288.0, 32768.0, 2048.0);
  let b = vec4f(bitcast<f32>((w & 0xf0000u) | 0x43000000u), bitcast<f32>((t & 0xf00u) | 0x47000000u),
                bitcast<f32>((t & 0xf000u) | 0x45000000u), bitcast<f32>((t & 0xf0000u) | 0x43000000u))
          - vec4f(128.0, 32768.0, 2048.0, 128.0);
  return dot(xa, a) + dot(xb, b);
//#endif
}

fn dq4(w: vec4<u32>, xa: vec4f, xb: vec4f) -> vec4f {
  return vec4f(dq(w.x, xa, xb), dq(w.y, xa, xb), dq(w.z, xa, xb), dq(w.w, xa, xb));
}

// the 4 zeros (stored zero − 1) in the low 16 bits of zw, as floats: each nibble or'ed into the
// mantissa of 2^23 is 2^23 + z exactly (no int-to-float conversions, which run at a quarter rate)
fn zeros4(zw: u32) -> vec4f {
  let z = vec4u(zw, zw >> 4u, zw >> 8u, zw >> 12u) & vec4u(15u);
  return bitcast<vec4f>(z | vec4u(0x4b000000u)) - vec4f(8388607.0);
}

// the distance from a unit's first word row to its next: 1, or with SU (split units) nb — unit j
// of a group takes rows j, j + nb, …, so the first rows of 8 neighbouring units (one warp's load
// instruction) are 8 neighbouring rows, 512 contiguous bytes, rather than 8 rows 2 apart (needs
// rpg % RB == 0: the dispatcher checks)
fn rowStep(nb: u32) -> u32 {
//#if SU
  return nb;
//#else
  return 1u;
//#endif
}
// A thread's units are u, u + GS, …; it tracks (group, unit within the group) of each and steps
// it by (GS / nb, GS % nb) with one carry, instead of dividing by nb every iteration (a u32
// division by a non-constant is a long instruction sequence). gjRow: the unit's first word row.
fn gjRow(gj: vec2u, rb: u32) -> u32 {
//#if SU
  return gj.x * p.rpg + gj.y;
//#else
  return gj.x * p.rpg + gj.y * rb;
//#endif
}
fn gjStep(gj: vec2u, nb: u32, st: vec2u) -> vec2u {
  let n = gj + st;
  if (n.y >= nb) { return vec2u(n.x + 1u, n.y - nb); }
  return n;
}

@compute @workgroup_size(WGN)
fn grouped(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let t = wg.x + wg.y * nw.x;   // tile inside this chunk
  if (t >= p.tiles) { return; }
//#if NORM
//#if !EL
  normPrologue(l, t == 0u);
//#endif
//#endif
  let h = l % TPR;
  let slot = l / TPR;
  let wb = t * p.R * 4u + h;
  let sbase = t * p.G * 10u;
  // work units: (group g, RB consecutive word rows of it); nb units per group
  let nb = (p.rpg + RB - 1u) / RB;
  let units = p.G * nb;
  let rs = rowStep(nb);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
//#if PF
  // software-pipelined (Q1, rpg % RB == 0: every unit whole): the next unit's RB weight words are
  // loaded before this unit's math, so each thread keeps loads in flight while it computes
  // (PF2: the next two units' — pa holds unit u + GS, pb unit u + 2·GS)
  let st = vec2u(GS / nb, GS % nb);
  var gj = vec2u(slot / nb, slot % nb);   // unit u
  var gjn = gjStep(gj, nb, st);           // unit u + GS
  var pa: array<vec4<u32>, RB>;
  if (slot < units) {
    let r0 = gjRow(gj, RB);
    for (var i = 0u; i < RB; i++) { pa[i] = qw[wb + (r0 + i * rs) * 4u]; }
  }
//#if PF2
  var pb: array<vec4<u32>, RB>;
  if (slot + GS < units) {
    let r0 = gjRow(gjn, RB);
    for (var i = 0u; i < RB; i++) { pb[i] = qw[wb + (r0 + i * rs) * 4u]; }
  }
//#endif
//#endif
//#if NORM
//#if EL
  // EL: the first units' weight loads above are in flight while the prologue reads x
  normPrologue(l, t == 0u);
//#endif
//#endif
//#if PF
  for (var u = slot; u < units; u += GS) {
    let g = gj.x;
    let r = gjRow(gj, RB);
    let a = pa;
//#if PF2
    pa = pb;
    let gj2 = gjStep(gjn, nb, st);
    if (u + 2u * GS < units) {
      let rn = gjRow(gj2, RB);
      for (var i = 0u; i < RB; i++) { pb[i] = qw[wb + (rn + i * rs) * 4u]; }
    }
//#else
    if (u + GS < units) {
      let rn = gjRow(gjn, RB);
      for (var i = 0u; i < RB; i++) { pa[i] = qw[wb + (rn + i * rs) * 4u]; }
    }
//#endif
    gj = gjn;
//#if PF2
    gjn = gj2;
//#else
    gjn = gjStep(gjn, nb, st);
//#endif
    let sb = sbase + g * 10u;
    let sa = vec4f(unpack2x16float(sz[sb + 2u * h]), unpack2x16float(sz[sb + 2u * h + 1u]));
    let zw = sz[sb + 8u + (h >> 1u)] >> (16u * (h & 1u));
//#if IDOT
    var ia = I3(vec4i(0), vec4i(0), vec4i(0));
    var sx = vec3i(0);
    for (var i = 0u; i < RB; i++) {
      let ri = r + i * rs;
      let xa = xq[2u * ri];
      let xb = xq[2u * ri + 1u];
      ia = i3add(ia, idot4(a[i], xa, xb));
      sx += rowSums(xb);
    }
    acc0 += (sa * xblock(r >> 1u).x) * icombine(ia, sx, zeros4i(zw));
//#else
    var ra = vec4f(0.0);
    var X = vec4f(0.0);
    for (var i = 0u; i < RB; i++) {
      let ri = r + i * rs;
      let xa = xv(2u * ri);
      let xb = xv(2u * ri + 1u);
      ra += dq4(a[i], xa, xb);
      X += xa + xb;
    }
    let xs = (X.x + X.y) + (X.z + X.w);
    acc0 += sa * (ra - zeros4(zw) * xs);
//#endif
  }
//#else
  for (var u = slot; u < units; u += GS) {
    let g = u / nb;
    var r = g * p.rpg + (u - g * nb) * RB;
    let r1 = min(min(p.R, (g + 1u) * p.rpg), r + RB);
    var ra = vec4f(0.0);
    var rb = vec4f(0.0);
    var X = vec4f(0.0);
    if (r + RB == r1) {
      // a whole unit: every load first
      let i = wb + r * 4u;
//#if RB2
      let a0 = qw[i];
      let a1 = qw[i + 4u];
//#if !Q1
      let b0 = qw[i + 2u];
      let b1 = qw[i + 6u];
//#endif
      let xa0 = xv(2u * r);
      let xb0 = xv(2u * r + 1u);
      let xa1 = xv(2u * r + 2u);
      let xb1 = xv(2u * r + 3u);
      ra = dq4(a0, xa0, xb0) + dq4(a1, xa1, xb1);
//#if !Q1
      rb = dq4(b0, xa0, xb0) + dq4(b1, xa1, xb1);
//#endif
      X = (xa0 + xb0) + (xa1 + xb1);
//#else
      let a0 = qw[i];
      let a1 = qw[i + 4u];
      let a2 = qw[i + 8u];
      let a3 = qw[i + 12u];
//#if !Q1
      let b0 = qw[i + 2u];
      let b1 = qw[i + 6u];
      let b2 = qw[i + 10u];
      let b3 = qw[i + 14u];
//#endif
      let x = xunit(r, 1u);
      ra = dq16(a0, a1, a2, a3, x);
//#if !Q1
      rb = dq16(b0, b1, b2, b3, x);
//#endif
      X = xsum(x);
//#endif
    } else {
      for (; r < r1; r++) {
        let xa0 = xv(2u * r);
        let xb0 = xv(2u * r + 1u);
        ra += dq4(qw[wb + r * 4u], xa0, xb0);
//#if !Q1
        rb += dq4(qw[wb + r * 4u + 2u], xa0, xb0);
//#endif
        X += xa0 + xb0;
      }
    }
    // scale and zero of group g applied once per unit: s·(Σ x·q − zero·Σ x)
    let xs = (X.x + X.y) + (X.z + X.w);
    let sb = sbase + g * 10u;
//#if Q1
    // columns 4h..4h+3: scale words 2h, 2h+1; zero nibbles 4(h%2).. of word 8 + h/2
    let sa = vec4f(unpack2x16float(sz[sb + 2u * h]), unpack2x16float(sz[sb + 2u * h + 1u]));
    let za = zeros4(sz[sb + 8u + (h >> 1u)] >> (16u * (h & 1u)));
    acc0 += sa * (ra - za * xs);
//#else
    // columns 4h..4h+3 (scale words 2h, 2h+1) and 8+4h..8+4h+3 (words 4+2h, 5+2h)
    let sa = vec4f(unpack2x16float(sz[sb + 2u * h]), unpack2x16float(sz[sb + 2u * h + 1u]));
    let sc = vec4f(unpack2x16float(sz[sb + 4u + 2u * h]), unpack2x16float(sz[sb + 5u + 2u * h]));
    let za = zeros4(sz[sb + 8u] >> (16u * h));
    let zc = zeros4(sz[sb + 9u] >> (16u * h));
    acc0 += sa * (ra - za * xs);
    acc1 += sc * (rb - zc * xs);
//#endif
  }
//#endif
//#if NORM
  acc0 *= ninv;
  acc1 *= ninv;
//#endif
  let o = slot * 16u + 4u * h;
  red[o] = acc0.x;
  red[o + 1u] = acc0.y;
  red[o + 2u] = acc0.z;
  red[o + 3u] = acc0.w;
//#if !Q1
  red[o + 8u] = acc1.x;
  red[o + 9u] = acc1.y;
  red[o + 10u] = acc1.z;
  red[o + 11u] = acc1.w;
//#endif
  workgroupBarrier();
  // 16 partial sums per column (slots j, j+16, …), then the 16 in order
  for (var i = l; i < 256u; i += WGN) {
    let c = i & 15u;
    var s = 0.0;
    for (var j = i >> 4u; j < GS; j += 16u) { s += red[j * 16u + c]; }
    red2[i] = s;
  }
  workgroupBarrier();
  if (l < 16u) {
    var v = 0.0;
    for (var j = 0u; j < 16u; j++) { v += red2[j * 16u + l]; }
    let c = (p.tile0 + t) * 16u + l;
    var q = 0.0;
    if (c < p.N) {
      if (p.hasBias != 0u) { v += bias[c]; }
      y[p.outOff + c] = v;
      q = v;
//#if SWIGLU
      q = sw[c] * silu(v);
      sw[c] = q;
//#endif
//#if RESID
      q = xres[c] + v;
      xres[c] = q;
//#endif
    }
//#if QOUT
    qs[l] = q * q;
//#if QNORM
    if (c < p.N) { q *= qlnw[c]; }
//#endif
    qv[l >> 2u][l & 3u] = q;
//#endif
  }
//#if QOUT
  workgroupBarrier();
  quantOut(l, p.tile0 + t);
//#endif
}

//#if DUAL
// w1 and w2 of the MLP in one dispatch (Q1 layout, no bias): both read the same x, so a thread
// loads the unit's rows of both matrices and its x once; the epilogue writes
// y2 = w2(x) and y = w1(x) · silu(w2(x)) — the executor's matmul, matmul, swiglu in one pass.
// Units of DRB = 4 word rows (DRB2: 2). DPF: the next unit's weights are loaded before this
// unit's math (whole units only; a ragged unit, rpg % DRB ≠ 0, reads row by row as without DPF).
// DPRE (set with DPF or EL): the thread's first unit is loaded into pw before the loop; with EL
// (and NORM) before the prologue, so those loads are in flight while it reads x.
@group(0) @binding(8) var<storage, read> qw2: array<vec4<u32>>;
@group(0) @binding(9) var<storage, read> sz2: array<u32>;
@group(0) @binding(10) var<storage, read_write> y2: array<f32>;
var<workgroup> redB: array<f32, 16u * GS>;
var<workgroup> red2B: array<f32, 256>;

// one whole unit's weight words of both matrices (i = word index of its first row), and its math
//#if DRB2
const DRB: u32 = 2u;
struct DW { a0: vec4<u32>, a1: vec4<u32>, b0: vec4<u32>, b1: vec4<u32> }
fn dload(i: u32, s: u32) -> DW {
  return DW(qw[i], qw[i + s], qw2[i], qw2[i + s]);
}
//#else
const DRB: u32 = 4u;
struct DW { a0: vec4<u32>, a1: vec4<u32>, a2: vec4<u32>, a3: vec4<u32>, b0: vec4<u32>, b1: vec4<u32>, b2: vec4<u32>, b3: vec4<u32> }
fn dload(i: u32, s: u32) -> DW {
  return DW(qw[i], qw[i + s], qw[i + 2u * s], qw[i + 3u * s], qw2[i], qw2[i + s], qw2[i + 2u * s], qw2[i + 3u * s]);
}
//#endif
//#if IDOT
// Σ X·q of both matrices and ΣX over the unit's rows, per byte in integers (see idot)
struct DI { a: I3, b: I3, s: vec3i }
fn dirow(wa: vec4<u32>, wb: vec4<u32>, r: u32) -> DI {
  let xa = xq[2u * r];
  let xb = xq[2u * r + 1u];
  return DI(idot4(wa, xa, xb), idot4(wb, xa, xb), rowSums(xb));
}
fn diadd(p: DI, q: DI) -> DI {
  return DI(i3add(p.a, q.a), i3add(p.b, q.b), p.s + q.s);
}
fn dimath(w: DW, r: u32, rs: u32) -> DI {
  let r1 = r + rs;
//#if DRB2
  return diadd(dirow(w.a0, w.b0, r), dirow(w.a1, w.b1, r1));
//#else
  let r2 = r1 + rs;
  let r3 = r2 + rs;
  return diadd(diadd(dirow(w.a0, w.b0, r), dirow(w.a1, w.b1, r1)), diadd(dirow(w.a2, w.b2, r2), dirow(w.a3, w.b3, r3)));
//#endif
}
//#endif
// Σ x·q of both matrices and Σ x over the unit's rows (r = its first word row, rs its row step)
struct DR { ra: vec4f, rb: vec4f, X: vec4f }
fn dmath(w: DW, r: u32, rs: u32) -> DR {
//#if DRB2
  let xa0 = xv(2u * r);
  let xb0 = xv(2u * r + 1u);
  let xa1 = xv(2u * (r + rs));
  let xb1 = xv(2u * (r + rs) + 1u);
  return DR(dq4(w.a0, xa0, xb0) + dq4(w.a1, xa1, xb1), dq4(w.b0, xa0, xb0) + dq4(w.b1, xa1, xb1), (xa0 + xb0) + (xa1 + xb1));
//#else
  let x = xunit(r, rs);
  return DR(dq16(w.a0, w.a1, w.a2, w.a3, x), dq16(w.b0, w.b1, w.b2, w.b3, x), xsum(x));
//#endif
}
// the first word row of unit gj = (group, unit in group), or 0xffffffff when the unit is ragged
// (fewer than DRB rows); split units (SU: rows j, j + nb, … of the group) are always whole
fn dwhole(gj: vec2u) -> u32 {
  let r = gjRow(gj, DRB);
//#if SU
  return r;
//#else
  if (r + DRB <= min(p.R, (gj.x + 1u) * p.rpg)) { return r; }
  return 0xffffffffu;
//#endif
}

@compute @workgroup_size(WGN)
fn dual(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let t = wg.x + wg.y * nw.x;
  if (t >= p.tiles) { return; }
//#if NORM
//#if !EL
  normPrologue(l, t == 0u);
//#endif
//#endif
  let h = l % TPR;
  let slot = l / TPR;
  let wb = t * p.R * 4u + h;
  let sbase = t * p.G * 10u;
  let nb = (p.rpg + DRB - 1u) / DRB;
  let units = p.G * nb;
  let rs = rowStep(nb);
  let rs4 = 4u * rs;                      // the row step in vec4s (dload)
  let st = vec2u(GS / nb, GS % nb);
  var gj = vec2u(slot / nb, slot % nb);   // unit u (see gjStep)
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
//#if DPRE
  var pw: DW;
  if (slot < units) {
    let r0 = dwhole(gj);
    if (r0 != 0xffffffffu) { pw = dload(wb + r0 * 4u, rs4); }
  }
//#endif
//#if NORM
//#if EL
  normPrologue(l, t == 0u);
//#endif
//#endif
  for (var u = slot; u < units; u += GS) {
    let g = gj.x;
    var r = gjRow(gj, DRB);
//#if IDOT
    let ub = r >> 1u;   // the unit's block of the quantised input
//#endif
//#if SU
    let r1 = r + DRB;
//#else
    let r1 = min(min(p.R, (g + 1u) * p.rpg), r + DRB);
//#endif
    let gjn = gjStep(gj, nb, st);
    gj = gjn;
//#if IDOT
    var di = DI(I3(vec4i(0), vec4i(0), vec4i(0)), I3(vec4i(0), vec4i(0), vec4i(0)), vec3i(0));
//#else
    var ra = vec4f(0.0);
    var rb = vec4f(0.0);
    var X = vec4f(0.0);
//#endif
//#if DPF
    let w = pw;
    if (u + GS < units) {
      let rn = dwhole(gjn);
      if (rn != 0xffffffffu) { pw = dload(wb + rn * 4u, rs4); }
    }
//#endif
    if (r + DRB == r1) {
//#if !DPF
//#if DPRE
      // EL without DPF: only the first unit was loaded early
      var w = pw;
      if (u != slot) { w = dload(wb + r * 4u, rs4); }
//#else
      let w = dload(wb + r * 4u, rs4);
//#endif
//#endif
//#if IDOT
      di = dimath(w, r, rs);
    } else {
      for (; r < r1; r++) {
        di = diadd(di, dirow(qw[wb + r * 4u], qw2[wb + r * 4u], r));
      }
    }
//#else
      let d = dmath(w, r, rs);
      ra = d.ra;
      rb = d.rb;
      X = d.X;
    } else {
      for (; r < r1; r++) {
        let xa0 = xv(2u * r);
        let xb0 = xv(2u * r + 1u);
        ra += dq4(qw[wb + r * 4u], xa0, xb0);
        rb += dq4(qw2[wb + r * 4u], xa0, xb0);
        X += xa0 + xb0;
      }
    }
//#endif
    // group g's scales and zero words of both matrices, applied once per unit
    let sb = sbase + g * 10u;
    let sa = vec4f(unpack2x16float(sz[sb + 2u * h]), unpack2x16float(sz[sb + 2u * h + 1u]));
    let sc = vec4f(unpack2x16float(sz2[sb + 2u * h]), unpack2x16float(sz2[sb + 2u * h + 1u]));
    let zwa = sz[sb + 8u + (h >> 1u)] >> (16u * (h & 1u));
    let zwc = sz2[sb + 8u + (h >> 1u)] >> (16u * (h & 1u));
//#if IDOT
    let sxg = xblock(ub).x;
    acc0 += (sa * sxg) * icombine(di.a, di.s, zeros4i(zwa));
    acc1 += (sc * sxg) * icombine(di.b, di.s, zeros4i(zwc));
//#else
    let xs = (X.x + X.y) + (X.z + X.w);
    acc0 += sa * (ra - zeros4(zwa) * xs);
    acc1 += sc * (rb - zeros4(zwc) * xs);
//#endif
  }
//#if NORM
  acc0 *= ninv;
  acc1 *= ninv;
//#endif
  let o = slot * 16u + 4u * h;
  red[o] = acc0.x;
  red[o + 1u] = acc0.y;
  red[o + 2u] = acc0.z;
  red[o + 3u] = acc0.w;
  redB[o] = acc1.x;
  redB[o + 1u] = acc1.y;
  redB[o + 2u] = acc1.z;
  redB[o + 3u] = acc1.w;
  workgroupBarrier();
  for (var i = l; i < 256u; i += WGN) {
    let c = i & 15u;
    var s = 0.0;
    var s2 = 0.0;
    for (var j = i >> 4u; j < GS; j += 16u) {
      s += red[j * 16u + c];
      s2 += redB[j * 16u + c];
    }
    red2[i] = s;
    red2B[i] = s2;
  }
  workgroupBarrier();
  if (l < 16u) {
    var v = 0.0;
    var v2 = 0.0;
    for (var j = 0u; j < 16u; j++) {
      v += red2[j * 16u + l];
      v2 += red2B[j * 16u + l];
    }
    let c = (p.tile0 + t) * 16u + l;
    var q = 0.0;
    if (c < p.N) {
      y2[p.outOff + c] = v2;
      q = v * silu(v2);
      y[p.outOff + c] = q;
    }
//#if QOUT
    qs[l] = q * q;
    qv[l >> 2u][l & 3u] = q;
//#endif
  }
//#if QOUT
  workgroupBarrier();
  quantOut(l, p.tile0 + t);
//#endif
}
//#endif
//#else
var<workgroup> red: array<vec4f, 256>;

fn nib(w: u32, xa: vec4f, xb: vec4f) -> f32 {
  const M = 0x00780000u;
  const E = 0x41800000u;
  let a = vec4f(bitcast<f32>(((w << 19u) & M) | E), bitcast<f32>(((w << 15u) & M) | E),
                bitcast<f32>(((w << 11u) & M) | E), bitcast<f32>(((w << 7u) & M) | E));
  let b = vec4f(bitcast<f32>(((w << 3u) & M) | E), bitcast<f32>(((w >> 1u) & M) | E),
                bitcast<f32>(((w >> 5u) & M) | E), bitcast<f32>(((w >> 9u) & M) | E));
  return dot(xa, a) + dot(xb, b);
}

// one word row: Σ over its 8 k of x·W for the thread's 4 columns
fn row(w: vec4<u32>, r: u32, sbase: u32, cg: u32, zshift: u32) -> vec4f {
  var g = 0u;
  if (p.rpg != 0u) { g = r / p.rpg; } else { g = rowGroup[r]; }
  let sb = sbase + g * 10u;
  let s01 = unpack2x16float(sz[sb + 2u * cg]);
  let s23 = unpack2x16float(sz[sb + 2u * cg + 1u]);
  let zw = sz[sb + 8u + (cg >> 1u)] >> zshift;
  let z = vec4f(f32(zw & 15u), f32((zw >> 4u) & 15u), f32((zw >> 8u) & 15u), f32((zw >> 12u) & 15u)) + 17.0;
  let xa = x4[2u * r];
  let xb = x4[2u * r + 1u];
  let X = (xa.x + xa.y + xa.z + xa.w) + (xb.x + xb.y + xb.z + xb.w);
  let d = vec4f(nib(w.x, xa, xb), nib(w.y, xa, xb), nib(w.z, xa, xb), nib(w.w, xa, xb)) - z * X;
  return vec4f(s01, s23) * d;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let t = wg.x;                 // tile inside this chunk
  let cg = l & 3u;
  let ks = l >> 2u;
  let wbase = t * p.R * 4u + cg;
  let sbase = t * p.G * 10u;
  let zshift = (cg & 1u) * 16u;
  var acc = vec4f(0.0);
  var r = ks;
  // four rows per step, loads first: enough bytes in flight per thread to cover DRAM latency
  for (; r + 192u < p.R; r += 256u) {
    let w0 = qw[wbase + r * 4u];
    let w1 = qw[wbase + (r + 64u) * 4u];
    let w2 = qw[wbase + (r + 128u) * 4u];
    let w3 = qw[wbase + (r + 192u) * 4u];
    acc += row(w0, r, sbase, cg, zshift) + row(w1, r + 64u, sbase, cg, zshift) +
           row(w2, r + 128u, sbase, cg, zshift) + row(w3, r + 192u, sbase, cg, zshift);
  }
  for (; r < p.R; r += 64u) {
    acc += row(qw[wbase + r * 4u], r, sbase, cg, zshift);
  }
  red[l] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (ks < s) { red[l] += red[l + s * 4u]; }
    workgroupBarrier();
  }
  if (l < 4u) {
    let v = red[l];
    let c0 = (p.tile0 + t) * 16u + 4u * l;
    for (var i = 0u; i < 4u; i++) {
      let c = c0 + i;
      if (c < p.N) {
        var b = 0.0;
        if (p.hasBias != 0u) { b = bias[c]; }
        y[p.outOff + c] = v[i] + b;
      }
    }
  }
}
//#endif
