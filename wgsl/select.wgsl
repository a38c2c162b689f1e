// On-GPU selection so that only ids/values are read back.
// Order: larger value first, lower index first on ties (NaN is never selected).
//   argmax_part: workgroup g reduces x[off + g·chunk .. ) to one (value, index) pair
//   argmax_final: one workgroup reduces the pairs → res[0] = index
//   topk_part: workgroup g selects the k best of its chunk by k rounds of "best element
//     strictly after the previous winner in the order" (no marking, exact with duplicates)
//   topk_final: the same over the candidates → res = k ids then k values
struct P { n: u32, off: u32, chunk: u32, parts: u32, k: u32, inf: f32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> res: array<u32>;
//#if FINAL
@group(0) @binding(2) var<storage, read> cp: array<vec2u>;
//#else
@group(0) @binding(2) var<storage, read> x: array<f32>;
//#endif

const NONE: u32 = 0xffffffffu;
var<workgroup> rv: array<f32, 256>;
var<workgroup> ri: array<u32, 256>;

fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  return v > bv || (v == bv && i < bi);
}
// strictly after (pv, pi) in the order
fn after(v: f32, i: u32, pv: f32, pi: u32) -> bool {
  return v < pv || (v == pv && i > pi);
}

// candidate j: (value, index) — from x directly, or from the candidate list
fn cand(j: u32) -> vec2u {
//#if FINAL
  return cp[j];
//#else
  return vec2u(bitcast<u32>(x[p.off + j]), j);
//#endif
}

fn reduce(l: u32) {
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (l < s) {
      if (better(rv[l + s], ri[l + s], rv[l], ri[l])) { rv[l] = rv[l + s]; ri[l] = ri[l + s]; }
    }
    workgroupBarrier();
  }
}

//#if ARGMAX
@compute @workgroup_size(256)
fn argmax(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let lo = wg.x * p.chunk;
  let hi = min(p.n, lo + p.chunk);
  var bv = -p.inf;
  var bi = NONE;
  for (var j = lo + l; j < hi; j += 256u) {
    let c = cand(j);
    let v = bitcast<f32>(c.x);
    if (better(v, c.y, bv, bi)) { bv = v; bi = c.y; }
  }
  rv[l] = bv;
  ri[l] = bi;
  workgroupBarrier();
  reduce(l);
  if (l == 0u) {
//#if FINAL
    // no candidate (every value NaN or −∞): index 0, as the CPU backend answers; the id may
    // feed the next step's embedding on the GPU (argmaxToken), so it must be a valid row
    res[0] = select(ri[0], 0u, ri[0] == NONE);
    res[1] = bitcast<u32>(rv[0]);
//#else
    res[2u * wg.x] = bitcast<u32>(rv[0]);
    res[2u * wg.x + 1u] = ri[0];
//#endif
  }
}
//#endif

//#if TOPK
@compute @workgroup_size(256)
fn topk(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let lo = wg.x * p.chunk;
  let hi = min(p.n, lo + p.chunk);
  var pv = p.inf;   // +inf, index NONE: everything is "after" it … except +inf
  var pi = NONE;
  var first = true;
  for (var t = 0u; t < p.k; t++) {
    var bv = -p.inf;
    var bi = NONE;
    for (var j = lo + l; j < hi; j += 256u) {
      let c = cand(j);
      let v = bitcast<f32>(c.x);
      if (c.y != NONE && (first || after(v, c.y, pv, pi)) && better(v, c.y, bv, bi)) { bv = v; bi = c.y; }
    }
    rv[l] = bv;
    ri[l] = bi;
    workgroupBarrier();
    reduce(l);
    pv = rv[0];
    pi = ri[0];
    first = false;
    if (l == 0u) {
//#if FINAL
      res[t] = pi;
      res[p.k + t] = bitcast<u32>(pv);
//#else
      res[2u * (wg.x * p.k + t)] = bitcast<u32>(pv);
      res[2u * (wg.x * p.k + t) + 1u] = pi;
//#endif
    }
    workgroupBarrier();
  }
}
//#endif
