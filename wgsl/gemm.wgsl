// Tiled GEMM for prefill (rows > 1): y[m, n] = Σ_k x[m, k]·W[k, n] + bias[n], 64×64 output tile
// per workgroup, K in steps of 32 through workgroup memory; each thread accumulates 4×4 outputs
// (rows ty + 16i, columns tx + 16j). Weights are dequantised exactly into f32 while staged:
// INT4 reads the GEMV's tiled GPTQ layout; F16 / BF16 / F32 read row-major [N][wpr] words.
struct P { M: u32, K: u32, N: u32, n0: u32, nChunk: u32, R: u32, G: u32, wpr: u32, hasBias: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
//#if INT4
@group(0) @binding(5) var<storage, read> sz: array<u32>;
@group(0) @binding(6) var<storage, read> rowGroup: array<u32>;
//#endif

var<workgroup> xs: array<array<f32, 64>, 32>;   // [k][m]
var<workgroup> ws: array<array<f32, 64>, 32>;   // [k][n]

//#if F16
fn unpack(v: u32) -> vec2f { return unpack2x16float(v); }
//#endif
//#if BF16
fn unpack(v: u32) -> vec2f { return vec2f(bitcast<f32>(v << 16u), bitcast<f32>(v & 0xffff0000u)); }
//#endif

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let nt = wg.x * 64u;           // first column inside this chunk
  let m0 = wg.y * 64u;
  let tx = l & 15u;
  let ty = l >> 4u;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < p.K; k0 += 32u) {
    // stage x: 64 rows × 32 k
    for (var i = 0u; i < 8u; i++) {
      let idx = l + 256u * i;
      let m = idx >> 5u;
      let kk = idx & 31u;
      var v = 0.0;
      if (m0 + m < p.M && k0 + kk < p.K) { v = x[(m0 + m) * p.K + k0 + kk]; }
      xs[kk][m] = v;
    }
//#if INT4
    // 4 word rows × 64 columns: one u32 (8 k) per thread
    {
      let rr = l >> 6u;
      let c = l & 63u;
      let n = nt + c;
      let r = k0 / 8u + rr;
      var vals = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
      if (n < p.nChunk && r < p.R) {
        let tile = n >> 4u;
        let cc = n & 15u;
        let word = w[(tile * p.R + r) * 16u + cc];
        let sb = (tile * p.G + rowGroup[r]) * 10u;
        let s = unpack2x16float(sz[sb + (cc >> 1u)])[cc & 1u];
        let zero = f32(((sz[sb + 8u + (cc >> 3u)] >> (4u * (cc & 7u))) & 15u) + 1u);
        for (var j = 0u; j < 8u; j++) { vals[j] = s * (f32((word >> (4u * j)) & 15u) - zero); }
      }
      for (var j = 0u; j < 8u; j++) { ws[rr * 8u + j][c] = vals[j]; }
    }
//#endif
//#if F32
    for (var i = 0u; i < 8u; i++) {
      let idx = l + 256u * i;
      let n = idx >> 5u;
      let kk = idx & 31u;
      var v = 0.0;
      if (nt + n < p.nChunk && k0 + kk < p.K) { v = bitcast<f32>(w[(nt + n) * p.wpr + k0 + kk]); }
      ws[kk][n] = v;
    }
//#endif
//#if HALF
    for (var i = 0u; i < 4u; i++) {
      let idx = l + 256u * i;
      let n = idx >> 4u;
      let kp = idx & 15u;
      var v = vec2f(0.0);
      if (nt + n < p.nChunk && k0 + 2u * kp < p.K) { v = unpack(w[(nt + n) * p.wpr + k0 / 2u + kp]); }
      ws[2u * kp][n] = v.x;
      ws[2u * kp + 1u][n] = v.y;
    }
//#endif
    workgroupBarrier();
    for (var kk = 0u; kk < 32u; kk++) {
      let a = vec4f(xs[kk][ty], xs[kk][ty + 16u], xs[kk][ty + 32u], xs[kk][ty + 48u]);
      let b = vec4f(ws[kk][tx], ws[kk][tx + 16u], ws[kk][tx + 32u], ws[kk][tx + 48u]);
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = nt + tx + 16u * j;
      if (m < p.M && n < p.nChunk) {
        var b = 0.0;
        if (p.hasBias != 0u) { b = bias[p.n0 + n]; }
        y[m * p.N + p.n0 + n] = acc[i][j] + b;
      }
    }
  }
}
