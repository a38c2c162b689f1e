// GPTQ int4 GEMV (one activation row): y[c] = Σ_k x[k]·s[g(k),c]·(q[k,c] − zero[g(k),c]) + bias[c].
// One pass over the packed weights, f32 math.
//
// Layout (re-tiled at upload): the matrix is cut into tiles of 16 output columns; tile t is
// qw[t][r][16] u32 words for r < R = K/8 word rows (rows sorted by group when desc_act), so a
// workgroup streams one contiguous block and each warp reads 512 consecutive bytes per step.
// sz[t][g] = 10 words: 8 f16 pairs of scales (columns 2i, 2i+1) + 2 words of zero nibbles
// (stored zero − 1, column c in nibble c%8 of word c/8). The group of word row r is
// r / rpg when rpg > 0, else rowGroup[r].
//
// Thread (cg = l % 4, ks = l / 4) owns columns 4cg..4cg+3 of the tile and word rows ks, ks+64, …
// A nibble q becomes the float 16 + q with one shift and one mask/or (exponent trick); for a
// word row with x-sum X, Σ_j x_j(16 + q_j) − (16 + zero)·X = Σ_j x_j(q_j − zero).
struct P { R: u32, G: u32, N: u32, tile0: u32, hasBias: u32, outOff: u32, rpg: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> qw: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> sz: array<u32>;
@group(0) @binding(4) var<storage, read> rowGroup: array<u32>;
@group(0) @binding(5) var<storage, read> x4: array<vec4f>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;

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
