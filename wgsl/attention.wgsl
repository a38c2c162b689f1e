// Causal attention over the KV cache. Query row i (absolute position pos0 + i) sees cache slots
// [0, kvLen − rows + i]; it is scaled by scale·logn[pos0 + i] (LogN factors come from a host-built
// table, exact as torch's f32 list). HD (head dim) is substituted at pipeline creation.
// KV stores: F32 [capacity][width] f32, or I8 [capacity][width/4] u32 of bytes + meta
// [capacity][heads] vec2 (lo, scale), value = lo + q·scale.
//   decode_part / decode_combine: flash-decoding for one query row — workgroup (chunk of 64
//     slots, head) writes (max, sum, o[HD]); the combine pass merges the chunks per head. With
//     SINGLE (the cache fits one chunk) decode_part writes the output itself: one dispatch.
//   prefill: 16 query rows × 16 keys per step, online softmax in workgroup memory.
//   LANES4 (int8 keys, HD a multiple of 64; WebGpuOptions.attnKeyLanes = 4): decode scores with
//     4 lanes per slot reading the key row as vec4<u32> words instead of a lane per slot.
//   SG (WebGpuOptions.subgroups, adapters with subgroups): decode_part's max and sum reductions
//     through subgroup operations.
//   QOUT (decode: SINGLE's decode_part, decode_combine): the output row is also written quantised
//     for the next integer int4 GEMV (quant_block.wgsl; one head is HD / 16 blocks).
//   ROPEKV (decode, with SINGLE): the step's RoPE and KV write in the same dispatch, fed by the
//     fused q|k|v row: the head's workgroup rotates q and k (writing both back), stores k and v in
//     the new slot kvLen − 1 and then attends over it. rope_kv.wgsl's expressions. ACC is the
//     access mode of q and the cache (read_write with ROPEKV, else read). Over several chunks it
//     was slower both ways measured (bench/NOTES.md): the cache bound read-write slows every
//     chunk's loads, and handing the new slot to the combine pass cost more than its dispatch.
//#if SG
enable subgroups;
//#endif
const HD: u32 = {{HD}}u;
const HD4: u32 = HD / 4u;
const CH: u32 = 64u;           // slots per decode workgroup (64 threads)
const G: u32 = 64u / HD4;      // slot groups in the decode P·V pass (HD4 divides 64)
const NEG: f32 = -3.0e38;

struct P { rows: u32, heads: u32, kvLen: u32, pos0: u32, scale: f32, lognOn: u32, qStride: u32, qOff: u32, nChunks: u32, width: u32, kOff: u32, vOff: u32, rpos: u32, half: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
//#if QOUT
//#include quant_block
var<workgroup> ho: array<vec4f, HD4>;

// once ho holds head h's HD outputs (a barrier between): its HD / 16 blocks of the next GEMV's
// input (whose R is heads · HD / 8), block l by thread l
fn quantHead(l: u32, h: u32) {
  if (l < HD / 16u) {
    let v0 = ho[4u * l];
    let v1 = ho[4u * l + 1u];
    let v2 = ho[4u * l + 2u];
    let v3 = ho[4u * l + 3u];
    storeBlock(h * (HD / 16u) + l, p.heads * HD / 8u, v0, v1, v2, v3, (dot(v0, v0) + dot(v1, v1)) + (dot(v2, v2) + dot(v3, v3)));
  }
}
//#endif
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<storage, {{ACC}}> q: array<f32>;
@group(0) @binding(3) var<storage, read> lg: array<f32>;
//#if PART
//#if !SINGLE
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
//#endif
//#endif
//#if !COMBINE
//#if F32
@group(0) @binding(5) var<storage, {{ACC}}> K: array<vec4f>;
@group(0) @binding(6) var<storage, {{ACC}}> V: array<vec4f>;
fn kv4(slot: u32, h: u32, d4: u32) -> vec4f { return K[slot * (p.width / 4u) + h * HD4 + d4]; }
fn vv4(slot: u32, h: u32, d4: u32) -> vec4f { return V[slot * (p.width / 4u) + h * HD4 + d4]; }
fn ks(slot: u32, h: u32, d: u32) -> f32 { return K[slot * (p.width / 4u) + h * HD4 + d / 4u][d & 3u]; }
fn vs(slot: u32, h: u32, d: u32) -> f32 { return V[slot * (p.width / 4u) + h * HD4 + d / 4u][d & 3u]; }
//#else
//#if LANES4
// keys read as vec4<u32> (16 bytes) by the 4-lanes-per-slot score pass of decode_part
@group(0) @binding(5) var<storage, {{ACC}}> K: array<vec4<u32>>;
fn kword(i: u32) -> u32 { return K[i >> 2u][i & 3u]; }
//#else
@group(0) @binding(5) var<storage, {{ACC}}> K: array<u32>;
fn kword(i: u32) -> u32 { return K[i]; }
//#endif
@group(0) @binding(6) var<storage, {{ACC}}> V: array<u32>;
@group(0) @binding(7) var<storage, {{ACC}}> KM: array<vec2f>;
@group(0) @binding(8) var<storage, {{ACC}}> VM: array<vec2f>;
// the 4 byte codes of w as floats: a byte or'ed into the mantissa of 2^23 (bits 0..7) or 2^15
// (bits 8..15) is that power plus the code exactly; int-to-float conversions run at a quarter rate
fn codes4(w: u32) -> vec4f {
  let t = w >> 16u;
  let e = vec4u(w & 0xffu, w & 0xff00u, t & 0xffu, t & 0xff00u) | vec4u(0x4b000000u, 0x47000000u, 0x4b000000u, 0x47000000u);
  return bitcast<vec4f>(e) - vec4f(8388608.0, 32768.0, 8388608.0, 32768.0);
}
// 4 int8 codes of word w as values: lo + q·scale (m = (lo, scale))
fn deq8(w: u32, m: vec2f) -> vec4f {
  return m.x + codes4(w) * m.y;
}
fn kv4(slot: u32, h: u32, d4: u32) -> vec4f {
  return deq8(kword(slot * (p.width / 4u) + h * HD4 + d4), KM[slot * p.heads + h]);
}
fn vv4(slot: u32, h: u32, d4: u32) -> vec4f {
  return deq8(V[slot * (p.width / 4u) + h * HD4 + d4], VM[slot * p.heads + h]);
}
fn ks(slot: u32, h: u32, d: u32) -> f32 {
  let w = kword(slot * (p.width / 4u) + h * HD4 + d / 4u);
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

//#if ROPEKV
@group(0) @binding(9) var<storage, read> cs: array<vec2f>;
var<workgroup> hq: array<f32, HD>;
//#include rope_pair

// dims 4i..4i+3 of the head row in hq, rotated (rope.wgsl's pairs i, i + half; dims from 2·half on
// unchanged)
fn rot4(i: u32) -> vec4f {
  var r = vec4f(0.0);
  let cb = p.rpos * p.half;
  for (var j = 0u; j < 4u; j++) {
    let d = 4u * i + j;
    if (d < p.half) {
      r[j] = ropePair(hq[d], hq[d + p.half], cs[cb + d]).x;
    } else if (d < 2u * p.half) {
      r[j] = ropePair(hq[d - p.half], hq[d], cs[cb + d - p.half]).y;
    } else {
      r[j] = hq[d];
    }
  }
  return r;
}

// the rotated q of head h back into the q|k|v row (by the head's one workgroup, after hq holds it)
fn storeQ(h: u32, i: u32, r: vec4f) {
  let b = p.qOff + h * HD + 4u * i;
  q[b] = r.x;
  q[b + 1u] = r.y;
  q[b + 2u] = r.z;
  q[b + 3u] = r.w;
}
//#endif

//#if PART
var<workgroup> qv: array<vec4f, HD4>;
var<workgroup> sc: array<f32, CH>;
var<workgroup> red: array<f32, 64>;
var<workgroup> ov: array<vec4f, 64>;
//#if LANES4
var<workgroup> q4: array<f32, 256>;
//#endif

//#if ROPEKV
var<workgroup> hk: array<f32, HD>;
var<workgroup> hv: array<f32, HD>;
//#if !F32
//#include kv_int8
//#endif
// dims 4i..4i+3 of the new slot's k / v
fn hk4(i: u32) -> vec4f { return vec4f(hk[4u * i], hk[4u * i + 1u], hk[4u * i + 2u], hk[4u * i + 3u]); }
fn hv4(i: u32) -> vec4f { return vec4f(hv[4u * i], hv[4u * i + 1u], hv[4u * i + 2u], hv[4u * i + 3u]); }
// k of head h rotated in place (in hk and in the q|k|v row) and stored with v in slot kvLen − 1
fn storeNew(h: u32, l: u32) {
  let slot = p.kvLen - 1u;
  let kb = p.kOff + h * HD;
  let vb = p.vOff + h * HD;
  for (var i = l; i < HD; i += 64u) {
    hk[i] = q[kb + i];
    hv[i] = q[vb + i];
  }
  workgroupBarrier();
  let cb = p.rpos * p.half;
  for (var i = l; i < p.half; i += 64u) {
    let rot = ropePair(hk[i], hk[i + p.half], cs[cb + i]);
    q[kb + i] = rot.x;
    q[kb + i + p.half] = rot.y;
    hk[i] = rot.x;
    hk[i + p.half] = rot.y;
  }
  workgroupBarrier();
  let w0 = slot * (p.width / 4u) + h * HD4;   // the slot's first word (vec4 for F32) of head h
//#if F32
  for (var j = l; j < HD4; j += 64u) {
    K[w0 + j] = hk4(j);
    V[w0 + j] = hv4(j);
  }
//#else
  var mk = vec2f(3.4e38, -3.4e38);
  var mv = vec2f(3.4e38, -3.4e38);
  for (var j = l; j < HD4; j += 64u) {
    mk = minmax4(mk, hk4(j));
    mv = minmax4(mv, hv4(j));
  }
  let lk = kvRange(l, mk);
  workgroupBarrier();
  let lv = kvRange(l, mv);
  for (var j = l; j < HD4; j += 64u) {
//#if !LANES4
    K[w0 + j] = kvPack(hk4(j), lk);
//#endif
    V[w0 + j] = kvPack(hv4(j), lv);
  }
//#if LANES4
  // keys as 16-byte words: four packed words per thread (w0 is a multiple of 4 with LANES4)
  for (var j = l; j < HD4 / 4u; j += 64u) {
    let i = 4u * j;
    K[w0 / 4u + j] = vec4<u32>(kvPack(hk4(i), lk), kvPack(hk4(i + 1u), lk), kvPack(hk4(i + 2u), lk), kvPack(hk4(i + 3u), lk));
  }
//#endif
  if (l == 0u) {
    KM[slot * p.heads + h] = lk;
    VM[slot * p.heads + h] = lv;
  }
//#endif
}
//#endif

// one workgroup per (chunk of 64 slots, head): thread l scores slot l, then the P·V pass runs
// lanes over (dim quad, slot group) so V is read as coalesced vec4 rows
@compute @workgroup_size(64)
fn decode_part(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let c = wg.x;
  let h = wg.y;
  let f = qscale(0u);
  let qb = p.qOff + h * HD;
//#if ROPEKV
  // (one chunk) q rotated and written back, this token's k rotated and stored with v
  for (var i = l; i < HD; i += 64u) { hq[i] = q[qb + i]; }
  storeNew(h, l);
  workgroupBarrier();
  for (var i = l; i < HD4; i += 64u) {
    let r = rot4(i);
    qv[i] = r * f;
    storeQ(h, i, r);
  }
  // the new slot's stores are visible to this workgroup's loads below
  storageBarrier();
  workgroupBarrier();
//#else
  for (var i = l; i < HD4; i += 64u) {
    qv[i] = vec4f(q[qb + 4u * i], q[qb + 4u * i + 1u], q[qb + 4u * i + 2u], q[qb + 4u * i + 3u]) * f;
  }
  workgroupBarrier();
//#endif
  let s0 = c * CH;
  let slot = s0 + l;
  var s = NEG;
//#if LANES4
  // int8 keys, 4 lanes per slot (HD a multiple of 64): lane ln reads a quarter of the slot's key
  // row as vec4<u32> words, so a quad reads the row contiguously. A thread scores slots
  // l/4 + 16i (i < 4) with every key load issued first (slots past the cache read the last one and
  // are masked), then the quads' four partial dots are summed in workgroup memory
  let ln = l & 3u;
  var pd = vec4f(0.0);
  for (var i = 0u; i < 4u; i++) {
    let sk = s0 + 16u * i + (l >> 2u);
    let sr = min(sk, p.kvLen - 1u);
    let m = KM[sr * p.heads + h];
    let wb = (sr * (p.width / 4u) + h * HD4) / 4u + ln * (HD4 / 16u);
    var a = 0.0;
    for (var j = 0u; j < HD4 / 16u; j++) {
      let w = K[wb + j];
      let d4 = 4u * (ln * (HD4 / 16u) + j);
      a += (dot(qv[d4], deq8(w.x, m)) + dot(qv[d4 + 1u], deq8(w.y, m))) + (dot(qv[d4 + 2u], deq8(w.z, m)) + dot(qv[d4 + 3u], deq8(w.w, m)));
    }
    pd[i] = select(0.0, a, sk < p.kvLen);
  }
  for (var i = 0u; i < 4u; i++) { q4[64u * i + l] = pd[i]; }
  workgroupBarrier();
  let b = 64u * (l >> 4u) + 4u * (l & 15u);
  if (slot < p.kvLen) { s = (q4[b] + q4[b + 1u]) + (q4[b + 2u] + q4[b + 3u]); }
//#else
  if (slot < p.kvLen) {
    var a = vec4f(0.0);
    var d4 = 0u;
    for (; d4 + 3u < HD4; d4 += 4u) {
      let k0 = kv4(slot, h, d4);
      let k1 = kv4(slot, h, d4 + 1u);
      let k2 = kv4(slot, h, d4 + 2u);
      let k3 = kv4(slot, h, d4 + 3u);
      a += vec4f(dot(qv[d4], k0), dot(qv[d4 + 1u], k1), dot(qv[d4 + 2u], k2), dot(qv[d4 + 3u], k3));
    }
    for (; d4 < HD4; d4++) { a.x += dot(qv[d4], kv4(slot, h, d4)); }
    s = (a.x + a.y) + (a.z + a.w);
  }
//#endif
//#if SG
  // subgroup reductions (SG, where the adapter has subgroups): each subgroup's max / sum comes from
  // its elected invocation and the identity from the others, and every thread folds the 64 slots
  // (broadcast reads): one barrier per reduction instead of six, whatever the subgroup size
  red[l] = select(NEG, subgroupMax(s), subgroupElect());
  workgroupBarrier();
  var m = NEG;
  for (var i = 0u; i < 64u; i++) { m = max(m, red[i]); }
  workgroupBarrier();
  let e = exp(s - m);
  sc[l] = e;
  red[l] = select(0.0, subgroupAdd(e), subgroupElect());
  workgroupBarrier();
  var lsum = 0.0;
  for (var i = 0u; i < 64u; i++) { lsum += red[i]; }
//#else
  red[l] = s;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (l < k) { red[l] = max(red[l], red[l + k]); }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();
  let e = exp(s - m);
  sc[l] = e;
  red[l] = e;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (l < k) { red[l] += red[l + k]; }
    workgroupBarrier();
  }
  let lsum = red[0];
//#endif
  let n = min(CH, p.kvLen - s0);
  let d4 = l % HD4;
  let g = l / HD4;
  // four slots per step, loads first: each thread keeps four V rows in flight
  var o0 = vec4f(0.0);
  var o1 = vec4f(0.0);
  var o2 = vec4f(0.0);
  var o3 = vec4f(0.0);
  var j = g;
  for (; j + 3u * G < n; j += 4u * G) {
    let v0 = vv4(s0 + j, h, d4);
    let v1 = vv4(s0 + j + G, h, d4);
    let v2 = vv4(s0 + j + 2u * G, h, d4);
    let v3 = vv4(s0 + j + 3u * G, h, d4);
    o0 += sc[j] * v0;
    o1 += sc[j + G] * v1;
    o2 += sc[j + 2u * G] * v2;
    o3 += sc[j + 3u * G] * v3;
  }
  for (; j < n; j += G) { o0 += sc[j] * vv4(s0 + j, h, d4); }
  ov[l] = (o0 + o1) + (o2 + o3);
  workgroupBarrier();
//#if SINGLE
  // the whole cache in this one chunk: normalise here (what the combine pass does for one chunk)
  if (l < HD4) {
    var o4 = vec4f(0.0);
    for (var gg = 0u; gg < G; gg++) { o4 += ov[gg * HD4 + l]; }
    let inv = 1.0 / lsum;
    o[h * HD + 4u * l] = o4.x * inv;
    o[h * HD + 4u * l + 1u] = o4.y * inv;
    o[h * HD + 4u * l + 2u] = o4.z * inv;
    o[h * HD + 4u * l + 3u] = o4.w * inv;
//#if QOUT
    ho[l] = o4 * inv;
//#endif
  }
//#if QOUT
  workgroupBarrier();
  quantHead(l, h);
//#endif
//#else
  let pb = (h * p.nChunks + c) * (HD + 2u);
  if (l < HD4) {
    var o = vec4f(0.0);
    for (var gg = 0u; gg < G; gg++) { o += ov[gg * HD4 + l]; }
    part[pb + 2u + 4u * l] = o.x;
    part[pb + 3u + 4u * l] = o.y;
    part[pb + 4u + 4u * l] = o.z;
    part[pb + 5u + 4u * l] = o.w;
  }
  if (l == 0u) {
    part[pb] = m;
    part[pb + 1u] = lsum;
  }
//#endif
}
//#endif

//#if COMBINE
@group(0) @binding(4) var<storage, read> part: array<f32>;
var<workgroup> cw: array<f32, 1024>;
var<workgroup> sl: array<f32, 1024>;
var<workgroup> red: array<f32, 128>;

// one workgroup per head (the pass is one latency chain per head: its global load rounds are
// what it costs): every chunk's (max, sum) read in one round, thread d's partial outputs of the
// first PF chunks loaded before the reductions; chunk weights exp(m_c − M) computed once
const PF: u32 = 32u;
@compute @workgroup_size(128)
fn decode_combine(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let h = wg.x;
  let nc = min(p.nChunks, 1024u);
  let base = h * p.nChunks * (HD + 2u);
  var pre: array<f32, PF>;
  if (l < HD) {
    for (var c = 0u; c < PF; c++) {
      if (c < nc) { pre[c] = part[base + c * (HD + 2u) + 2u + l]; }
    }
  }
  var M = NEG;
  for (var c = l; c < nc; c += 128u) {
    let m = part[base + c * (HD + 2u)];
    M = max(M, m);
    cw[c] = m;
    sl[c] = part[base + c * (HD + 2u) + 1u];
  }
  red[l] = M;
  workgroupBarrier();
  for (var k = 64u; k > 0u; k >>= 1u) {
    if (l < k) { red[l] = max(red[l], red[l + k]); }
    workgroupBarrier();
  }
  M = red[0];
  workgroupBarrier();
  var L = 0.0;
  for (var c = l; c < nc; c += 128u) {
    let e = exp(cw[c] - M);
    cw[c] = e;
    L += sl[c] * e;
  }
  red[l] = L;
  workgroupBarrier();
  for (var k = 64u; k > 0u; k >>= 1u) {
    if (l < k) { red[l] += red[l + k]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  if (l < HD) {
    // (chunk c into lane c mod 4: the order of the loop below)
    var a = vec4f(0.0);
    for (var c = 0u; c < PF; c++) {
      if (c < nc) { a[c & 3u] += pre[c] * cw[c]; }
    }
    var c = PF;
    for (; c + 3u < nc; c += 4u) {
      let pb = base + c * (HD + 2u) + 2u + l;
      let v = vec4f(part[pb], part[pb + (HD + 2u)], part[pb + 2u * (HD + 2u)], part[pb + 3u * (HD + 2u)]);
      a += v * vec4f(cw[c], cw[c + 1u], cw[c + 2u], cw[c + 3u]);
    }
    for (; c < nc; c++) { a.x += part[base + c * (HD + 2u) + 2u + l] * cw[c]; }
    o[h * HD + l] = ((a.x + a.y) + (a.z + a.w)) * inv;
//#if QOUT
    ho[l >> 2u][l & 3u] = ((a.x + a.y) + (a.z + a.w)) * inv;
//#endif
  }
//#if QOUT
  workgroupBarrier();
  quantHead(l, h);
//#endif
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
