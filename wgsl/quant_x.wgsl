// One GEMV input row quantised for the integer int4 GEMV, one thread per block of 16 values (see
// quant_block.wgsl for the format). NORM: the values are x·γ (the RMSNorm's factor is applied by
// the GEMV at the end) and each block's Σ x² is of x.
struct P { blocks: u32, R: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
//#if NORM
@group(0) @binding(2) var<storage, read> lnw: array<vec4f>;
//#endif
//#include quant_block

// the value quantised: x, or with NORM x·γ
fn val(i: u32) -> vec4f {
//#if NORM
  return x4[i] * lnw[i];
//#else
  return x4[i];
//#endif
}

@compute @workgroup_size(64)
fn quant(@builtin(global_invocation_id) gid: vec3u) {
  let b = gid.x;
  if (b >= p.blocks) { return; }
  let i = 4u * b;
  let x0 = x4[i];
  let x1 = x4[i + 1u];
  let x2 = x4[i + 2u];
  let x3 = x4[i + 3u];
  let v0 = val(i);
  let v1 = val(i + 1u);
  let v2 = val(i + 2u);
  let v3 = val(i + 3u);
  storeBlock(b, p.R, v0, v1, v2, v3, (dot(x0, x0) + dot(x1, x1)) + (dot(x2, x2) + dot(x3, x3)));
}
