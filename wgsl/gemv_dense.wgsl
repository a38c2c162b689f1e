// Dense GEMV (one activation row) over weights kept in checkpoint encoding, row-major [N][K]:
// F16 / BF16 pairs packed in u32 (math in f32: neither SwiftShader nor the H100 through Dawn
// has shader-f16) or F32 words. Rows are padded at upload to `wpr` words, a multiple of 4, so
// each thread loads vec4<u32>. 64 threads per output row, 4 rows per workgroup.
// Large matrices are split by output rows across bindings: one dispatch per chunk.
struct P { K: u32, wpr4: u32, rows: u32, row0: u32, hasBias: u32, outOff: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
//#if VEC
@group(0) @binding(3) var<storage, read> x4: array<vec4f>;
//#else
@group(0) @binding(3) var<storage, read> x: array<f32>;
//#endif
@group(0) @binding(4) var<storage, read> bias: array<f32>;

var<workgroup> red: array<f32, 256>;

//#if !VEC
fn xs(k: u32) -> f32 { return select(0.0, x[k], k < p.K); }
//#endif

fn unpack(v: u32) -> vec2f {
//#if F16
  return unpack2x16float(v);
//#endif
//#if BF16
  return vec2f(bitcast<f32>(v << 16u), bitcast<f32>(v & 0xffff0000u));
//#endif
//#if F32
  return vec2f(bitcast<f32>(v), 0.0);
//#endif
}

// Σ of one vec4 of weights (8 halves or 4 floats, vec4 index i of the row) times x
fn part(v: vec4<u32>, i: u32) -> f32 {
//#if F32
//#if VEC
  return dot(bitcast<vec4f>(v), x4[i]);
//#else
  let k = 4u * i;
  return dot(bitcast<vec4f>(v), vec4f(xs(k), xs(k + 1u), xs(k + 2u), xs(k + 3u)));
//#endif
//#else
  let a = vec4f(unpack(v.x), unpack(v.y));
  let b = vec4f(unpack(v.z), unpack(v.w));
//#if VEC
  return dot(a, x4[2u * i]) + dot(b, x4[2u * i + 1u]);
//#else
  let k = 8u * i;
  return dot(a, vec4f(xs(k), xs(k + 1u), xs(k + 2u), xs(k + 3u))) +
         dot(b, vec4f(xs(k + 4u), xs(k + 5u), xs(k + 6u), xs(k + 7u)));
//#endif
//#endif
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let row = (wg.x + wg.y * nw.x) * 4u + (l >> 6u);
  let t = l & 63u;
  var acc = 0.0;
  if (row < p.rows) {
    let base = row * p.wpr4;
    var i = t;
    // four vec4 per step, loads first (bytes in flight per thread)
    for (; i + 192u < p.wpr4; i += 256u) {
      let v0 = w[base + i];
      let v1 = w[base + i + 64u];
      let v2 = w[base + i + 128u];
      let v3 = w[base + i + 192u];
      acc += part(v0, i) + part(v1, i + 64u) + part(v2, i + 128u) + part(v3, i + 192u);
    }
    for (; i < p.wpr4; i += 64u) {
      acc += part(w[base + i], i);
    }
  }
  red[l] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) { red[l] += red[l + s]; }
    workgroupBarrier();
  }
  if (t == 0u && row < p.rows) {
    var b = 0.0;
    if (p.hasBias != 0u) { b = bias[p.row0 + row]; }
    y[p.outOff + p.row0 + row] = red[l] + b;
  }
}

// One thread per output row, no workgroup reduction: for short rows (K ≤ 512), where the
// cooperative kernel would leave most threads idle and pay for barriers (slow on CPU adapters).
@compute @workgroup_size(64)
fn rowloop(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let row = (wg.x + wg.y * nw.x) * 64u + l;
  if (row >= p.rows) { return; }
  let base = row * p.wpr4;
  var acc = 0.0;
  for (var i = 0u; i < p.wpr4; i++) { acc += part(w[base + i], i); }
  var bb = 0.0;
  if (p.hasBias != 0u) { bb = bias[p.row0 + row]; }
  y[p.outOff + p.row0 + row] = acc + bb;
}
