// Causal attention over the KV cache. Query row i (absolute position pos0 + i) sees cache slots
// [0, kvLen − rows + i]; it is scaled by scale·logn[pos0 + i] (LogN factors come from a host-built
// table, exact as torch's f32 list). HD (head dim) is substituted at pipeline creation.
// KV stores: F32 [capacity][width] f32, or I8 [capacity][width/4] u32 of bytes + meta
// [capacity][heads] vec2 (lo, scale), value = lo + q·scale.
//   decode_part / decode_combine: flash-decoding for one query row — workgroup (chunk of 256
//     slots, head) writes (max, sum, o[HD]); the combine pass merges the chunks per head.
//   prefill: 16 query rows × 16 keys per step, online softmax in workgroup memory.
const HD: u32 = {{HD}}u;
const HD4: u32 = HD / 4u;
const CH: u32 = 256u;
const NEG: f32 = -3.0e38;

struct P { rows: u32, heads: u32, kvLen: u32, pos0: u32, scale: f32, lognOn: u32, qStride: u32, qOff: u32, nChunks: u32, width: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> lg: array<f32>;
//#if PART
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
//#endif
//#if !COMBINE
//#if F32
@group(0) @binding(5) var<storage, read> K: array<vec4f>;
@group(0) @binding(6) var<storage, read> V: array<f32>;
fn kv4(slot: u32, h: u32, d4: u32) -> vec4f { return K[slot * (p.width / 4u) + h * HD4 + d4]; }
fn ks(slot: u32, h: u32, d: u32) -> f32 { return K[slot * (p.width / 4u) + h * HD4 + d / 4u][d & 3u]; }
fn vs(slot: u32, h: u32, d: u32) -> f32 { return V[slot * p.width + h * HD + d]; }
//#else
@group(0) @binding(5) var<storage, read> K: array<u32>;
@group(0) @binding(6) var<storage, read> V: array<u32>;
@group(0) @binding(7) var<storage, read> KM: array<vec2f>;
@group(0) @binding(8) var<storage, read> VM: array<vec2f>;
fn kv4(slot: u32, h: u32, d4: u32) -> vec4f {
  let w = K[slot * (p.width / 4u) + h * HD4 + d4];
  let m = KM[slot * p.heads + h];
  return m.x + vec4f(f32(w & 255u), f32((w >> 8u) & 255u), f32((w >> 16u) & 255u), f32(w >> 24u)) * m.y;
}
fn ks(slot: u32, h: u32, d: u32) -> f32 {
  let w = K[slot * (p.width / 4u) + h * HD4 + d / 4u];
  let m = KM[slot * p.heads + h];
  return m.x + f32((w >> (8u * (d & 3u))) & 255u) * m.y;
}
fn vs(slot: u32, h: u32, d: u32) -> f32 {
  let w = V[slot * (p.width / 4u) + h * HD4 + d / 4u];
  let m = VM[slot * p.heads + h];
  return m.x + f32((w >> (8u * (d & 3u))) & 255u) * m.y;
}
//#endif
//#endif

fn qscale(row: u32) -> f32 {
  if (p.lognOn != 0u) { return p.scale * lg[p.pos0 + row]; }
  return p.scale;
}

//#if PART
var<workgroup> qv: array<vec4f, HD4>;
var<workgroup> sc: array<f32, CH>;
var<workgroup> red: array<f32, 128>;

@compute @workgroup_size(128)
fn decode_part(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let c = wg.x;
  let h = wg.y;
  let f = qscale(0u);
  let qb = p.qOff + h * HD;
  for (var i = l; i < HD4; i += 128u) {
    qv[i] = vec4f(q[qb + 4u * i], q[qb + 4u * i + 1u], q[qb + 4u * i + 2u], q[qb + 4u * i + 3u]) * f;
  }
  workgroupBarrier();
  let s0 = c * CH;
  var mx = NEG;
  for (var j = l; j < CH; j += 128u) {
    let slot = s0 + j;
    var s = NEG;
    if (slot < p.kvLen) {
      var acc = 0.0;
      for (var d4 = 0u; d4 < HD4; d4++) { acc += dot(qv[d4], kv4(slot, h, d4)); }
      s = acc;
    }
    sc[j] = s;
    mx = max(mx, s);
  }
  red[l] = mx;
  workgroupBarrier();
  for (var s = 64u; s > 0u; s >>= 1u) {
    if (l < s) { red[l] = max(red[l], red[l + s]); }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = l; j < CH; j += 128u) {
    let e = exp(sc[j] - m);
    sc[j] = e;
    sum += e;
  }
  red[l] = sum;
  workgroupBarrier();
  for (var s = 64u; s > 0u; s >>= 1u) {
    if (l < s) { red[l] += red[l + s]; }
    workgroupBarrier();
  }
  let n = min(CH, p.kvLen - s0);
  let pb = (h * p.nChunks + c) * (HD + 2u);
  for (var d = l; d < HD; d += 128u) {
    var acc = 0.0;
    for (var j = 0u; j < n; j++) { acc += sc[j] * vs(s0 + j, h, d); }
    part[pb + 2u + d] = acc;
  }
  if (l == 0u) {
    part[pb] = m;
    part[pb + 1u] = red[0];
  }
}
//#endif

//#if COMBINE
@group(0) @binding(4) var<storage, read> part: array<f32>;

@compute @workgroup_size(128)
fn decode_combine(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let h = wg.x;
  var M = NEG;
  for (var c = 0u; c < p.nChunks; c++) { M = max(M, part[(h * p.nChunks + c) * (HD + 2u)]); }
  var L = 0.0;
  for (var c = 0u; c < p.nChunks; c++) {
    let pb = (h * p.nChunks + c) * (HD + 2u);
    L += part[pb + 1u] * exp(part[pb] - M);
  }
  for (var d = l; d < HD; d += 128u) {
    var acc = 0.0;
    for (var c = 0u; c < p.nChunks; c++) {
      let pb = (h * p.nChunks + c) * (HD + 2u);
      acc += part[pb + 2u + d] * exp(part[pb] - M);
    }
    o[h * HD + d] = acc / L;
  }
}
//#endif

//#if PREFILL
const HDP: u32 = HD + 1u;
const NT: u32 = (HD + 15u) / 16u;
var<workgroup> qsm: array<array<f32, HDP>, 16>;
var<workgroup> ksm: array<array<f32, HDP>, 16>;
var<workgroup> vsm: array<array<f32, HD>, 16>;
var<workgroup> ps: array<array<f32, 16>, 16>;

@compute @workgroup_size(256)
fn prefill(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let qb = wg.x * 16u;
  let h = wg.y;
  let qi = l >> 4u;
  let kj = l & 15u;
  let row = qb + qi;
  for (var idx = l; idx < 16u * HD; idx += 256u) {
    let rr = idx / HD;
    let d = idx - rr * HD;
    let gr = qb + rr;
    var v = 0.0;
    if (gr < p.rows) { v = q[gr * p.qStride + p.qOff + h * HD + d] * qscale(gr); }
    qsm[rr][d] = v;
  }
  let lastRow = min(p.rows, qb + 16u) - 1u;
  let kEnd = p.kvLen - p.rows + lastRow + 1u;
  let visible = p.kvLen - p.rows + row;   // last slot this row sees
  var m = NEG;
  var lsum = 0.0;
  var acc: array<f32, NT>;
  for (var kt = 0u; kt < kEnd; kt += 16u) {
    for (var idx = l; idx < 16u * HD; idx += 256u) {
      let j = idx / HD;
      let d = idx - j * HD;
      let slot = kt + j;
      var kv = 0.0;
      var vv = 0.0;
      if (slot < kEnd) { kv = ks(slot, h, d); vv = vs(slot, h, d); }
      ksm[j][d] = kv;
      vsm[j][d] = vv;
    }
    workgroupBarrier();
    let slot = kt + kj;
    var s = NEG;
    if (row < p.rows && slot <= visible) {
      var a = 0.0;
      for (var d = 0u; d < HD; d++) { a += qsm[qi][d] * ksm[kj][d]; }
      s = a;
    }
    ps[qi][kj] = s;
    workgroupBarrier();
    var mt = m;
    for (var j = 0u; j < 16u; j++) { mt = max(mt, ps[qi][j]); }
    let corr = exp(m - mt);
    m = mt;
    workgroupBarrier();
    ps[qi][kj] = exp(s - mt);
    workgroupBarrier();
    var ls = 0.0;
    for (var j = 0u; j < 16u; j++) { ls += ps[qi][j]; }
    lsum = lsum * corr + ls;
    for (var t = 0u; t < NT; t++) {
      let d = kj + 16u * t;
      var a = acc[t] * corr;
      if (d < HD) {
        for (var j = 0u; j < 16u; j++) { a += ps[qi][j] * vsm[j][d]; }
      }
      acc[t] = a;
    }
    workgroupBarrier();
  }
  if (row < p.rows) {
    for (var t = 0u; t < NT; t++) {
      let d = kj + 16u * t;
      if (d < HD) { o[row * p.heads * HD + h * HD + d] = acc[t] / lsum; }
    }
  }
}
//#endif
